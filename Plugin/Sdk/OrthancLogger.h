#pragma once
#include <orthanc/OrthancCPlugin.h>

#include "Core/Logger.h"

namespace CloudIngest::Sdk {

// Forwards to Orthanc's log (thread-safe on Orthanc's side).
class OrthancLogger : public ILogger {
 public:
  explicit OrthancLogger(OrthancPluginContext* context) : context_(context) {}
  void Info(const std::string& message) override {
    OrthancPluginLogInfo(context_, message.c_str());
  }
  void Warning(const std::string& message) override {
    OrthancPluginLogWarning(context_, message.c_str());
  }
  void Error(const std::string& message) override {
    OrthancPluginLogError(context_, message.c_str());
  }

 private:
  OrthancPluginContext* context_;
};

}  // namespace CloudIngest::Sdk
