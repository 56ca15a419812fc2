#include "ApiResponses.h"

#include <json/reader.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "Http.h"
#include "IngestError.h"

namespace CloudIngest {

namespace {

constexpr size_t kMaxJsonBytes = 1024 * 1024;
constexpr unsigned kMaxJsonDepth = 64;
constexpr size_t kMaxDescriptionBytes = 300;
// Lifetimes beyond this are treated as this (keeps expiry arithmetic finite).
constexpr double kMaxLifetimeSeconds = 10.0 * 365 * 24 * 3600;

[[noreturn]] void Fail(const std::string& message) {
  throw IngestError(FailureKind::Permanent, message);
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string Trim(const std::string& text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && IsSpace(text[begin])) {
    ++begin;
  }
  while (end > begin && IsSpace(text[end - 1])) {
    --end;
  }
  return text.substr(begin, end - begin);
}

char ToLowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool EqualsNoCase(const std::string& a, const char* b) {
  const size_t n = std::strlen(b);
  if (a.size() != n) {
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    if (ToLowerAscii(a[i]) != ToLowerAscii(b[i])) {
      return false;
    }
  }
  return true;
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Length of the valid UTF-8 sequence starting at text[i], 0 if invalid.
size_t Utf8SequenceLength(const std::string& text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length;
  unsigned char min2 = 0x80;
  unsigned char max2 = 0xBF;
  if (lead < 0x80) {
    return 1;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) min2 = 0xA0;  // overlong
    if (lead == 0xED) max2 = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) min2 = 0x90;
    if (lead == 0xF4) max2 = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size()) {
    return 0;
  }
  if (byte(i + 1) < min2 || byte(i + 1) > max2) {
    return 0;
  }
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) {
      return 0;
    }
  }
  return length;
}

// Printable text only (valid UTF-8 kept, control bytes and invalid sequences
// replaced), whitespace runs collapsed, at most `limit` bytes ("..." marks a cut).
std::string Printable(const std::string& text, size_t limit = kMaxDescriptionBytes) {
  static const std::string kEllipsis = "...";
  std::string result;
  std::vector<size_t> boundaries;  // where each character starts, to cut cleanly
  bool pendingSpace = false;
  for (size_t i = 0; i < text.size() && result.size() <= limit;) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead <= 0x20 || lead == 0x7F) {
      pendingSpace = !result.empty();
      ++i;
      continue;
    }
    if (pendingSpace) {
      boundaries.push_back(result.size());
      result += ' ';
      pendingSpace = false;
    }
    boundaries.push_back(result.size());
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      result += '?';
      ++i;
    } else {
      result.append(text, i, length);
      i += length;
    }
  }
  if (result.size() > limit) {
    size_t cut = 0;
    for (const size_t boundary : boundaries) {
      if (boundary + kEllipsis.size() > limit) {
        break;
      }
      cut = boundary;
    }
    result.resize(cut);
    while (!result.empty() && result.back() == ' ') {
      result.pop_back();
    }
    result += kEllipsis;
  }
  return result;
}

// Cheap pre-check so that deep nesting never reaches the recursive parser.
void CheckDepth(const std::string& body, const char* what) {
  unsigned depth = 0;
  bool inString = false;
  bool escaped = false;
  for (const char c : body) {
    if (inString) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        inString = false;
      }
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        Fail(std::string(what) + ": response nested deeper than " + std::to_string(kMaxJsonDepth) +
             " levels");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

// A finite, non-negative number of seconds, from a JSON number or numeric string.
std::optional<double> SecondsValue(const Json::Value& value) {
  double seconds;
  if (value.isNumeric() && !value.isBool()) {
    seconds = value.asDouble();
  } else if (value.isString()) {
    const std::string text = Trim(value.asString());
    if (text.empty() || text.size() > 32) {
      return std::nullopt;
    }
    for (const char c : text) {
      if (!((c >= '0' && c <= '9') || c == '.')) {
        return std::nullopt;
      }
    }
    const char* end = text.data() + text.size();
    const auto parsed = std::from_chars(text.data(), end, seconds);
    if (parsed.ec != std::errc() || parsed.ptr != end) {
      return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  if (!std::isfinite(seconds) || seconds < 0) {
    return std::nullopt;
  }
  return std::min(seconds, kMaxLifetimeSeconds);
}

const Json::Value* FirstMember(const Json::Value& object, std::initializer_list<const char*> keys,
                               const char** foundKey = nullptr) {
  for (const char* key : keys) {
    const Json::Value* member = object.find(key, key + std::strlen(key));
    if (member != nullptr && !member->isNull()) {
      if (foundKey != nullptr) {
        *foundKey = key;
      }
      return member;
    }
  }
  return nullptr;
}

std::string Excerpt(const std::string& text) {
  return Printable(text, 80);
}

// RFC 7230 token characters (header names).
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsValidHeaderValue(const std::string& value) {
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && byte != '\t') || byte == 0x7F) {
      return false;
    }
  }
  return true;
}

bool IsSafeUrl(const std::string& url) {
  for (const char c : url) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7F) {
      return false;
    }
  }
  return !UrlHost(url).empty();
}

// A token goes into an Authorization header: no whitespace or control bytes.
bool IsValidToken(const std::string& token) {
  if (token.empty() || token.size() > 64 * 1024) {
    return false;
  }
  for (const char c : token) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7F) {
      return false;
    }
  }
  return true;
}

bool ParseFixedDigits(const std::string& text, size_t pos, size_t count, int& out) {
  if (pos + count > text.size()) {
    return false;
  }
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return false;
    }
    value = value * 10 + (text[i] - '0');
  }
  out = value;
  return true;
}

int MonthIndex(const std::string& name) {
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (name == kMonths[i]) {
      return i;
    }
  }
  return -1;
}

bool IsDayName(const std::string& name, bool longForm) {
  static const char* const kShort[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static const char* const kLong[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                      "Friday", "Saturday", "Sunday"};
  for (int i = 0; i < 7; ++i) {
    if (name == (longForm ? kLong[i] : kShort[i])) {
      return true;
    }
  }
  return false;
}

bool ParseClock(const std::string& text, size_t pos, std::tm& tm) {
  return pos + 8 <= text.size() && ParseFixedDigits(text, pos, 2, tm.tm_hour) &&
         text[pos + 2] == ':' && ParseFixedDigits(text, pos + 3, 2, tm.tm_min) &&
         text[pos + 5] == ':' && ParseFixedDigits(text, pos + 6, 2, tm.tm_sec);
}

// The three HTTP-date forms of RFC 9110 section 5.6.7, parsed by hand so that
// the result does not depend on the process locale.
std::optional<std::time_t> ParseHttpDate(const std::string& text) {
  std::tm tm{};
  const size_t comma = text.find(',');
  if (comma != std::string::npos) {
    const std::string day = text.substr(0, comma);
    const std::string rest = text.substr(comma + 1);
    if (IsDayName(day, false)) {
      // IMF-fixdate: " 06 Nov 1994 08:49:37 GMT"
      if (rest.size() != 25 || rest[0] != ' ' || rest[3] != ' ' || rest[7] != ' ' ||
          rest[12] != ' ' || rest.compare(21, 4, " GMT") != 0) {
        return std::nullopt;
      }
      if (!ParseFixedDigits(rest, 1, 2, tm.tm_mday) || !ParseFixedDigits(rest, 8, 4, tm.tm_year) ||
          !ParseClock(rest, 13, tm)) {
        return std::nullopt;
      }
      tm.tm_mon = MonthIndex(rest.substr(4, 3));
      tm.tm_year -= 1900;
    } else if (IsDayName(day, true)) {
      // RFC 850: " 06-Nov-94 08:49:37 GMT"
      if (rest.size() != 23 || rest[0] != ' ' || rest[3] != '-' || rest[7] != '-' ||
          rest[10] != ' ' || rest.compare(19, 4, " GMT") != 0) {
        return std::nullopt;
      }
      int year = 0;
      if (!ParseFixedDigits(rest, 1, 2, tm.tm_mday) || !ParseFixedDigits(rest, 8, 2, year) ||
          !ParseClock(rest, 11, tm)) {
        return std::nullopt;
      }
      tm.tm_mon = MonthIndex(rest.substr(4, 3));
      tm.tm_year = year < 70 ? year + 100 : year;
    } else {
      return std::nullopt;
    }
  } else {
    // asctime: "Sun Nov  6 08:49:37 1994"
    if (text.size() != 24 || text[3] != ' ' || text[7] != ' ' || text[10] != ' ' ||
        text[19] != ' ' || !IsDayName(text.substr(0, 3), false)) {
      return std::nullopt;
    }
    const std::string day = text[8] == ' ' ? "0" + text.substr(9, 1) : text.substr(8, 2);
    if (!ParseFixedDigits(day, 0, 2, tm.tm_mday) || !ParseClock(text, 11, tm) ||
        !ParseFixedDigits(text, 20, 4, tm.tm_year)) {
      return std::nullopt;
    }
    tm.tm_mon = MonthIndex(text.substr(4, 3));
    tm.tm_year -= 1900;
  }
  if (tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60 || tm.tm_year < 0) {
    return std::nullopt;
  }
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) {
    return std::nullopt;
  }
  return t;
}

// The text of the first <name>...</name> in an XML error document.
std::optional<std::string> XmlElement(const std::string& body, const std::string& name) {
  if (body.find("<Error") == std::string::npos) {
    return std::nullopt;
  }
  const std::string open = "<" + name + ">";
  const size_t start = body.find(open);
  if (start == std::string::npos) {
    return std::nullopt;
  }
  const size_t textStart = start + open.size();
  const size_t end = body.find("</" + name + ">", textStart);
  if (end == std::string::npos) {
    return std::nullopt;
  }
  return body.substr(textStart, end - textStart);
}

}  // namespace

Json::Value ParseJsonBody(const std::string& body, const char* what) {
  if (body.size() > kMaxJsonBytes) {
    Fail(std::string(what) + ": response body too large (" + std::to_string(body.size()) +
         " bytes)");
  }
  if (Trim(body).empty()) {
    Fail(std::string(what) + ": empty response body");
  }
  if (body.find('\0') != std::string::npos) {
    // The parser would take a NUL byte as the end of the text.
    Fail(std::string(what) + ": response contains a NUL byte");
  }
  CheckDepth(body, what);

  Json::CharReaderBuilder builder;
  Json::CharReaderBuilder::strictMode(&builder.settings_);
  builder["strictRoot"] = false;  // a bare JSON string is an accepted order answer
  builder["stackLimit"] = static_cast<int>(kMaxJsonDepth + 8);  // CheckDepth is the limit
  builder["skipBom"] = true;
  const std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  Json::Value root;
  std::string errors;
  bool ok = false;
  try {
    ok = reader->parse(body.data(), body.data() + body.size(), &root, &errors);
  } catch (const std::exception& e) {
    errors = e.what();
  } catch (...) {
    errors = "unknown parser failure";
  }
  if (!ok) {
    Fail(std::string(what) + ": response is not valid JSON (" + Printable(Trim(errors), 120) + ")");
  }
  return root;
}

bool IsUuidV4(const std::string& text) {
  if (text.size() != 36) {
    return false;
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') {
        return false;
      }
    } else if (!IsHex(text[i])) {
      return false;
    }
  }
  const char variant = ToLowerAscii(text[19]);
  return text[14] == '4' && (variant == '8' || variant == '9' || variant == 'a' || variant == 'b');
}

TokenResponse ParseTokenResponse(const std::string& body) {
  const Json::Value root = ParseJsonBody(body, "token");
  if (!root.isObject()) {
    Fail("token: response is not a JSON object");
  }
  TokenResponse result;
  const Json::Value* accessToken = FirstMember(root, {"access_token"});
  if (accessToken == nullptr || !accessToken->isString()) {
    Fail("token: response has no access_token string");
  }
  result.accessToken = accessToken->asString();
  if (!IsValidToken(result.accessToken)) {
    // The token itself is never quoted in an error.
    Fail("token: access_token is empty or contains invalid characters");
  }
  const Json::Value* tokenType = FirstMember(root, {"token_type"});
  if (tokenType == nullptr) {
    result.tokenType = "Bearer";
  } else if (tokenType->isString() && EqualsNoCase(tokenType->asString(), "bearer")) {
    result.tokenType = tokenType->asString();
  } else {
    Fail("token: unsupported token_type \"" +
         Excerpt(tokenType->isString() ? tokenType->asString() : "(not a string)") +
         "\" (expected Bearer)");
  }
  if (const Json::Value* expiresIn = FirstMember(root, {"expires_in"})) {
    const std::optional<double> seconds = SecondsValue(*expiresIn);
    if (!seconds || *seconds <= 0) {
      Fail("token: expires_in is not a positive number of seconds");
    }
    result.expiresIn = *seconds;
  }
  if (const Json::Value* scope = FirstMember(root, {"scope"});
      scope != nullptr && scope->isString()) {
    result.scope = scope->asString();
  }
  return result;
}

std::string ParseOrderResponse(const std::string& body) {
  const std::string trimmed = Trim(body);
  std::string id;
  if (IsUuidV4(trimmed)) {
    id = trimmed;  // a bare UUID, not JSON
  } else {
    const Json::Value root = ParseJsonBody(body, "new-order");
    const Json::Value* value = &root;
    if (root.isObject()) {
      value = FirstMember(root, {"order_id", "orderId", "id"});
      if (value == nullptr) {
        Fail("new-order: response has no order_id, orderId or id");
      }
    }
    if (!value->isString()) {
      Fail("new-order: order id is not a string");
    }
    id = value->asString();
  }
  if (!IsUuidV4(id)) {
    Fail("new-order: order id \"" + Excerpt(id) + "\" is not a UUID v4");
  }
  return id;
}

UploadTarget ParseUploadUrlResponse(const std::string& body) {
  const Json::Value root = ParseJsonBody(body, "upload");
  if (!root.isObject()) {
    Fail("upload: response is not a JSON object");
  }
  UploadTarget result;
  const char* key = nullptr;
  const Json::Value* url = FirstMember(root, {"url", "presigned_url", "upload_url"}, &key);
  if (url == nullptr) {
    Fail("upload: response has no url, presigned_url or upload_url");
  }
  if (!url->isString() || url->asString().empty()) {
    Fail(std::string("upload: ") + key + " is not a non-empty string");
  }
  result.url = url->asString();
  if (!IsSafeUrl(result.url)) {
    // Only the part without the query string may be shown.
    Fail("upload: presigned URL is not a valid http(s) URL: " + Excerpt(RedactUrl(result.url)));
  }
  if (const Json::Value* expiresIn = FirstMember(root, {"expires_in"})) {
    const std::optional<double> seconds = SecondsValue(*expiresIn);
    if (!seconds) {
      Fail("upload: expires_in is not a number of seconds");
    }
    result.expiresIn = *seconds;
  }
  if (const Json::Value* headers = FirstMember(root, {"headers"})) {
    if (!headers->isObject()) {
      Fail("upload: headers is not an object");
    }
    for (auto it = headers->begin(); it != headers->end(); ++it) {
      const std::string name = it.name();
      if (name.empty() || name.size() > 256 ||
          !std::all_of(name.begin(), name.end(), IsTokenChar)) {
        Fail("upload: invalid header name \"" + Excerpt(name) + "\"");
      }
      std::string value;
      if (it->isString()) {
        value = it->asString();
      } else if (it->isIntegral() && !it->isBool()) {
        value = it->isUInt64() ? std::to_string(it->asUInt64()) : std::to_string(it->asInt64());
      } else {
        Fail("upload: header \"" + name + "\" is not a string");
      }
      if (!IsValidHeaderValue(value)) {
        Fail("upload: header \"" + name + "\" has control characters");
      }
      result.headers[name] = value;
    }
  }
  return result;
}

std::string DescribeErrorBody(const std::string& body) {
  if (Trim(body).empty()) {
    return "(empty body)";
  }
  // S3-style XML: only Code and Message. The rest (CanonicalRequest,
  // StringToSign) can quote the presigned query, session token included.
  const std::optional<std::string> xmlCode = XmlElement(body, "Code");
  if (xmlCode) {
    const std::optional<std::string> xmlMessage = XmlElement(body, "Message");
    const std::string printable =
        Printable(xmlMessage && !xmlMessage->empty() ? *xmlCode + ": " + *xmlMessage : *xmlCode);
    if (!printable.empty()) {
      return printable;
    }
  }
  try {
    const Json::Value root = ParseJsonBody(body, "error");
    if (root.isObject()) {
      const auto text = [&](const char* key) -> std::string {
        const Json::Value* value = FirstMember(root, {key});
        return (value != nullptr && value->isString()) ? value->asString() : std::string();
      };
      std::string error = text("error");
      if (error.empty()) {
        // {"error":{"code":..,"message":..}} as some gateways answer.
        const Json::Value* nested = FirstMember(root, {"error"});
        if (nested != nullptr && nested->isObject()) {
          const Json::Value* message = FirstMember(*nested, {"message"});
          if (message != nullptr && message->isString()) {
            error = message->asString();
          }
        }
      }
      std::string detail = text("error_description");
      if (detail.empty()) detail = text("message");
      if (detail.empty()) detail = text("detail");  // RFC 7807
      if (error.empty()) error = text("title");     // RFC 7807
      std::string combined = error;
      if (!detail.empty()) {
        combined = combined.empty() ? detail : combined + ": " + detail;
      }
      const std::string printable = Printable(combined);
      if (!printable.empty()) {
        return printable;
      }
    } else if (root.isString()) {
      const std::string printable = Printable(root.asString());
      if (!printable.empty()) {
        return printable;
      }
    }
  } catch (const IngestError&) {
    // Not JSON: fall through to an excerpt of the raw body.
  }
  const std::string excerpt = Printable(body);
  return excerpt.empty() ? "(unprintable body)" : excerpt;
}

std::optional<double> ParseRetryAfter(const std::string& value, double now) {
  const std::string text = Trim(value);
  if (text.empty() || text.size() > 64) {
    return std::nullopt;
  }
  const bool negative = text[0] == '-';
  const std::string number = negative ? text.substr(1) : text;
  if (!number.empty() && std::all_of(number.begin(), number.end(),
                                     [](char c) { return (c >= '0' && c <= '9') || c == '.'; })) {
    double seconds = 0;
    const char* end = number.data() + number.size();
    const auto parsed = std::from_chars(number.data(), end, seconds);
    if (parsed.ec == std::errc::result_out_of_range) {
      return negative ? 0.0 : kMaxLifetimeSeconds;
    }
    if (parsed.ec != std::errc() || parsed.ptr != end || !std::isfinite(seconds)) {
      return std::nullopt;
    }
    return negative ? 0.0 : std::min(seconds, kMaxLifetimeSeconds);
  }
  const std::optional<std::time_t> date = ParseHttpDate(text);
  if (!date || !std::isfinite(now)) {
    return std::nullopt;
  }
  const double delta = static_cast<double>(*date) - now;
  return std::min(std::max(delta, 0.0), kMaxLifetimeSeconds);
}

}  // namespace CloudIngest
