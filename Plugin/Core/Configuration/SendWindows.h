#pragma once
// When automatic sends may start (the SendWindows key): weekly windows in the
// server's local time. A window that ends before it begins ("From": "19:00",
// "To": "07:00") runs past midnight and belongs to the day it starts on.
// Local time is read through the C library (TZ), so summer time needs no
// special case: the windows follow the wall clock.
#include <string>
#include <vector>

namespace CloudIngest {

struct SendWindow {
  unsigned days = 0;    // bit d set: the window starts on weekday d (0 = Sunday, as tm_wday)
  int fromMinute = 0;   // minutes after local midnight, 0..1439
  int toMinute = 1440;  // 1..1440; below fromMinute: the next day
};

class SendWindows {
 public:
  SendWindows() = default;  // no windows: always open
  explicit SendWindows(std::vector<SendWindow> windows) : windows_(std::move(windows)) {}

  bool AlwaysOpen() const { return windows_.empty(); }
  // Whether an automatic send may start at `now` (seconds since the epoch).
  bool Allows(double now) const;
  // `now` while open; otherwise the first later moment a window opens (at
  // most 8 days ahead; a minute later if, strangely, none is found).
  double NextOpening(double now) const;

 private:
  std::vector<SendWindow> windows_;
};

// Automatic sends wait for a window; a manual one only when it asked to.
bool RespectsSendWindows(const std::string& trigger, bool respectWindows);

// "Mon" .. "Sun" (any letter case) -> 0 (Sunday) .. 6; -1 when not a day name.
int ParseWeekday(const std::string& name);
// "HH:MM" -> minutes after midnight ("24:00" -> 1440); -1 when malformed.
int ParseClockTime(const std::string& text);

}  // namespace CloudIngest
