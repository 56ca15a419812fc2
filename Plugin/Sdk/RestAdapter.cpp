#include "RestAdapter.h"

#include <boost/algorithm/string.hpp>

#include <openssl/evp.h>

#include <cctype>
#include <string>
#include <vector>

namespace CloudIngest::Sdk {

namespace {

const char* MethodName(OrthancPluginHttpMethod method) {
  switch (method) {
    case OrthancPluginHttpMethod_Get:
      return "GET";
    case OrthancPluginHttpMethod_Post:
      return "POST";
    case OrthancPluginHttpMethod_Put:
      return "PUT";
    case OrthancPluginHttpMethod_Delete:
      return "DELETE";
    default:
      return "OTHER";
  }
}

std::string DecodeBase64(const std::string& text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 4096) return {};
  std::vector<unsigned char> out(text.size() / 4 * 3 + 1);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return {};
  size_t length = static_cast<size_t>(n);
  if (text[text.size() - 1] == '=') length--;
  if (text[text.size() - 2] == '=') length--;
  return std::string(reinterpret_cast<const char*>(out.data()), length);
}

// The value of the header named `lowerName` (in lower case), empty when absent.
std::string HeaderValue(uint32_t count, const char* const* keys, const char* const* values,
                        const std::string& lowerName) {
  for (uint32_t i = 0; i < count; i++) {
    if (boost::algorithm::iequals(keys[i], lowerName, std::locale::classic())) return values[i];
  }
  return {};
}

std::string HeaderValue(const OrthancPluginHttpRequest* request, const std::string& lowerName) {
  return HeaderValue(request->headersCount, request->headersKeys, request->headersValues,
                     lowerName);
}

// The user name of a Basic Authorization header's value (never the password).
std::string UserFromAuthorization(const std::string& value) {
  if (value.rfind("Basic ", 0) != 0) return {};
  const std::string decoded = DecodeBase64(value.substr(6));
  const auto colon = decoded.find(':');
  return colon == std::string::npos ? std::string() : decoded.substr(0, colon);
}

}  // namespace

std::string UserFromHeaders(const OrthancPluginHttpRequest* request) {
  return UserFromAuthorization(HeaderValue(request, "authorization"));
}

int32_t FilterIncomingRequest(OrthancPluginHttpMethod method, const char* uri,
                              uint32_t headersCount, const char* const* headersKeys,
                              const char* const* headersValues, const JobsGuard* jobs) {
  try {
    const std::string path = uri == nullptr ? "" : uri;
    const std::string contentType =
        HeaderValue(headersCount, headersKeys, headersValues, "content-type");
    if (RefuseBeforeRouting(MethodName(method), path, contentType)) return 0;
    if (jobs == nullptr) return 1;
    const std::string user = UserFromAuthorization(
        HeaderValue(headersCount, headersKeys, headersValues, "authorization"));
    return jobs->Allows(MethodName(method), path, user) ? 1 : 0;
  } catch (const std::exception&) {
    return -1;
  }
}

RestRequest ToRestRequest(const char* path, const OrthancPluginHttpRequest* request) {
  RestRequest r;
  r.method = MethodName(request->method);
  r.path = path;
  for (uint32_t i = 0; i < request->getCount; i++) {
    r.query[request->getKeys[i]] = request->getValues[i];
  }
  if (request->body != nullptr && request->bodySize > 0) {
    r.body.assign(static_cast<const char*>(request->body), request->bodySize);
  }
  r.contentType = HeaderValue(request, "content-type");
  r.user = UserFromHeaders(request);
  return r;
}

void Answer(OrthancPluginContext* context, const RunningOrthanc& orthanc,
            OrthancPluginRestOutput* output, const RestResponse& response) {
  for (const auto& [name, value] : response.headers) {
    if (name != "Allow") OrthancPluginSetHttpHeader(context, output, name.c_str(), value.c_str());
  }
  if (response.status == 200) {
    OrthancPluginAnswerBuffer(context, output, response.body.data(),
                              static_cast<uint32_t>(response.body.size()),
                              response.contentType.c_str());
    return;
  }
  // Orthanc sends no body with 405 (SDK rule), so the JSON error only
  // reaches clients for the other statuses.
  if (response.status == 405) {
    std::string allowed = "GET";
    for (const auto& [name, value] : response.headers) {
      if (name == "Allow") allowed = value;
    }
    OrthancPluginSendMethodNotAllowed(context, output, allowed.c_str());
    return;
  }
  // No SDK call sets the type of a status answer other than 200: a header set
  // here is a second Content-Type where Orthanc adds its own (text/plain). The
  // body is JSON either way (docs/REFERENCE.md, Content types).
  if (!orthanc.AddsTypeToStatusBodies() || response.body.empty()) {
    OrthancPluginSetHttpHeader(context, output, "Content-Type", response.contentType.c_str());
  }
  OrthancPluginSendHttpStatus(context, output, static_cast<uint16_t>(response.status),
                              response.body.data(), static_cast<uint32_t>(response.body.size()));
}

}  // namespace CloudIngest::Sdk
