#include "Core/Configuration/ConfigurationValues.h"

#include <algorithm>
#include <cctype>

#include "Core/Configuration/ConfigurationReaders.h"
#include "Core/Url.h"

namespace CloudIngest::ConfigurationReaders {

namespace {

// Safe to print: no userinfo, no query, no fragment.
std::string RedactedUrl(const std::string& url) {
  return Quote(RedactUrl(url));
}

bool IsHex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

}  // namespace

std::string ReadUrl(const Json::Value& object, const char* key, const std::string& path,
                    const std::string& example, EmptyUrl empty) {
  const Json::Value* v = Find(object, key);
  const std::string here = Child(path, key);
  const std::string fix = "set it to a URL such as \"" + example + "\"";
  if (!v->isString()) Fail(here, "expected a string, found " + TypeName(*v), fix);
  const std::string url = v->asString();
  if (url.empty() && empty == EmptyUrl::Allowed) return url;
  if (url.empty()) {
    Fail(here, "is empty (an unset ${VARIABLE} in Orthanc's configuration expands to \"\")",
         "export the environment variable it refers to before starting Orthanc, or " + fix);
  }
  for (const char ch : url) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) {
      Fail(here, "contains a space or a control character", "remove it; " + fix);
    }
  }
  const UrlParts parts = ParseUrl(url);
  if (parts.problem == UrlProblem::NoScheme) {
    Fail(here, "expected an http:// or https:// URL, found no scheme", fix);
  }
  if (parts.scheme != "http" && parts.scheme != "https") {
    Fail(here, "expected an http:// or https:// URL, found scheme " + Quote(parts.scheme), fix);
  }
  if (parts.hasUserInfo) {
    Fail(here, "must not contain user:password@ (credentials go in ClientId and ClientSecret)",
         "remove them from the URL");
  }
  switch (parts.problem) {
    case UrlProblem::NoHost:
      Fail(here, "has no host, found " + RedactedUrl(url), fix);
    case UrlProblem::BadHost:
      Fail(here,
           "has a host name with characters other than letters, digits, '-', '.' and '_', "
           "found " +
               RedactedUrl(url),
           "write international names in their xn-- form; " + fix);
    case UrlProblem::BadPort:
      Fail(here, "has an invalid port, found " + RedactedUrl(url), fix);
    case UrlProblem::NoScheme:
    case UrlProblem::None:
      break;
  }
  if (url.find_first_of("?#") != std::string::npos) {
    Fail(here,
         "must not have a query or a fragment (the plugin appends its own), found " +
             RedactedUrl(url),
         "remove the part from '?' or '#'");
  }
  // Scheme in lower case, so that later code may compare it plainly.
  return parts.scheme + url.substr(url.find("://"));
}

std::string HostOfUrl(const std::string& url) {
  return ParseUrl(url).host;
}

std::string CheckHostPattern(const std::string& value, const std::string& path) {
  std::string host = Lower(TrimBlanks(value));
  const std::string fix =
      "write a host name such as \"uploads.example.com\" or \"*.s3.amazonaws.com\" (no scheme, "
      "port or path; IPv6 as \"[::1]\")";
  if (host.empty()) Fail(path, "is empty", fix);
  if (host.find("://") != std::string::npos || host.find('/') != std::string::npos) {
    Fail(path, "expected a host name, found " + Quote(value), fix);
  }
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  const bool ipv6 = bracketed || std::count(host.begin(), host.end(), ':') >= 2;
  for (const char c : host) {
    const std::string one(1, c);
    if (c != '*' && !(ipv6 ? IsIpv6Text(one) : IsHostName(one))) {
      Fail(path,
           std::string(c == ':' ? "must not include a port" : "contains an invalid character") +
               ", found " + Quote(value),
           fix);
    }
  }
  if (ipv6 && host.find('*') == std::string::npos) {
    // Compared with the host of upload URLs, which curl spells canonically.
    const std::string canonical = CanonicalIpv6(host);
    if (canonical.empty()) Fail(path, "is not an IPv6 address, found " + Quote(value), fix);
    host = canonical;
  }
  return host;
}

std::string CheckModality(const std::string& value, const std::string& path) {
  const std::string modality = Upper(TrimBlanks(value));
  const std::string fix = "write a DICOM modality such as \"CT\" or \"MR\"";
  if (modality.empty() || modality.size() > 16)
    Fail(path, "expected a modality, found " + Quote(value), fix);
  for (const char c : modality) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      Fail(path, "expected a modality (letters, digits, '_'), found " + Quote(value), fix);
    }
  }
  return modality;
}

std::string CheckAet(const std::string& value, const std::string& path) {
  const std::string aet = TrimBlanks(value);
  const std::string fix = "write an AE title of 1 to 16 characters such as \"CT_SCANNER\"";
  if (aet.empty() || aet.size() > 16)
    Fail(path, "expected an AE title, found " + Quote(value), fix);
  for (const char c : aet) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '\\') {
      Fail(path, "expected an AE title (printable ASCII, no '\\'), found " + Quote(value), fix);
    }
  }
  return aet;
}

std::string NormaliseTagReference(const std::string& value, const std::string& path) {
  const std::string fix =
      "write a DICOM keyword such as \"PerformingPhysicianName\", a tag such as \"0008,1050\", "
      "or a constant as {\"Value\": \"...\"}";
  if (value.size() == 9 && value[4] == ',' && IsHex(value.substr(0, 4)) && IsHex(value.substr(5))) {
    return Lower(value);
  }
  if (value.size() == 8 && IsHex(value)) return Lower(value.substr(0, 4) + "," + value.substr(4));
  const bool keyword =
      !value.empty() && std::isalpha(static_cast<unsigned char>(value[0])) &&
      std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isalnum(c); });
  if (!keyword) Fail(path, "expected a DICOM tag name, found " + Quote(value), fix);
  return value;
}

}  // namespace CloudIngest::ConfigurationReaders
