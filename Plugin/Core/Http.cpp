#include "Http.h"

#include <algorithm>
#include <cstring>

namespace CloudIngest {

namespace {

char ToLowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool StartsWithNoCase(const std::string& text, const char* prefix) {
  const size_t n = std::strlen(prefix);
  if (text.size() < n) {
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    if (ToLowerAscii(text[i]) != prefix[i]) {
      return false;
    }
  }
  return true;
}

bool IsHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

bool IsIpv6Char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

bool AllDigits(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

size_t StringBodySource::Read(char* buffer, size_t max) {
  const size_t count = std::min(max, data_.size() - position_);
  if (count > 0) {
    std::memcpy(buffer, data_.data() + position_, count);
    position_ += count;
  }
  return count;
}

std::string HttpResponse::Header(const std::string& lowerCaseName) const {
  const auto found = headers.find(lowerCaseName);
  return found == headers.end() ? std::string() : found->second;
}

std::string RedactUrl(const std::string& url) {
  std::string result = url.substr(0, url.find_first_of("?#"));
  // Credentials in the authority ("user:pass@host") are as secret as a signature.
  const size_t schemeEnd = result.find("://");
  if (schemeEnd != std::string::npos) {
    const size_t authorityStart = schemeEnd + 3;
    const size_t authorityEnd = std::min(result.find('/', authorityStart), result.size());
    const size_t at = result.rfind('@', authorityEnd == 0 ? 0 : authorityEnd - 1);
    if (at != std::string::npos && at >= authorityStart) {
      result.erase(authorityStart, at + 1 - authorityStart);
    }
  }
  return result;
}

std::string UrlHost(const std::string& url) {
  size_t start;
  if (StartsWithNoCase(url, "http://")) {
    start = 7;
  } else if (StartsWithNoCase(url, "https://")) {
    start = 8;
  } else {
    return std::string();
  }
  const size_t end = std::min(url.find_first_of("/?#", start), url.size());
  std::string authority = url.substr(start, end - start);
  if (authority.find('\\') != std::string::npos) {
    return std::string();  // browsers read a backslash as '/', curl does not: ambiguous
  }
  const size_t at = authority.rfind('@');
  if (at != std::string::npos) {
    authority.erase(0, at + 1);
  }
  std::transform(authority.begin(), authority.end(), authority.begin(), ToLowerAscii);

  // Strict on purpose: this decides which hosts may receive uploads, so
  // anything a URL parser could read differently is refused (empty).
  std::string host;
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) {
      return std::string();
    }
    host = authority.substr(1, close - 1);
    const std::string rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        return std::string();
      }
      port = rest.substr(1);
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), IsIpv6Char)) {
      return std::string();
    }
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), IsHostNameChar)) {
      return std::string();
    }
  }
  if (!AllDigits(port) || port.size() > 5) {
    return std::string();
  }
  return host;
}

std::string UrlEncode(const std::string& value) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string result;
  result.reserve(value.size() * 3);
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
                            (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' ||
                            byte == '_' || byte == '~';
    if (unreserved) {
      result += c;
    } else {
      result += '%';
      result += kHex[byte >> 4];
      result += kHex[byte & 0x0F];
    }
  }
  return result;
}

}  // namespace CloudIngest
