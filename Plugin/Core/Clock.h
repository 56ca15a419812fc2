#pragma once
#include <atomic>
#include <chrono>

namespace CloudIngest {

// Wall-clock seconds since the Unix epoch, so retry times, token expiry and
// the service's windows can be tested without sleeping.
class IClock {
 public:
  virtual ~IClock() = default;
  virtual double Now() const = 0;
};

class SystemClock : public IClock {
 public:
  double Now() const override {
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count();
  }
};

// Seconds from an arbitrary origin on a clock that is never stepped, for
// deadlines a change of the wall clock must not move (the lease self-fence).
class IMonotonicClock {
 public:
  virtual ~IMonotonicClock() = default;
  virtual double Seconds() const = 0;
};

class SteadyClock : public IMonotonicClock {
 public:
  double Seconds() const override {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
  }
};

// For tests.
class ManualClock : public IClock {
 public:
  explicit ManualClock(double start = 1'700'000'000.0) : now_(start) {}
  double Now() const override { return now_.load(); }
  void Advance(double seconds) { now_.store(now_.load() + seconds); }

 private:
  std::atomic<double> now_;
};

// For tests.
class ManualMonotonicClock : public IMonotonicClock {
 public:
  double Seconds() const override { return seconds_.load(); }
  void Advance(double seconds) { seconds_.store(seconds_.load() + seconds); }

 private:
  std::atomic<double> seconds_{1000.0};
};

}  // namespace CloudIngest
