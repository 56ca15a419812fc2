#include "OrthancRest.h"

#include <json/json.h>

#include <sstream>

#include "OrthancHandles.h"

namespace CloudIngest::Sdk {

Json::Value ParseJson(const std::string& text) {
  Json::Value value;
  Json::CharReaderBuilder builder;
  std::string errors;
  std::istringstream in(text);
  if (!Json::parseFromStream(builder, in, &value, &errors)) {
    throw std::runtime_error("Orthanc answered invalid JSON: " + errors);
  }
  return value;
}

namespace {

void ThrowUnlessSuccess(OrthancPluginContext* context, const char* method, const std::string& uri,
                        OrthancPluginErrorCode code) {
  if (code == OrthancPluginErrorCode_Success) return;
  throw OrthancRestError(std::string(method) + " " + uri + " inside Orthanc failed: " +
                             OrthancPluginGetErrorDescription(context, code),
                         code);
}

}  // namespace

std::string OrthancRest::GetBinary(const std::string& uri) const {
  MemoryBuffer buffer(context_);
  const OrthancPluginErrorCode code =
      OrthancPluginRestApiGet(context_, buffer.Target(), uri.c_str());
  ThrowUnlessSuccess(context_, "GET", uri, code);
  return buffer.ToString();
}

std::string OrthancRest::PostBinary(const std::string& uri, const std::string& body) const {
  MemoryBuffer buffer(context_);
  const OrthancPluginErrorCode code = OrthancPluginRestApiPost(
      context_, buffer.Target(), uri.c_str(), body.data(), static_cast<uint32_t>(body.size()));
  ThrowUnlessSuccess(context_, "POST", uri, code);
  return buffer.ToString();
}

void OrthancRest::Put(const std::string& uri, const std::string& body) const {
  MemoryBuffer buffer(context_);
  const OrthancPluginErrorCode code = OrthancPluginRestApiPut(
      context_, buffer.Target(), uri.c_str(), body.data(), static_cast<uint32_t>(body.size()));
  ThrowUnlessSuccess(context_, "PUT", uri, code);
}

void OrthancRest::Delete(const std::string& uri) const {
  const OrthancPluginErrorCode code = OrthancPluginRestApiDelete(context_, uri.c_str());
  ThrowUnlessSuccess(context_, "DELETE", uri, code);
}

Json::Value OrthancRest::GetJson(const std::string& uri) const {
  return ParseJson(GetBinary(uri));
}

bool OrthancRest::TryGetJson(const std::string& uri, Json::Value& result) const {
  try {
    result = GetJson(uri);
    return true;
  } catch (const OrthancRestError& e) {
    if (e.IsNotFound()) return false;
    throw;
  }
}

}  // namespace CloudIngest::Sdk
