#pragma once
// What the parsers of the API's answers share (ApiResponses.cpp, ErrorResponses.cpp).
#include <json/value.h>

#include <initializer_list>
#include <optional>
#include <string>

namespace CloudIngest::ResponseText {

constexpr size_t kMaxDescriptionBytes = 300;
// Lifetimes beyond this are treated as this (keeps expiry arithmetic finite).
constexpr double kMaxLifetimeSeconds = 10.0 * 365 * 24 * 3600;

// Throws IngestError(Permanent).
[[noreturn]] void Fail(const std::string& message);
// Without leading and trailing spaces, tabs, CR and LF.
std::string TrimSpace(const std::string& text);
// Printable text only (valid UTF-8 kept, control bytes and invalid sequences
// replaced), whitespace runs collapsed, at most `limit` bytes ("..." marks a cut).
std::string Printable(const std::string& text, size_t limit = kMaxDescriptionBytes);
// The first of `keys` present and not null in `object`; its name in `foundKey`.
const Json::Value* FirstMember(const Json::Value& object, std::initializer_list<const char*> keys,
                               const char** foundKey = nullptr);

}  // namespace CloudIngest::ResponseText
