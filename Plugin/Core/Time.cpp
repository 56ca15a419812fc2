#include "Core/Time.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <sstream>

namespace CloudIngest {

std::string FormatIsoTime(double unixSeconds) {
  const auto totalMs = static_cast<int64_t>(std::llround(unixSeconds * 1000.0));
  int64_t seconds = totalMs / 1000;
  int64_t millis = totalMs % 1000;
  if (millis < 0) {  // before 1970: floor, not truncation
    millis += 1000;
    seconds -= 1;
  }
  const auto asTimeT = static_cast<time_t>(seconds);
  struct tm utc {};
  gmtime_r(&asTimeT, &utc);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis));
  return buffer;
}

std::optional<double> ParseIsoTime(const std::string& text) {
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (in.fail()) return std::nullopt;
  return static_cast<double>(timegm(&tm));
}

std::optional<double> ParseOrthancTime(const std::string& text) {
  if (text.size() != 15) return std::nullopt;
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y%m%dT%H%M%S");
  if (in.fail()) return std::nullopt;
  return static_cast<double>(timegm(&tm));
}

}  // namespace CloudIngest
