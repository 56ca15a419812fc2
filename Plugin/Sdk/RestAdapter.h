#pragma once
// Turns Orthanc's C REST callback into a RestRequest for RestApi and writes
// the RestResponse back through the SDK.
#include <orthanc/OrthancCPlugin.h>

#include "Rest/JobRoutes.h"
#include "Rest/RestApi.h"
#include "Sdk/RunningOrthanc.h"

namespace CloudIngest::Sdk {

RestRequest ToRestRequest(const char* path, const OrthancPluginHttpRequest* request);
// JSON where Orthanc lets the plugin say so: a status other than 200 carries
// Orthanc's own text/plain from 1.12.2 on (one Content-Type, the body still JSON).
void Answer(OrthancPluginContext* context, const RunningOrthanc& orthanc,
            OrthancPluginRestOutput* output, const RestResponse& response);
// OrthancPluginIncomingHttpRequestFilter2's work: refuses (403) what
// RefuseBeforeRouting names and what `jobs` (null when the plugin is
// disabled) does not allow, allows everything else.
int32_t FilterIncomingRequest(OrthancPluginHttpMethod method, const char* uri,
                              uint32_t headersCount, const char* const* headersKeys,
                              const char* const* headersValues, const JobsGuard* jobs);
// The user name from a Basic Authorization header (never the password).
std::string UserFromHeaders(const OrthancPluginHttpRequest* request);

}  // namespace CloudIngest::Sdk
