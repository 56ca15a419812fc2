#pragma once
// Checks of what a REST request brings (method, Content-Type, lengths, query
// values, body), each failing with the RestError the route answers.
#include <json/value.h>

#include <cstddef>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "Rest/RestApi.h"

namespace CloudIngest {

// Becomes the JSON error answer {"error": what, "details": details}.
class RestError : public std::runtime_error {
 public:
  RestError(int status, const std::string& message, Json::Value details = {})
      : std::runtime_error(message), status_(status), details_(std::move(details)) {}
  int Status() const { return status_; }
  const Json::Value& Details() const { return details_; }

 private:
  int status_;
  Json::Value details_;
};

// Paths and query values are bounded before anything parses them (the path
// before the role check, RestApi::Handle), so that no answer, audit record or
// log line carries a client's kilobytes.
constexpr size_t kMaxPathLength = 256;

// 405 for another method; 415 for a POST whose body is not declared JSON.
void RequireMethod(const RestRequest& request, const char* method);
// 400 naming `parameter` when `value` is longer than `maxLength`.
void RequireMaxLength(const std::string& parameter, const std::string& value, size_t maxLength);
// The query value of `key` (absent: nullopt), refused when longer than `maxLength`.
std::optional<std::string> QueryValue(const std::map<std::string, std::string>& query,
                                      const char* key, size_t maxLength);
// A non-negative integer, capped at `max`; `fallback` when absent.
unsigned ParseUnsigned(const std::map<std::string, std::string>& query, const char* key,
                       unsigned fallback, unsigned max);
// `since`: Unix seconds ("1764349466", "1764349466.5") or ISO 8601
// ("2026-11-28T17:04:26Z"); 0 when absent.
double ParseSince(const std::map<std::string, std::string>& query);
// The body as one JSON object (empty: {}).
Json::Value ParseBodyObject(const std::string& body);

}  // namespace CloudIngest
