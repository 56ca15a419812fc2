#pragma once
// RAII over the C SDK's owned results: every buffer and string Orthanc hands
// us is freed exactly once, also when an exception passes through.
#include <orthanc/OrthancCPlugin.h>

#include <string>

namespace CloudIngest::Sdk {

class MemoryBuffer {
 public:
  explicit MemoryBuffer(OrthancPluginContext* context) : context_(context) {
    buffer_.data = nullptr;
    buffer_.size = 0;
  }
  ~MemoryBuffer() {
    if (buffer_.data != nullptr) OrthancPluginFreeMemoryBuffer(context_, &buffer_);
  }
  MemoryBuffer(const MemoryBuffer&) = delete;
  MemoryBuffer& operator=(const MemoryBuffer&) = delete;

  OrthancPluginMemoryBuffer* Target() { return &buffer_; }
  std::string ToString() const {
    return buffer_.data == nullptr
               ? std::string()
               : std::string(static_cast<const char*>(buffer_.data), buffer_.size);
  }

 private:
  OrthancPluginContext* context_;
  OrthancPluginMemoryBuffer buffer_;
};

class OrthancString {
 public:
  OrthancString(OrthancPluginContext* context, char* value) : context_(context), value_(value) {}
  ~OrthancString() {
    if (value_ != nullptr) OrthancPluginFreeString(context_, value_);
  }
  OrthancString(const OrthancString&) = delete;
  OrthancString& operator=(const OrthancString&) = delete;
  bool IsNull() const { return value_ == nullptr; }
  std::string ToString() const { return value_ == nullptr ? std::string() : std::string(value_); }

 private:
  OrthancPluginContext* context_;
  char* value_;
};

}  // namespace CloudIngest::Sdk
