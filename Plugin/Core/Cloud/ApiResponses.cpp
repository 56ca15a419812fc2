#include "Core/Cloud/ApiResponses.h"

#include <json/reader.h>

#include <algorithm>
#include <boost/algorithm/string/predicate.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <memory>

#include "Core/Cloud/Http.h"
#include "Core/Cloud/IngestError.h"
#include "Core/Cloud/ResponseText.h"
#include "Core/JsonText.h"
#include "Core/Url.h"

namespace CloudIngest {

using namespace ResponseText;

namespace {

constexpr size_t kMaxJsonBytes = 1024 * 1024;
constexpr unsigned kMaxJsonDepth = 64;

bool EqualsNoCase(const std::string& a, const std::string& b) {
  return boost::algorithm::iequals(a, b, std::locale::classic());
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
    const std::string text = TrimSpace(value.asString());
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

std::string Excerpt(const std::string& text) {
  return Printable(text, 80);
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

}  // namespace

Json::Value ParseJsonBody(const std::string& body, const char* what) {
  if (body.size() > kMaxJsonBytes) {
    Fail(std::string(what) + ": response body too large (" + std::to_string(body.size()) +
         " bytes)");
  }
  if (TrimSpace(body).empty()) {
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
  Json::Value root;
  std::string errors;
  if (!ParseJsonText(builder, body, root, errors)) {
    Fail(std::string(what) + ": response is not valid JSON (" + Printable(TrimSpace(errors), 120) +
         ")");
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
    } else if (!std::isxdigit(static_cast<unsigned char>(text[i]))) {
      return false;
    }
  }
  const char variant = static_cast<char>(std::tolower(static_cast<unsigned char>(text[19])));
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
  const std::string trimmed = TrimSpace(body);
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
      if (name.empty() || name.size() > 256 || !IsHttpToken(name)) {
        Fail("upload: invalid header name \"" + Excerpt(name) + "\"");
      }
      if (IsReservedUploadHeader(name)) {
        Fail("upload: header \"" + name +
             "\" may not be set by the upload endpoint (it would redirect or reframe the PUT)");
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

bool IsReservedUploadHeader(const std::string& name) {
  static const char* const kReserved[] = {"host",       "content-length", "transfer-encoding",
                                          "connection", "expect",         "te",
                                          "upgrade",    "authorization"};
  if (std::any_of(std::begin(kReserved), std::end(kReserved),
                  [&name](const char* reserved) { return EqualsNoCase(name, reserved); })) {
    return true;
  }
  static const std::string kProxyPrefix = "proxy-";
  return boost::algorithm::istarts_with(name, kProxyPrefix, std::locale::classic());
}

}  // namespace CloudIngest
