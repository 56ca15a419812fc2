// libFuzzer target for REST request bodies (manual send, order metadata):
// any bytes give an object or a RestBodyError, never a crash, a leak or UB.
#include <cstddef>
#include <cstdint>
#include <string>

#include "Rest/RestBody.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const Json::Value value =
        CloudIngest::ParseRestBody(std::string(reinterpret_cast<const char*>(data), size));
    if (!value.isObject()) __builtin_trap();
  } catch (const CloudIngest::RestBodyError&) {
  }
  return 0;
}
