#pragma once
// Reads Orthanc's configuration through the SDK and validates the CloudIngest
// section into a Configuration (throws ConfigurationError naming the key).
#include <orthanc/OrthancCPlugin.h>

#include "Core/Configuration/Configuration.h"

namespace CloudIngest::Sdk {

Configuration ReadConfiguration(OrthancPluginContext* context);
// A boolean of Orthanc's global configuration (`fallback` when absent or not a bool).
bool ReadGlobalBool(OrthancPluginContext* context, const char* key, bool fallback);

}  // namespace CloudIngest::Sdk
