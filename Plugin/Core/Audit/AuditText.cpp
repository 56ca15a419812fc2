#include "Core/Audit/AuditText.h"

#include <boost/algorithm/string/predicate.hpp>
#include <boost/range/iterator_range.hpp>
#include <cctype>
#include <cstdint>

#include "Core/Url.h"  // RedactUrl

namespace CloudIngest {

namespace {

// Longest `detail` kept: a whole HTML error page has no place in the log.
constexpr size_t kMaxDetailBytes = 4096;

bool StartsWithNoCase(const std::string& text, size_t position, const char* prefix) {
  return boost::algorithm::istarts_with(
      boost::make_iterator_range(text.begin() + static_cast<std::ptrdiff_t>(position), text.end()),
      prefix, std::locale::classic());
}

bool EndsUrl(char c) {
  return std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\'' || c == '<' ||
         c == '>' || c == '`';
}

// Redacts every http(s) URL in free text (query, fragment, user:password):
// a presigned URL's signature must not reach the log. (A hand-written scan,
// not std::regex, whose libstdc++ implementation recurses per character.)
std::string StripUrlQueries(const std::string& text) {
  std::string result;
  result.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (StartsWithNoCase(text, i, "http://") || StartsWithNoCase(text, i, "https://")) {
      size_t end = i;
      while (end < text.size() && !EndsUrl(text[end])) {
        ++end;
      }
      result += RedactUrl(text.substr(i, end - i));
      i = end;
    } else {
      result += text[i++];
    }
  }
  return result;
}

// "Bearer <token>" -> "Bearer [redacted]", in case an error message echoes a header.
std::string RedactBearer(const std::string& text) {
  std::string result;
  result.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const bool wordStart = i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1]));
    if (wordStart && StartsWithNoCase(text, i, "bearer ")) {
      result.append(text, i, 7);
      size_t end = i + 7;
      while (end < text.size() && text[end] == ' ') {
        ++end;
      }
      const size_t tokenStart = end;
      while (end < text.size() && !EndsUrl(text[end]) && text[end] != ',' && text[end] != ';') {
        ++end;
      }
      if (end > tokenStart) {
        result += "[redacted]";
      }
      i = end;
    } else {
      result += text[i++];
    }
  }
  return result;
}

}  // namespace

std::string ToValidUtf8(const std::string& text) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string result;
  result.reserve(text.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t i = 0;
  while (i < size) {
    const unsigned char c = bytes[i];
    size_t length = 0;
    uint32_t minimum = 0;
    if (c < 0x80) {
      result += static_cast<char>(c);
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2;
      minimum = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      minimum = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      minimum = 0x10000;
    }
    bool valid = length != 0 && i + length <= size;
    uint32_t codePoint = length != 0 ? (c & (0x7F >> length)) : 0;
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (bytes[i + k] & 0xC0) == 0x80;
      codePoint = (codePoint << 6) | (bytes[i + k] & 0x3F);
    }
    valid = valid && codePoint >= minimum && codePoint <= 0x10FFFF &&
            !(codePoint >= 0xD800 && codePoint <= 0xDFFF);
    if (valid) {
      result.append(text, i, length);
      i += length;
    } else {
      result += kReplacement;
      ++i;
    }
  }
  return result;
}

std::string CleanAuditDetail(std::string detail) {
  if (detail.size() > kMaxDetailBytes) {
    detail.resize(kMaxDetailBytes);  // a cut UTF-8 sequence is repaired below
    detail += "...";
  }
  return ToValidUtf8(RedactBearer(StripUrlQueries(detail)));
}

}  // namespace CloudIngest
