#pragma once
// The text of audit records: valid UTF-8 always, and no secret in `detail`.
#include <string>

namespace CloudIngest {

// Replaces invalid UTF-8 with U+FFFD so every line stays valid JSON text.
std::string ToValidUtf8(const std::string& text);

// `detail` as written: every http(s) URL without query, fragment or
// user:password, "Bearer <token>" redacted, cut at 4096 bytes (then "..."),
// valid UTF-8.
std::string CleanAuditDetail(std::string detail);

}  // namespace CloudIngest
