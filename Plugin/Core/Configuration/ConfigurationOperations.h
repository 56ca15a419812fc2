#pragma once
// The operations keys of the CloudIngest section: SendWindows, MaxSendRate,
// Webhooks, QueueStalledAfter and Jobs (docs/REFERENCE.md, Configuration).
#include <json/value.h>

#include "Core/Configuration/Configuration.h"

namespace CloudIngest {

void ReadOperations(const Json::Value& section, Configuration& config);

}  // namespace CloudIngest
