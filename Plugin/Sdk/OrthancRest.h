#pragma once
// Calls into Orthanc's own REST API (no HTTP: through the SDK).
#include <json/value.h>
#include <orthanc/OrthancCPlugin.h>

#include <stdexcept>
#include <string>

namespace CloudIngest::Sdk {

class OrthancRestError : public std::runtime_error {
 public:
  OrthancRestError(const std::string& what, OrthancPluginErrorCode code)
      : std::runtime_error(what), code_(code) {}
  bool IsNotFound() const { return code_ == OrthancPluginErrorCode_UnknownResource; }

 private:
  OrthancPluginErrorCode code_;
};

class OrthancRest {
 public:
  explicit OrthancRest(OrthancPluginContext* context) : context_(context) {}
  // Throws OrthancRestError.
  std::string GetBinary(const std::string& uri) const;
  Json::Value GetJson(const std::string& uri) const;
  // POST with a body; the answer's bytes. Throws OrthancRestError.
  std::string PostBinary(const std::string& uri, const std::string& body) const;
  // PUT and DELETE without an answer. Throw OrthancRestError.
  void Put(const std::string& uri, const std::string& body) const;
  void Delete(const std::string& uri) const;
  // false when Orthanc answers "unknown resource".
  bool TryGetJson(const std::string& uri, Json::Value& result) const;
  OrthancPluginContext* Context() const { return context_; }

 private:
  OrthancPluginContext* context_;
};

Json::Value ParseJson(const std::string& text);  // throws std::runtime_error

}  // namespace CloudIngest::Sdk
