#include "Core/Configuration/SendWindows.h"

#include <algorithm>
#include <array>
#include <boost/algorithm/string/predicate.hpp>
#include <cmath>
#include <ctime>

namespace CloudIngest {

namespace {

constexpr int kDaysSearched = 8;  // a weekly window always opens within a week and a day

bool OnDay(const SendWindow& window, int weekday) {
  return (window.days & (1u << ((weekday + 7) % 7))) != 0;
}

bool Covers(const SendWindow& window, int weekday, int minute) {
  if (window.fromMinute < window.toMinute) {
    return OnDay(window, weekday) && minute >= window.fromMinute && minute < window.toMinute;
  }
  // Past midnight: the evening of its own day, or the morning after yesterday's start.
  return (OnDay(window, weekday) && minute >= window.fromMinute) ||
         (OnDay(window, weekday - 1) && minute < window.toMinute);
}

std::tm LocalTime(double when) {
  const auto seconds = static_cast<std::time_t>(std::floor(when));
  std::tm local{};
  localtime_r(&seconds, &local);
  return local;
}

}  // namespace

bool SendWindows::Allows(double now) const {
  if (windows_.empty()) return true;
  const std::tm local = LocalTime(now);
  const int minute = local.tm_hour * 60 + local.tm_min;
  return std::any_of(windows_.begin(), windows_.end(),
                     [&](const SendWindow& w) { return Covers(w, local.tm_wday, minute); });
}

double SendWindows::NextOpening(double now) const {
  if (Allows(now)) return now;
  double best = 0;
  const std::tm today = LocalTime(now);
  for (int offset = 0; offset <= kDaysSearched; ++offset) {
    for (const SendWindow& window : windows_) {
      // mktime normalises the day (month ends) and picks summer or winter time
      // for the wall-clock moment itself (tm_isdst = -1).
      std::tm start = today;
      start.tm_mday += offset;
      start.tm_hour = window.fromMinute / 60;
      start.tm_min = window.fromMinute % 60;
      start.tm_sec = 0;
      start.tm_isdst = -1;
      const std::time_t opening = std::mktime(&start);
      if (opening == static_cast<std::time_t>(-1) || !OnDay(window, start.tm_wday)) continue;
      // A start inside the hour skipped by the clock change opens an hour later.
      for (const double candidate : {static_cast<double>(opening), opening + 3600.0}) {
        if (candidate > now && Allows(candidate) && (best == 0 || candidate < best)) {
          best = candidate;
          break;
        }
      }
    }
  }
  if (best == 0) return now + 60;
  // A window whose start the clock skipped (spring forward) opened when the
  // clock jumped into it: step back to that minute.
  for (int minute = 0; minute < 60 && best - 60 > now && Allows(best - 60); ++minute) best -= 60;
  return best;
}

bool RespectsSendWindows(const std::string& trigger, bool respectWindows) {
  return trigger != "manual" || respectWindows;
}

int ParseWeekday(const std::string& name) {
  static const std::array<const char*, 7> kNames = {"Sun", "Mon", "Tue", "Wed",
                                                    "Thu", "Fri", "Sat"};
  for (size_t day = 0; day < kNames.size(); ++day) {
    if (boost::algorithm::iequals(name, kNames[day], std::locale::classic())) {
      return static_cast<int>(day);
    }
  }
  return -1;
}

int ParseClockTime(const std::string& text) {
  const auto digit = [&](size_t i) { return text[i] >= '0' && text[i] <= '9'; };
  if (text.size() != 5 || text[2] != ':' || !digit(0) || !digit(1) || !digit(3) || !digit(4)) {
    return -1;
  }
  const int hours = (text[0] - '0') * 10 + (text[1] - '0');
  const int minutes = (text[3] - '0') * 10 + (text[4] - '0');
  if (minutes > 59 || hours > 24 || (hours == 24 && minutes != 0)) return -1;
  return hours * 60 + minutes;
}

}  // namespace CloudIngest
