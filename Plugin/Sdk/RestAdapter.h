#pragma once
// Turns Orthanc's C REST callback into a RestRequest for RestApi and writes
// the RestResponse back through the SDK.
#include <orthanc/OrthancCPlugin.h>

#include "Rest/RestApi.h"

namespace CloudIngest::Sdk {

RestRequest ToRestRequest(const char* path, const OrthancPluginHttpRequest* request);
void Answer(OrthancPluginContext* context, OrthancPluginRestOutput* output,
            const RestResponse& response);
// The user name from a Basic Authorization header (never the password).
std::string UserFromHeaders(const OrthancPluginHttpRequest* request);

}  // namespace CloudIngest::Sdk
