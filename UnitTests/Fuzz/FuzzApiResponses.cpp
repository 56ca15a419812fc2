// libFuzzer target for the parsers of the ingestion API's answers: any byte
// string must give a value or an IngestError, never a crash, a leak or UB.
// Build (not part of the CMake project):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I Plugin \
//     $(pkg-config --cflags jsoncpp libcurl) UnitTests/Fuzz/FuzzApiResponses.cpp \
//     Plugin/Core/Cloud/{ApiResponses,ErrorResponses,ResponseText,Http,Url}.cpp \
//     $(pkg-config --libs jsoncpp libcurl) -o fuzz-api-responses
//   ./fuzz-api-responses -max_total_time=60 -max_len=4096
#include <cstddef>
#include <cstdint>
#include <string>

#include "Core/Cloud/ApiResponses.h"
#include "Core/Cloud/Http.h"
#include "Core/Cloud/IngestError.h"
#include "Core/Url.h"

using namespace CloudIngest;

namespace {

template <typename F>
void Guard(F&& f) {
  try {
    f();
  } catch (const IngestError&) {
    // The documented failure; anything else escapes and is reported.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  Guard([&] {
    const TokenResponse token = ParseTokenResponse(input);
    if (token.accessToken.empty() || !(token.expiresIn > 0)) __builtin_trap();
  });
  Guard([&] {
    const std::string id = ParseOrderResponse(input);
    if (!IsUuidV4(id)) __builtin_trap();
  });
  Guard([&] {
    const UploadTarget target = ParseUploadUrlResponse(input);
    if (UrlHost(target.url).empty()) __builtin_trap();
  });
  Guard([&] { ParseJsonBody(input, "fuzz"); });

  const std::string description = DescribeErrorBody(input);
  if (description.empty() || description.size() > 300) __builtin_trap();

  for (const double now : {0.0, 1'700'000'000.0, -1e300}) {
    const std::optional<double> retryAfter = ParseRetryAfter(input, now);
    if (retryAfter && !(*retryAfter >= 0)) __builtin_trap();
  }
  IsUuidV4(input);
  RedactUrl(input);
  UrlHost(input);
  UrlEncode(input);
  return 0;
}
