#pragma once
// Turns Orthanc's C REST callback into a RestRequest for RestApi and writes
// the RestResponse back through the SDK.
#include <orthanc/OrthancCPlugin.h>

#include "Rest/RestApi.h"

namespace CloudIngest::Sdk {

RestRequest ToRestRequest(const char* path, const OrthancPluginHttpRequest* request);
void Answer(OrthancPluginContext* context, OrthancPluginRestOutput* output,
            const RestResponse& response);
// OrthancPluginIncomingHttpRequestFilter2: refuses (403) what RefuseBeforeRouting
// names, allows everything else.
int32_t FilterIncomingRequest(OrthancPluginHttpMethod method, const char* uri, const char* ip,
                              uint32_t headersCount, const char* const* headersKeys,
                              const char* const* headersValues, uint32_t getArgumentsCount,
                              const char* const* getArgumentsKeys,
                              const char* const* getArgumentsValues);
// The user name from a Basic Authorization header (never the password).
std::string UserFromHeaders(const OrthancPluginHttpRequest* request);

}  // namespace CloudIngest::Sdk
