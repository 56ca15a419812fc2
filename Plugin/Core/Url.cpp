#include "Core/Url.h"

#include <curl/curl.h>

#include <algorithm>
#include <boost/algorithm/string/case_conv.hpp>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/predicate.hpp>
#include <memory>
#include <new>
#include <string>

namespace CloudIngest {

namespace {

struct UrlDeleter {
  void operator()(CURLU* handle) const { curl_url_cleanup(handle); }
};

struct CurlStringDeleter {
  void operator()(char* text) const { curl_free(text); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

// One part of a parsed URL; empty when absent.
std::string Part(CURLU* handle, CURLUPart part) {
  char* raw = nullptr;
  if (curl_url_get(handle, part, &raw, 0) != CURLUE_OK || raw == nullptr) {
    return std::string();
  }
  const CurlString text(raw);
  return std::string(text.get());
}

bool HasPart(CURLU* handle, CURLUPart part) {
  char* raw = nullptr;
  const CurlString text(curl_url_get(handle, part, &raw, 0) == CURLUE_OK ? raw : nullptr);
  return text != nullptr;
}

UrlProblem ProblemOf(CURLUcode code) {
  switch (code) {
    case CURLUE_NO_HOST:
      return UrlProblem::NoHost;
    case CURLUE_BAD_PORT_NUMBER:
      return UrlProblem::BadPort;
    default:
      return UrlProblem::BadHost;
  }
}

// RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://".
size_t SchemeLength(const std::string& url) {
  using namespace boost::algorithm;
  const size_t colon = url.find("://");
  const auto letter = is_from_range('a', 'z') || is_from_range('A', 'Z');
  if (colon == std::string::npos || colon == 0 || !letter(url[0]) ||
      !all(url.substr(0, colon), letter || is_from_range('0', '9') || is_any_of("+-."))) {
    return 0;
  }
  return colon;
}

}  // namespace

bool IsHostName(const std::string& host) {
  using namespace boost::algorithm;
  return !host.empty() &&
         all(host, is_from_range('a', 'z') || is_from_range('0', '9') || is_any_of("-._"));
}

bool IsIpv6Text(const std::string& host) {
  using namespace boost::algorithm;
  return !host.empty() &&
         all(host, is_from_range('a', 'f') || is_from_range('0', '9') || is_any_of(":."));
}

UrlParts ParseUrl(const std::string& url) {
  UrlParts parts;
  const size_t schemeLength = SchemeLength(url);
  if (schemeLength == 0) {
    parts.problem = UrlProblem::NoScheme;
    return parts;
  }
  parts.scheme =
      boost::algorithm::to_lower_copy(url.substr(0, schemeLength), std::locale::classic());
  const size_t authorityStart = schemeLength + 3;
  const size_t authorityEnd = std::min(url.find_first_of("/?#", authorityStart), url.size());
  if (authorityEnd == authorityStart) {
    // curl would read "https:///api" as host "api"; a browser would not.
    parts.problem = UrlProblem::NoHost;
    return parts;
  }
  if (url.find('\\', authorityStart) < authorityEnd) {
    // A browser reads a backslash as '/', curl as part of the user name.
    parts.problem = UrlProblem::BadHost;
    return parts;
  }
  parts.hasUserInfo = url.find('@', authorityStart) < authorityEnd;
  const std::unique_ptr<CURLU, UrlDeleter> handle(curl_url());
  if (!handle) throw std::bad_alloc();
  const CURLUcode code =
      curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME);
  if (code != CURLUE_OK) {
    parts.problem = ProblemOf(code);
    return parts;
  }
  std::string host =
      boost::algorithm::to_lower_copy(Part(handle.get(), CURLUPART_HOST), std::locale::classic());
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  if (host.empty()) {
    parts.problem = UrlProblem::NoHost;
    return parts;
  }
  if (bracketed ? !IsIpv6Text(host) || HasPart(handle.get(), CURLUPART_ZONEID)
                : !IsHostName(host)) {
    parts.problem = UrlProblem::BadHost;
    return parts;
  }
  const std::string port = Part(handle.get(), CURLUPART_PORT);
  parts.port = port.empty() ? 0 : static_cast<unsigned>(std::stoul(port));
  if (!port.empty() && parts.port == 0) {
    parts.problem = UrlProblem::BadPort;
    return parts;
  }
  parts.host = host;
  return parts;
}

std::string CanonicalIpv6(const std::string& address) {
  const UrlParts parts = ParseUrl("http://[" + address + "]/");
  return parts.problem == UrlProblem::None ? parts.host : std::string();
}

std::string UrlHost(const std::string& url) {
  const UrlParts parts = ParseUrl(url);
  if (parts.scheme != "http" && parts.scheme != "https") {
    return std::string();
  }
  return parts.host;
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

std::string UrlEncode(const std::string& value) {
  if (value.empty()) return value;
  // The handle argument is unused since curl 7.82; escaping needs none.
  const CurlString encoded(curl_easy_escape(nullptr, value.data(), static_cast<int>(value.size())));
  if (!encoded) throw std::bad_alloc();
  return encoded.get();
}

std::string UrlDecode(const std::string& value) {
  if (value.empty()) return value;
  int length = 0;
  const CurlString decoded(
      curl_easy_unescape(nullptr, value.data(), static_cast<int>(value.size()), &length));
  if (!decoded) throw std::bad_alloc();
  return std::string(decoded.get(), static_cast<size_t>(length));
}

}  // namespace CloudIngest
