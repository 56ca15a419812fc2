// SendWindows: local wall-clock windows, past midnight, across clock changes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "Core/Configuration/SendWindows.h"

using namespace CloudIngest;

namespace {

// Sets TZ for one test and puts the previous value back.
class ScopedTimeZone {
 public:
  explicit ScopedTimeZone(const char* zone) {
    if (const char* old = std::getenv("TZ")) old_ = old, hadOld_ = true;
    setenv("TZ", zone, 1);
    tzset();
  }
  ~ScopedTimeZone() {
    if (hadOld_) {
      setenv("TZ", old_.c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::string old_;
  bool hadOld_ = false;
};

// Central Europe with its summer time rule, spelt out so no tz database is needed.
constexpr const char* kBerlin = "CET-1CEST,M3.5.0,M10.5.0/3";

// The instant the local wall clock shows this time (the first one, if twice).
double Local(int year, int month, int day, int hour, int minute) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_isdst = -1;
  return static_cast<double>(std::mktime(&tm));
}

unsigned Days(std::initializer_list<const char*> names) {
  unsigned days = 0;
  for (const char* name : names) days |= 1u << ParseWeekday(name);
  return days;
}

SendWindows Weeknights() {
  return SendWindows({{Days({"Mon", "Tue", "Wed", "Thu", "Fri"}), 19 * 60, 7 * 60}});
}

}  // namespace

TEST(SendWindows, NoWindowsMeansAlwaysOpen) {
  const SendWindows always;
  EXPECT_TRUE(always.AlwaysOpen());
  EXPECT_TRUE(always.Allows(1'700'000'000));
  EXPECT_EQ(1'700'000'000, always.NextOpening(1'700'000'000));
}

// 2026-12-07 is a Monday.
TEST(SendWindows, AWindowPastMidnightBelongsToTheDayItStartsOn) {
  const ScopedTimeZone zone(kBerlin);
  const SendWindows nights = Weeknights();
  EXPECT_FALSE(nights.Allows(Local(2026, 12, 7, 18, 59)));   // Monday, before
  EXPECT_TRUE(nights.Allows(Local(2026, 12, 7, 19, 0)));     // Monday night
  EXPECT_TRUE(nights.Allows(Local(2026, 12, 8, 6, 59)));     // Tuesday morning: Monday's window
  EXPECT_FALSE(nights.Allows(Local(2026, 12, 8, 7, 0)));     // its end is excluded
  EXPECT_TRUE(nights.Allows(Local(2026, 12, 12, 6, 30)));    // Saturday morning: Friday's
  EXPECT_FALSE(nights.Allows(Local(2026, 12, 12, 19, 30)));  // Saturday night: none
  EXPECT_FALSE(nights.Allows(Local(2026, 12, 14, 3, 0)));    // Monday morning: Sunday has none
}

TEST(SendWindows, NextOpeningIsTheNextStartOnAListedDay) {
  const ScopedTimeZone zone(kBerlin);
  const SendWindows nights = Weeknights();
  // Saturday noon: the next window starts Monday 19:00.
  EXPECT_EQ(Local(2026, 12, 14, 19, 0), nights.NextOpening(Local(2026, 12, 12, 12, 0)));
  EXPECT_EQ(Local(2026, 12, 7, 19, 0), nights.NextOpening(Local(2026, 12, 7, 18, 0)));
  // Open: now.
  const double night = Local(2026, 12, 8, 2, 0) + 17;
  EXPECT_EQ(night, nights.NextOpening(night));
  // Several windows: the earliest start wins.
  const SendWindows two({{Days({"Sat"}), 13 * 60, 14 * 60}, {Days({"Sat"}), 12 * 60 + 30, 1440}});
  EXPECT_EQ(Local(2026, 12, 12, 12, 30), two.NextOpening(Local(2026, 12, 12, 12, 0)));
  EXPECT_TRUE(two.Allows(Local(2026, 12, 12, 23, 59)));
  EXPECT_FALSE(two.Allows(Local(2026, 12, 13, 0, 0)));  // "24:00" ends Saturday
}

// The windows follow the wall clock: a night window is an hour shorter when
// the clock springs forward and longer when it falls back, and a start the
// clock skips opens when the clock jumps past it.
TEST(SendWindows, WindowsFollowTheWallClockAcrossSummerTimeChanges) {
  const ScopedTimeZone zone(kBerlin);
  const SendWindow daily{0x7f, 1 * 60, 5 * 60};
  const SendWindows nights({daily});
  // 2026-03-29: 02:00 CET becomes 03:00 CEST.
  const double opens = Local(2026, 3, 29, 1, 0);
  EXPECT_EQ(opens, nights.NextOpening(Local(2026, 3, 28, 12, 0)));
  EXPECT_TRUE(nights.Allows(opens + 3 * 3600 - 1));  // 04:59:59 CEST
  EXPECT_FALSE(nights.Allows(opens + 3 * 3600));     // 05:00 CEST, three hours later
  // 2026-10-25: 03:00 CEST becomes 02:00 CET; the window lasts five hours.
  const double autumn = Local(2026, 10, 25, 1, 0);
  EXPECT_TRUE(nights.Allows(autumn + 5 * 3600 - 1));
  EXPECT_FALSE(nights.Allows(autumn + 5 * 3600));

  const SendWindows skipped({{0x7f, 2 * 60 + 30, 4 * 60}});
  // 02:30 does not exist on 2026-03-29: the window opens at 03:00 CEST (01:00 UTC).
  const double jump = Local(2026, 3, 29, 3, 0);
  EXPECT_EQ(jump, skipped.NextOpening(Local(2026, 3, 29, 0, 0)));
  EXPECT_EQ(1'774'746'000, jump);  // 2026-03-29T01:00:00Z
}

TEST(SendWindows, LocalTimeIsTheServersTimeZone) {
  // 2026-12-07T18:30:00Z is 19:30 in Berlin (open) but 18:30 in London (closed).
  const double instant = 1'796'668'200;
  {
    const ScopedTimeZone zone(kBerlin);
    EXPECT_TRUE(Weeknights().Allows(instant));
  }
  {
    const ScopedTimeZone zone("GMT0BST,M3.5.0/1,M10.5.0");
    EXPECT_FALSE(Weeknights().Allows(instant));
    EXPECT_EQ(instant + 30 * 60, Weeknights().NextOpening(instant));
  }
}

TEST(SendWindows, ParsesDaysAndClockTimes) {
  EXPECT_EQ(0, ParseWeekday("Sun"));
  EXPECT_EQ(1, ParseWeekday("mon"));
  EXPECT_EQ(6, ParseWeekday("SAT"));
  EXPECT_EQ(-1, ParseWeekday("Monday"));
  EXPECT_EQ(-1, ParseWeekday(""));
  EXPECT_EQ(19 * 60, ParseClockTime("19:00"));
  EXPECT_EQ(7, ParseClockTime("00:07"));
  EXPECT_EQ(1440, ParseClockTime("24:00"));
  EXPECT_EQ(-1, ParseClockTime("24:01"));
  EXPECT_EQ(-1, ParseClockTime("7:00"));
  EXPECT_EQ(-1, ParseClockTime("07:60"));
  EXPECT_EQ(-1, ParseClockTime("07-00"));
  EXPECT_EQ(-1, ParseClockTime("7pm"));
}

TEST(SendWindows, AutomaticSendsRespectWindowsManualOnesOnlyWhenAsked) {
  EXPECT_TRUE(RespectsSendWindows("auto", false));
  EXPECT_TRUE(RespectsSendWindows("catch-up", false));
  EXPECT_FALSE(RespectsSendWindows("manual", false));
  EXPECT_TRUE(RespectsSendWindows("manual", true));
}
