#pragma once
// Parsing of REST request bodies: fuzzed, so it must never crash on any bytes.
#include <json/value.h>

#include <stdexcept>
#include <string>

namespace CloudIngest {

class RestBodyError : public std::runtime_error {
 public:
  RestBodyError(const std::string& what, std::string details = {})
      : std::runtime_error(what), details_(std::move(details)) {}
  const std::string& Details() const { return details_; }

 private:
  std::string details_;
};

// An empty body is {}; anything else must be one JSON object (no duplicate
// keys, nothing after it, at most 1 MiB). Throws RestBodyError.
Json::Value ParseRestBody(const std::string& body);

// True for a Content-Type of "application/json", the media type in any case,
// with or without parameters ("; charset=utf-8"). False when absent (empty).
bool IsJsonContentType(const std::string& contentType);

}  // namespace CloudIngest
