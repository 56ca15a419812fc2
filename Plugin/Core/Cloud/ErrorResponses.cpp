// The API's error answers: a short description of an error body, and Retry-After.
#include <json/value.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <optional>
#include <string>

#include "Core/Cloud/ApiResponses.h"
#include "Core/Cloud/IngestError.h"
#include "Core/Cloud/ResponseText.h"

namespace CloudIngest {

using namespace ResponseText;

namespace {

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

std::string DescribeErrorBody(const std::string& body) {
  if (TrimSpace(body).empty()) {
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
  const std::string text = TrimSpace(value);
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
