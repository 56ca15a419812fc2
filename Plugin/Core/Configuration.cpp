// Parsing and validation of the CloudIngest section (CONTRACT section 2).
//
// Every problem stops start-up with ONE line of the form
//   CloudIngest.<Key>: <problem>; <fix>
// so that an administrator reading Orthanc's log knows what to change.
// Values are echoed (shortened, escaped) to help, except ClientSecret and
// HttpProxy (may hold credentials) and the userinfo/query of URLs.
//
// Extensions to the contract's keys (all optional):
//   Endpoints         {"NewOrder": {"Method": "GET", "Path": "/new-order"},
//                      "Upload": {"Method": "GET", "Path": "/upload"},
//                      "AddMetadata": {"Method": "PATCH", "Path": "/add-metadata"}}
//                     methods GET|POST|PUT|PATCH, paths start with '/', are
//                     appended to Url and carry no query; each part optional.
//   GroupWindow       seconds, default 60, > 0: the service's grouping window.
//   LateInstances     "Resend" (default) | "Ignore": instances arriving after a
//                     study was sent make it be sent again, or are ignored.
//   StudyWorkers      1..16, default 2: studies sent at the same time.
//   MaxStudyAttempts  1..1000, default 20: whole-study attempts before failing.
//   StudyRetryDelay   seconds, default 60: first delay between study attempts.
//   ChangesPollInterval seconds, default 30: how often /changes is read to
//                     move the cursor the start-up catch-up scan begins at.
// OrderMetadata entries may reuse a default order key (e.g. "patient_name"):
// they override it.
#include "Configuration.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace CloudIngest {

std::string ToString(UploadMode mode) {
  switch (mode) {
    case UploadMode::Instances:
      return "Instances";
    case UploadMode::Zip:
      return "Zip";
    case UploadMode::Nifti:
      return "Nifti";
  }
  return "Instances";
}

namespace {

const char* const kKnownKeys[] = {
    "Enable", "Url", "TokenUrl", "TokenMethod", "ClientId", "ClientSecret", "Scope", "AutoSend",
    "UploadMode", "Filters", "OrderMetadata", "Concurrency", "MaxAttempts", "RetryBaseDelay",
    "RetryMaxDelay", "Timeout", "ConnectTimeout", "HttpsVerifyPeers", "HttpsCACertificates",
    "HttpProxy", "AllowedUploadHosts", "AuditLog", "Database",
    // extensions
    "Endpoints", "GroupWindow", "LateInstances", "StudyWorkers", "MaxStudyAttempts",
    "StudyRetryDelay", "TemporaryDirectory", "UploadModeRules", "Dcm2niixPath", "NiftiFallback",
    "ChangesPollInterval"};

const std::vector<std::string> kFilterKeys = {"Modalities", "CallingAets"};
const std::vector<std::string> kRuleKeys = {"Modalities", "CallingAets", "UploadMode"};
const std::vector<std::string> kEndpointKeys = {"NewOrder", "Upload", "AddMetadata"};
const std::vector<std::string> kEndpointPartKeys = {"Method", "Path"};
const std::vector<std::string> kConstantKeys = {"Value"};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

// Keeps the message on one line whatever bytes a user put in a key or value.
std::string Escape(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

// Shortens to `max` bytes without cutting a UTF-8 sequence, then escapes.
std::string Shorten(const std::string& s, size_t max = 60) {
  if (s.size() <= max) return Escape(s);
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return Escape(s.substr(0, cut)) + "...";
}

std::string Quote(const std::string& s) {
  return "\"" + Shorten(s) + "\"";
}

std::string TypeName(const Json::Value& v) {
  switch (v.type()) {
    case Json::nullValue:
      return "null";
    case Json::intValue:
    case Json::uintValue:
    case Json::realValue:
      return "a number";
    case Json::stringValue:
      return "a string";
    case Json::booleanValue:
      return "true/false";
    case Json::arrayValue:
      return "an array";
    case Json::objectValue:
      return "an object";
  }
  return "an unknown value";
}

std::string NumberText(double d) {
  std::ostringstream out;
  out.precision(15);
  out << d;
  return out.str();
}

// What the user wrote, for "found ..." (never used for secrets).
std::string Describe(const Json::Value& v) {
  switch (v.type()) {
    case Json::stringValue:
      return Quote(v.asString());
    case Json::booleanValue:
      return v.asBool() ? "true" : "false";
    case Json::intValue:
      return std::to_string(v.asLargestInt());
    case Json::uintValue:
      return std::to_string(v.asLargestUInt());
    case Json::realValue:
      return NumberText(v.asDouble());
    default:
      return TypeName(v);
  }
}

[[noreturn]] void Fail(const std::string& path, const std::string& problem,
                       const std::string& fix) {
  throw ConfigurationError(path + ": " + problem + "; " + fix);
}

std::string Child(const std::string& path, const std::string& key) {
  return path + "." + Shorten(key, 40);
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Rejects keys not in `known`, suggesting the closest one when it is close.
void CheckKeys(const Json::Value& object, const std::vector<std::string>& known,
               const std::string& path) {
  for (const std::string& key : object.getMemberNames()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    const std::string lowered = Lower(key);
    const std::string* best = nullptr;
    size_t bestDistance = 0;
    for (const std::string& candidate : known) {
      const size_t d = EditDistance(lowered, Lower(candidate));
      if (best == nullptr || d < bestDistance) {
        best = &candidate;
        bestDistance = d;
      }
    }
    std::string fix;
    if (best != nullptr &&
        bestDistance <=
            std::min<size_t>(4, std::max<size_t>(2, std::max(key.size(), best->size()) / 3))) {
      fix = "did you mean '" + *best + "'?";
    } else {
      std::string list;
      for (const std::string& candidate : known) list += (list.empty() ? "" : ", ") + candidate;
      fix = "remove it; known keys are " + list;
    }
    Fail(Child(path, key), "unknown key", fix);
  }
}

std::vector<std::string> KnownKeys() {
  return std::vector<std::string>(std::begin(kKnownKeys), std::end(kKnownKeys));
}

const Json::Value* Find(const Json::Value& object, const char* key) {
  return object.find(key, key + std::char_traits<char>::length(key));
}

bool ReadBool(const Json::Value& object, const char* key, const std::string& path, bool& out) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  if (!v->isBool()) {
    Fail(Child(path, key), "expected true or false, found " + Describe(*v),
         "write true or false without quotes");
  }
  out = v->asBool();
  return true;
}

// `secret`: say only what type was found, never the value.
bool ReadString(const Json::Value& object, const char* key, const std::string& path,
                std::string& out, const std::string& example, bool secret = false) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  if (!v->isString()) {
    Fail(Child(path, key), "expected a string, found " + (secret ? TypeName(*v) : Describe(*v)),
         "set it to a string such as " + example);
  }
  out = v->asString();
  return true;
}

bool ReadInteger(const Json::Value& object, const char* key, const std::string& path, unsigned min,
                 unsigned max, unsigned example, unsigned& out) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  const std::string expected = std::string(min >= 1 ? "a positive integer" : "an integer") + " (" +
                               std::to_string(min) + ".." + std::to_string(max) + ")";
  const std::string fix = "set it to a number such as " + std::to_string(example);
  if (!v->isNumeric())
    Fail(Child(path, key), "expected " + expected + ", found " + Describe(*v), fix);
  const double d = v->asDouble();
  if (!std::isfinite(d) || d != std::floor(d) || d < min || d > max) {
    Fail(Child(path, key), "expected " + expected + ", found " + Describe(*v), fix);
  }
  out = static_cast<unsigned>(d);
  return true;
}

// Seconds: a finite number in (0, max].
bool ReadSeconds(const Json::Value& object, const char* key, const std::string& path, double max,
                 const std::string& example, double& out) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  const std::string expected = "a number of seconds greater than 0 and at most " + NumberText(max);
  const std::string fix = "set it to a number such as " + example;
  if (!v->isNumeric())
    Fail(Child(path, key), "expected " + expected + ", found " + Describe(*v), fix);
  const double d = v->asDouble();
  if (!std::isfinite(d) || d <= 0 || d > max) {
    Fail(Child(path, key), "expected " + expected + ", found " + Describe(*v), fix);
  }
  out = d;
  return true;
}

bool ReadObject(const Json::Value& object, const char* key, const std::string& path,
                const std::string& example, const Json::Value*& out) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  if (!v->isObject()) {
    Fail(Child(path, key), "expected an object, found " + Describe(*v),
         "write it as an object such as " + example);
  }
  out = v;
  return true;
}

// An array of strings; `item` checks/normalises each element (path "Key[i]").
template <typename Check>
bool ReadStringArray(const Json::Value& object, const char* key, const std::string& path,
                     const std::string& example, std::vector<std::string>& out, Check item) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  const std::string here = Child(path, key);
  if (!v->isArray()) {
    Fail(here, "expected an array of strings, found " + Describe(*v),
         "write it as an array such as " + example);
  }
  std::vector<std::string> values;
  for (Json::ArrayIndex i = 0; i < v->size(); ++i) {
    const Json::Value& element = (*v)[i];
    const std::string elementPath = here + "[" + std::to_string(i) + "]";
    if (!element.isString()) {
      Fail(elementPath, "expected a string, found " + Describe(element),
           "write it as an array of strings such as " + example);
    }
    values.push_back(item(element.asString(), elementPath));
  }
  out = std::move(values);
  return true;
}

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const size_t end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

// ---- URLs

struct UrlParts {
  std::string scheme;  // lower-case
  std::string authority;
  std::string host;  // lower-case, without port, IPv6 kept in brackets
  std::string port;  // what follows the host, ":8443" or empty
  std::string rest;  // path, query and fragment
};

UrlParts SplitUrl(const std::string& url) {
  UrlParts parts;
  const size_t sep = url.find("://");
  if (sep == std::string::npos) return parts;
  parts.scheme = Lower(url.substr(0, sep));
  const size_t authorityEnd = url.find_first_of("/?#", sep + 3);
  parts.authority = url.substr(
      sep + 3, authorityEnd == std::string::npos ? std::string::npos : authorityEnd - sep - 3);
  parts.rest = authorityEnd == std::string::npos ? "" : url.substr(authorityEnd);
  const size_t at = parts.authority.rfind('@');
  std::string hostPort = at == std::string::npos ? parts.authority : parts.authority.substr(at + 1);
  if (!hostPort.empty() && hostPort[0] == '[') {
    const size_t close = hostPort.find(']');
    parts.host = close == std::string::npos ? "" : hostPort.substr(0, close + 1);
  } else {
    parts.host = hostPort.substr(0, hostPort.find(':'));
  }
  parts.port = hostPort.substr(parts.host.size());
  parts.host = Lower(parts.host);
  return parts;
}

// Safe to print: no userinfo, no query, no fragment.
std::string RedactedUrl(const std::string& url) {
  const UrlParts parts = SplitUrl(url);
  if (parts.scheme.empty()) return Quote(url.substr(0, url.find_first_of("@?#")));
  const size_t at = parts.authority.rfind('@');
  const std::string hostPort =
      at == std::string::npos ? parts.authority : parts.authority.substr(at + 1);
  const std::string path = parts.rest.substr(0, parts.rest.find_first_of("?#"));
  return Quote(parts.scheme + "://" + hostPort + path);
}

// Host names as IngestClient compares them (see UrlHost in Http.h): lower
// case, no port, IPv6 addresses without brackets.
bool IsHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

bool IsIpv6Char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

// "[::1]" -> "::1"; names unchanged; empty when neither form is valid.
std::string UsableHost(const std::string& host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    const std::string address = host.substr(1, host.size() - 2);
    return std::all_of(address.begin(), address.end(), IsIpv6Char) ? address : "";
  }
  return !host.empty() && std::all_of(host.begin(), host.end(), IsHostNameChar) ? host : "";
}

// Validates an http(s) URL to which paths or a query will be appended.
// Empty is accepted only when `allowEmpty` (the plugin is disabled).
std::string ReadUrl(const Json::Value& object, const char* key, const std::string& path,
                    const std::string& example, bool allowEmpty) {
  const Json::Value* v = Find(object, key);
  const std::string here = Child(path, key);
  const std::string fix = "set it to a URL such as \"" + example + "\"";
  if (!v->isString()) Fail(here, "expected a string, found " + TypeName(*v), fix);
  const std::string url = v->asString();
  if (url.empty() && allowEmpty) return url;
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
  const UrlParts parts = SplitUrl(url);
  if (parts.scheme.empty()) Fail(here, "expected an http:// or https:// URL, found no scheme", fix);
  if (parts.scheme != "http" && parts.scheme != "https") {
    Fail(here, "expected an http:// or https:// URL, found scheme " + Quote(parts.scheme), fix);
  }
  if (parts.authority.find('@') != std::string::npos) {
    Fail(here, "must not contain user:password@ (credentials go in ClientId and ClientSecret)",
         "remove them from the URL");
  }
  if (parts.host.empty() || parts.host == "[]") {
    Fail(here, "has no host, found " + RedactedUrl(url), fix);
  }
  if (UsableHost(parts.host).empty()) {
    Fail(here,
         "has a host name with characters other than letters, digits, '-', '.' and '_', found " +
             RedactedUrl(url),
         "write international names in their xn-- form; " + fix);
  }
  const std::string digits = parts.port.empty() ? "" : parts.port.substr(1);
  if (!parts.port.empty() && (parts.port[0] != ':' || digits.empty() || digits.size() > 5 ||
                              !std::all_of(digits.begin(), digits.end(),
                                           [](unsigned char c) { return std::isdigit(c); }) ||
                              std::stoul(digits) == 0 || std::stoul(digits) > 65535)) {
    Fail(here, "has an invalid port, found " + RedactedUrl(url), fix);
  }
  if (parts.rest.find_first_of("?#") != std::string::npos) {
    Fail(here,
         "must not have a query or a fragment (the plugin appends its own), found " +
             RedactedUrl(url),
         "remove the part from '?' or '#'");
  }
  // Scheme in lower case, so that later code may compare it plainly.
  return parts.scheme + url.substr(url.find("://"));
}

// ---- AllowedUploadHosts

std::string CheckHostPattern(const std::string& value, const std::string& path) {
  std::string host = Lower(Trim(value));
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
    if (ipv6 ? !(IsIpv6Char(c) || c == '*') : !(IsHostNameChar(c) || c == '*')) {
      Fail(path,
           std::string(c == ':' ? "must not include a port" : "contains an invalid character") +
               ", found " + Quote(value),
           fix);
    }
  }
  return host;
}

// ---- Filters

std::string CheckModality(const std::string& value, const std::string& path) {
  const std::string modality = Upper(Trim(value));
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
  const std::string aet = Trim(value);
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

void ReadFilters(const Json::Value& section, Filters& filters) {
  const Json::Value* object = nullptr;
  if (!ReadObject(section, "Filters", "CloudIngest",
                  "{\"Modalities\": [\"CT\", \"MR\"], \"CallingAets\": [\"SCANNER1\"]}", object)) {
    return;
  }
  const std::string path = "CloudIngest.Filters";
  CheckKeys(*object, kFilterKeys, path);
  ReadStringArray(*object, "Modalities", path, "[\"CT\", \"MR\"]", filters.modalities,
                  CheckModality);
  ReadStringArray(*object, "CallingAets", path, "[\"SCANNER1\"]", filters.callingAets, CheckAet);
}

void ReadUploadModeRules(const Json::Value& section, std::vector<UploadModeRule>& rules) {
  const Json::Value* v = Find(section, "UploadModeRules");
  if (v == nullptr) return;
  const std::string path = "CloudIngest.UploadModeRules";
  const std::string example = "[{\"Modalities\": [\"MR\"], \"UploadMode\": \"Zip\"}]";
  if (!v->isArray()) {
    Fail(path, "expected an array of rules, found " + Describe(*v), "write it as " + example);
  }
  for (Json::ArrayIndex i = 0; i < v->size(); i++) {
    const std::string here = path + "[" + std::to_string(i) + "]";
    const Json::Value& rule = (*v)[i];
    if (!rule.isObject()) {
      Fail(here, "expected an object, found " + Describe(rule), "write each rule as " + example);
    }
    CheckKeys(rule, kRuleKeys, here);
    UploadModeRule parsed;
    ReadStringArray(rule, "Modalities", here, "[\"CT\", \"MR\"]", parsed.modalities, CheckModality);
    ReadStringArray(rule, "CallingAets", here, "[\"SCANNER1\"]", parsed.callingAets, CheckAet);
    std::string mode;
    if (!ReadString(rule, "UploadMode", here, mode, "\"Zip\"")) {
      Fail(Child(here, "UploadMode"), "missing", "set it to \"Instances\" or \"Zip\"");
    }
    if (Lower(mode) == "zip") {
      parsed.mode = UploadMode::Zip;
    } else if (Lower(mode) == "instances") {
      parsed.mode = UploadMode::Instances;
    } else if (Lower(mode) == "nifti") {
      parsed.mode = UploadMode::Nifti;
    } else {
      Fail(Child(here, "UploadMode"),
           "expected \"Instances\", \"Zip\" or \"Nifti\", found " + Quote(mode),
           "use one of these");
    }
    rules.push_back(std::move(parsed));
  }
}

// ---- OrderMetadata

bool IsHex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

// Returns the tag reference normalised: a keyword as written, or "gggg,eeee"
// in lower case (Orthanc's own spelling of tags without a keyword).
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

void ReadOrderMetadata(const Json::Value& section,
                       std::map<std::string, OrderMetadataValue>& metadata) {
  const Json::Value* object = nullptr;
  if (!ReadObject(section, "OrderMetadata", "CloudIngest",
                  "{\"performing_physician\": \"PerformingPhysicianName\", \"site\": {\"Value\": "
                  "\"site-7\"}}",
                  object)) {
    return;
  }
  for (const std::string& key : object->getMemberNames()) {
    const std::string path = Child("CloudIngest.OrderMetadata", key);
    if (key.empty()) {
      Fail("CloudIngest.OrderMetadata", "an entry has an empty key",
           "give every entry a name such as \"site\"");
    }
    const Json::Value& v = (*object)[key];
    OrderMetadataValue entry;
    if (v.isString()) {
      entry.tag = NormaliseTagReference(v.asString(), path);
    } else if (v.isObject()) {
      CheckKeys(v, kConstantKeys, path);
      const Json::Value* constant = Find(v, "Value");
      if (constant == nullptr) {
        Fail(path, "a constant needs \"Value\"", "write it as {\"Value\": \"site-7\"}");
      }
      if (!constant->isString() && !constant->isNumeric() && !constant->isBool()) {
        Fail(path + ".Value",
             "expected a string, a number or true/false, found " + Describe(*constant),
             "write it as {\"Value\": \"site-7\"}");
      }
      entry.isConstant = true;
      entry.constant = *constant;
    } else {
      Fail(path, "expected a DICOM tag name (string) or {\"Value\": ...}, found " + Describe(v),
           "write \"PerformingPhysicianName\" or {\"Value\": \"site-7\"}");
    }
    metadata[key] = std::move(entry);
  }
}

// ---- Endpoints

void ReadEndpoint(const Json::Value& endpoints, const char* key, Endpoint& endpoint) {
  const std::string example =
      "{\"Method\": \"" + endpoint.method + "\", \"Path\": \"" + endpoint.path + "\"}";
  const Json::Value* object = nullptr;
  if (!ReadObject(endpoints, key, "CloudIngest.Endpoints", example, object)) return;
  const std::string path = Child("CloudIngest.Endpoints", key);
  CheckKeys(*object, kEndpointPartKeys, path);

  std::string method;
  if (ReadString(*object, "Method", path, method, "\"" + endpoint.method + "\"")) {
    const std::string upper = Upper(method);
    if (upper != "GET" && upper != "POST" && upper != "PUT" && upper != "PATCH") {
      Fail(path + ".Method", "expected GET, POST, PUT or PATCH, found " + Quote(method),
           "use one of these");
    }
    endpoint.method = upper;
  }
  std::string target;
  if (ReadString(*object, "Path", path, target, "\"" + endpoint.path + "\"")) {
    const bool printable = std::all_of(target.begin(), target.end(),
                                       [](unsigned char c) { return c > 0x20 && c != 0x7f; });
    if (target.empty() || target[0] != '/' || !printable ||
        target.find_first_of("?#") != std::string::npos) {
      Fail(path + ".Path",
           "expected a path starting with '/' without spaces, query or fragment, found " +
               Quote(target),
           "write it as \"" + endpoint.path + "\" (it is appended to Url)");
    }
    endpoint.path = target;
  }
}

void ReadEndpoints(const Json::Value& section, Configuration& config) {
  const Json::Value* object = nullptr;
  if (!ReadObject(section, "Endpoints", "CloudIngest",
                  "{\"NewOrder\": {\"Method\": \"POST\", \"Path\": \"/new-order\"}}", object)) {
    return;
  }
  CheckKeys(*object, kEndpointKeys, "CloudIngest.Endpoints");
  ReadEndpoint(*object, "NewOrder", config.newOrder);
  ReadEndpoint(*object, "Upload", config.upload);
  ReadEndpoint(*object, "AddMetadata", config.addMetadata);
}

// ---- Helpers for enums and paths

template <typename T>
bool ReadChoice(const Json::Value& section, const char* key,
                const std::vector<std::pair<std::string, T>>& choices, T& out) {
  std::string list;
  for (const auto& choice : choices) list += (list.empty() ? "\"" : " or \"") + choice.first + "\"";
  std::string value;
  if (!ReadString(section, key, "CloudIngest", value, list)) return false;
  for (const auto& choice : choices) {
    if (Lower(value) == Lower(choice.first)) {
      out = choice.second;
      return true;
    }
  }
  Fail(Child("CloudIngest", key), "expected " + list + ", found " + Quote(value),
       "use one of these");
}

std::string JoinPath(const std::string& directory, const std::string& file) {
  if (directory.empty()) return file;
  return directory.back() == '/' ? directory + file : directory + "/" + file;
}

void ReadNonEmptyPath(const Json::Value& section, const char* key, const std::string& example,
                      std::string& out) {
  std::string value;
  if (!ReadString(section, key, "CloudIngest", value, example)) return;
  if (value.empty()) {
    Fail(Child("CloudIngest", key), "is empty", "remove it to use the default, or set a file path");
  }
  out = value;
}

void RequireNonEmpty(const Json::Value& section, const char* key, const std::string& value,
                     const std::string& what) {
  const std::string here = Child("CloudIngest", key);
  if (Find(section, key) == nullptr) {
    Fail(here, "missing (required when Enable is true)", "set it to " + what);
  }
  if (value.empty()) {
    Fail(here, "is empty (an unset ${VARIABLE} in Orthanc's configuration expands to \"\")",
         "export the environment variable it refers to before starting Orthanc, or set it to " +
             what);
  }
}

}  // namespace

Configuration ParseConfiguration(const Json::Value& section, const OrthancDefaults& defaults) {
  Configuration config;
  config.timeout = defaults.httpTimeout > 0 ? defaults.httpTimeout : 60;
  config.httpsVerifyPeers = defaults.httpsVerifyPeers;
  config.httpsCaCertificates = defaults.httpsCaCertificates;
  config.httpProxy = defaults.httpProxy;
  config.auditLog = JoinPath(defaults.indexDirectory, "cloud-ingest-audit.jsonl");
  config.database = JoinPath(defaults.indexDirectory, "cloud-ingest.db");
  config.temporaryDirectory = JoinPath(defaults.indexDirectory, "cloud-ingest-tmp");

  if (section.isNull()) {
    config.enable = false;
    return config;
  }
  if (!section.isObject()) {
    Fail("CloudIngest", "expected an object, found " + Describe(section),
         "write \"CloudIngest\": {\"Url\": \"https://...\", \"ClientId\": \"...\", "
         "\"ClientSecret\": \"${CLOUD_INGEST_CLIENT_SECRET}\"}");
  }
  const std::string root = "CloudIngest";
  CheckKeys(section, KnownKeys(), root);

  ReadBool(section, "Enable", root, config.enable);

  const bool hasUrl = Find(section, "Url") != nullptr;
  if (hasUrl) {
    config.url = ReadUrl(section, "Url", root, "https://ingest.example.com/api", !config.enable);
    while (!config.url.empty() && config.url.back() == '/') config.url.pop_back();
  }
  if (Find(section, "TokenUrl") != nullptr) {
    config.tokenUrl =
        ReadUrl(section, "TokenUrl", root, "https://ingest.example.com/auth/token", !config.enable);
  } else if (!config.url.empty()) {
    config.tokenUrl = config.url + "/auth/token";
  }

  std::string tokenMethod;
  if (ReadString(section, "TokenMethod", root, tokenMethod, "\"GET\"")) {
    config.tokenMethod = Upper(tokenMethod);
    if (config.tokenMethod != "GET" && config.tokenMethod != "POST") {
      Fail("CloudIngest.TokenMethod", "expected \"GET\" or \"POST\", found " + Quote(tokenMethod),
           "use one of these");
    }
  }

  ReadString(section, "ClientId", root, config.clientId, "\"orthanc-site-7\"");
  ReadString(section, "ClientSecret", root, config.clientSecret,
             "\"${CLOUD_INGEST_CLIENT_SECRET}\"", /*secret=*/true);
  ReadString(section, "Scope", root, config.scope, "\"upload\"");
  ReadBool(section, "AutoSend", root, config.autoSend);
  ReadChoice<UploadMode>(section, "UploadMode",
                         {{"Instances", UploadMode::Instances},
                          {"Zip", UploadMode::Zip},
                          {"Nifti", UploadMode::Nifti}},
                         config.uploadMode);
  ReadFilters(section, config.filters);
  ReadUploadModeRules(section, config.uploadModeRules);
  ReadOrderMetadata(section, config.orderMetadata);

  ReadInteger(section, "Concurrency", root, 1, 64, 4, config.concurrency);
  ReadInteger(section, "MaxAttempts", root, 1, 1000, 8, config.retry.maxAttempts);
  ReadSeconds(section, "RetryBaseDelay", root, 3600, "1", config.retry.baseDelay);
  // Default ceiling follows a larger base delay instead of contradicting it.
  config.retry.maxDelay = std::max(config.retry.maxDelay, config.retry.baseDelay);
  if (ReadSeconds(section, "RetryMaxDelay", root, 86400, "30", config.retry.maxDelay) &&
      config.retry.maxDelay < config.retry.baseDelay) {
    Fail("CloudIngest.RetryMaxDelay",
         "must be at least RetryBaseDelay (" + NumberText(config.retry.baseDelay) + "), found " +
             NumberText(config.retry.maxDelay),
         "raise RetryMaxDelay or lower RetryBaseDelay");
  }
  ReadSeconds(section, "Timeout", root, 86400, "60", config.timeout);
  ReadSeconds(section, "ConnectTimeout", root, 3600, "10", config.connectTimeout);

  ReadBool(section, "HttpsVerifyPeers", root, config.httpsVerifyPeers);
  ReadString(section, "HttpsCACertificates", root, config.httpsCaCertificates,
             "\"/etc/ssl/certs/ca-certificates.crt\"");
  // A proxy URL may carry credentials: never echoed.
  ReadString(section, "HttpProxy", root, config.httpProxy, "\"http://proxy.example.com:3128\"",
             /*secret=*/true);

  if (!ReadStringArray(section, "AllowedUploadHosts", root,
                       "[\"uploads.example.com\", \"*.s3.amazonaws.com\"]",
                       config.allowedUploadHosts, CheckHostPattern)) {
    if (!config.url.empty()) config.allowedUploadHosts = {UsableHost(SplitUrl(config.url).host)};
  } else if (config.allowedUploadHosts.empty()) {
    Fail("CloudIngest.AllowedUploadHosts", "is empty, so every upload URL would be refused",
         "list the host of the presigned URLs such as \"uploads.example.com\", or remove the key "
         "to allow the host of Url");
  }

  ReadNonEmptyPath(section, "AuditLog", "\"/var/lib/orthanc/cloud-ingest-audit.jsonl\"",
                   config.auditLog);
  ReadNonEmptyPath(section, "Database", "\"/var/lib/orthanc/cloud-ingest.db\"", config.database);
  ReadNonEmptyPath(section, "TemporaryDirectory", "\"/var/lib/orthanc/cloud-ingest-tmp\"",
                   config.temporaryDirectory);
  ReadNonEmptyPath(section, "Dcm2niixPath", "\"/usr/bin/dcm2niix\"", config.dcm2niixPath);
  ReadChoice<bool>(section, "NiftiFallback", {{"Dicom", true}, {"Skip", false}},
                   config.niftiFallbackToDicom);

  ReadEndpoints(section, config);
  ReadSeconds(section, "GroupWindow", root, 3600, "60", config.groupWindow);
  ReadChoice<LateInstancePolicy>(
      section, "LateInstances",
      {{"Resend", LateInstancePolicy::ResendStudy}, {"Ignore", LateInstancePolicy::Ignore}},
      config.lateInstances);
  ReadInteger(section, "StudyWorkers", root, 1, 16, 2, config.studyWorkers);
  ReadInteger(section, "MaxStudyAttempts", root, 1, 1000, 20, config.retry.maxStudyAttempts);
  ReadSeconds(section, "StudyRetryDelay", root, 86400, "60", config.retry.studyRetryDelay);
  ReadSeconds(section, "ChangesPollInterval", root, 3600, "30", config.changesPollInterval);

  if (config.enable) {
    RequireNonEmpty(section, "Url", config.url,
                    "the ingestion API's base URL, e.g. "
                    "\"https://ingest.example.com/api\"");
    RequireNonEmpty(section, "ClientId", config.clientId, "the client id given by the provider");
    RequireNonEmpty(section, "ClientSecret", config.clientSecret,
                    "the client secret, preferably \"${CLOUD_INGEST_CLIENT_SECRET}\" (read from "
                    "the environment)");
  }
  return config;
}

}  // namespace CloudIngest
