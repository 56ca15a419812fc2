#pragma once
// URLs as libcurl reads them: the upload-host allow-list, the configuration's
// checks and the transfers all parse a URL with curl's own URL parser, so
// they cannot disagree about which host a URL names.
#include <string>

namespace CloudIngest {

enum class UrlProblem {
  None,
  NoScheme,  // no "scheme://" at the start
  NoHost,    // nothing (or only "/") after "://"
  BadHost,   // a host name curl refuses, or one with characters other than IsHostName's
  BadPort,   // not a number in 1..65535
};

struct UrlParts {
  UrlProblem problem = UrlProblem::None;
  std::string scheme;        // lower case; set whenever the URL starts with "scheme://"
  std::string host;          // lower case, IPv6 without brackets; empty unless problem is None
  unsigned port = 0;         // 0 when the URL names none
  bool hasUserInfo = false;  // "user:password@" present
};

// Stricter than curl where curl is lenient in ways a browser is not: exactly
// two slashes after the scheme, no backslash before the path, no IPv6 zone.
UrlParts ParseUrl(const std::string& url);

// Letters, digits, '-', '.' and '_' (lower case: what ParseUrl returns).
bool IsHostName(const std::string& host);
// Hex digits, ':' and '.' (lower case): the text of an IPv6 address.
bool IsIpv6Text(const std::string& host);
// "fe80:0::1" -> "fe80::1" (curl's spelling); empty when not an IPv6 address.
std::string CanonicalIpv6(const std::string& address);

// Host of an http(s) URL as ParseUrl gives it; empty for any other URL.
std::string UrlHost(const std::string& url);
// Removes the query string, fragment and credentials: what may be logged of a presigned URL.
std::string RedactUrl(const std::string& url);
// Percent-encodes a query-string value (all but RFC 3986's unreserved characters).
std::string UrlEncode(const std::string& value);
// Decodes %XX escapes ('+' stays '+'); invalid escapes are kept as written.
std::string UrlDecode(const std::string& value);

}  // namespace CloudIngest
