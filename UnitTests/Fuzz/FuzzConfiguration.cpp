// libFuzzer target: any bytes -> JSON -> ParseConfiguration.
// Only ConfigurationError and jsoncpp's exceptions are expected; anything else
// (another exception, a crash, a sanitizer report, a broken invariant) is a bug.
//
// Build and run (not part of the CMake build; the unit tests are):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I Plugin \
//     $(pkg-config --cflags jsoncpp libcurl) UnitTests/Fuzz/FuzzConfiguration.cpp \
//     Plugin/Core/Configuration/Configuration{,Readers,Values}.cpp Plugin/Core/Url.cpp \
//     $(pkg-config --libs jsoncpp libcurl) -o /tmp/fuzz-configuration
//   /tmp/fuzz-configuration -max_total_time=60 -max_len=4096 /tmp/corpus Configuration/
#include <json/reader.h>
#include <json/value.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "Core/Configuration/Configuration.h"

namespace {

// Messages start with the key and stay on one line.
void CheckMessage(const std::string& message) {
  const bool named = message.rfind("CloudIngest:", 0) == 0 || message.rfind("CloudIngest.", 0) == 0;
  if (!named || message.find_first_of("\r\n") != std::string::npos ||
      message.find("; ") == std::string::npos) {
    std::abort();
  }
}

// What the rest of the plugin relies on when parsing succeeded.
void CheckConfiguration(const CloudIngest::Configuration& c) {
  if (c.concurrency < 1 || c.concurrency > 64) std::abort();
  if (c.studyWorkers < 1 || c.studyWorkers > 16) std::abort();
  if (c.retry.maxAttempts < 1 || c.retry.maxStudyAttempts < 1) std::abort();
  if (!(c.retry.baseDelay > 0) || c.retry.maxDelay < c.retry.baseDelay) std::abort();
  if (!(c.timeout > 0) || !(c.connectTimeout > 0) || !(c.groupWindow > 0)) std::abort();
  if (c.newOrder.path.empty() || c.newOrder.path[0] != '/') std::abort();
  if (c.enable) {
    if (c.url.rfind("http://", 0) != 0 && c.url.rfind("https://", 0) != 0) std::abort();
    if (!c.url.empty() && c.url.back() == '/') std::abort();
    if (c.clientId.empty() || c.clientSecret.empty() || c.allowedUploadHosts.empty()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* begin = reinterpret_cast<const char*>(data);
  Json::CharReaderBuilder builder;
  builder["stackLimit"] = 200;
  const std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  Json::Value root;
  std::string errors;
  try {
    if (!reader->parse(begin, begin + size, &root, &errors)) return 0;
    // Whole Orthanc configuration files as seeds: take their section.
    const Json::Value& section =
        root.isObject() && root.isMember("CloudIngest") ? root["CloudIngest"] : root;
    CheckConfiguration(CloudIngest::ParseConfiguration(section, CloudIngest::OrthancDefaults()));
  } catch (const CloudIngest::ConfigurationError& e) {
    CheckMessage(e.what());
  } catch (const Json::Exception&) {
    // jsoncpp's own limits (e.g. nesting depth)
  }
  return 0;
}
