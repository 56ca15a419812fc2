#include "Rest/RestInput.h"

#include <algorithm>

#include "Core/Time.h"
#include "Rest/RestBody.h"

namespace CloudIngest {

namespace {

constexpr size_t kMaxContentTypeShown = 100;  // of a refused type, echoed in the error

bool IsDigits(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

// Every POST route goes through here, so every one of them demands JSON: a
// cross-site HTML form can POST text/plain or form data with no CORS
// preflight, while application/json makes a browser ask first, and Orthanc
// answers that preflight with no allow headers.
void RequireMethod(const RestRequest& request, const char* method) {
  if (request.method != method) {
    throw RestError(405, std::string("use ") + method + " for this route",
                    Json::Value(std::string("Allow: ") + method));
  }
  if (request.method == "POST" && !IsJsonContentType(request.contentType)) {
    throw RestError(
        415, "send POST requests with Content-Type: application/json",
        request.contentType.empty()
            ? Json::Value("no Content-Type")
            : Json::Value("Content-Type: " + request.contentType.substr(0, kMaxContentTypeShown)));
  }
}

void RequireMaxLength(const std::string& parameter, const std::string& value, size_t maxLength) {
  if (value.size() <= maxLength) return;
  Json::Value details;
  details["parameter"] = parameter;
  details["length"] = static_cast<Json::UInt64>(value.size());
  details["max_length"] = static_cast<Json::UInt64>(maxLength);
  throw RestError(400,
                  "'" + parameter + "' is longer than " + std::to_string(maxLength) + " characters",
                  details);
}

std::optional<std::string> QueryValue(const std::map<std::string, std::string>& query,
                                      const char* key, size_t maxLength) {
  const auto it = query.find(key);
  if (it == query.end()) return std::nullopt;
  RequireMaxLength(key, it->second, maxLength);
  return it->second;
}

Json::Value ParseBodyObject(const std::string& body) {
  try {
    return ParseRestBody(body);
  } catch (const RestBodyError& e) {
    throw RestError(400, e.what(), e.Details().empty() ? Json::Value() : Json::Value(e.Details()));
  }
}

unsigned ParseUnsigned(const std::map<std::string, std::string>& query, const char* key,
                       unsigned fallback, unsigned max) {
  const auto value = QueryValue(query, key, 9);
  if (!value) return fallback;
  if (!IsDigits(*value)) {
    throw RestError(400, std::string("'") + key + "' must be a non-negative integer");
  }
  return std::min<unsigned>(static_cast<unsigned>(std::stoul(*value)), max);
}

double ParseSince(const std::map<std::string, std::string>& query) {
  // The longest sensible spelling is far below 64.
  const auto value = QueryValue(query, "since", 64);
  if (!value || value->empty()) return 0;
  const std::string& text = *value;
  const auto dot = text.find('.');
  const std::string whole = text.substr(0, dot);
  if (whole.size() <= 12 && IsDigits(whole) &&
      (dot == std::string::npos || IsDigits(text.substr(dot + 1)))) {
    return std::stod(text);
  }
  const auto iso = ParseIsoTime(text);
  if (!iso) throw RestError(400, "'since' must be Unix seconds or an ISO 8601 UTC time");
  return *iso;
}

}  // namespace CloudIngest
