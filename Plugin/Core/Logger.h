#pragma once
// Logging seam: the SDK layer forwards to Orthanc's log, tests capture lines.
#include <string>

namespace CloudIngest {

class ILogger {
 public:
  virtual ~ILogger() = default;
  virtual void Info(const std::string& message) = 0;
  virtual void Warning(const std::string& message) = 0;
  virtual void Error(const std::string& message) = 0;
};

}  // namespace CloudIngest
