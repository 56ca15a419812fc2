#pragma once
#include <stdexcept>
#include <string>

namespace CloudIngest {

// Message names the offending key ("CloudIngest.Concurrency: ...") and the fix.
class ConfigurationError : public std::runtime_error {
 public:
  explicit ConfigurationError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace CloudIngest
