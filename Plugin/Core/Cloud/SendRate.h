#pragma once
// MaxSendRate: one budget of bytes per second shared by every upload of the
// node. libcurl's own CURLOPT_MAX_SEND_SPEED_LARGE caps one transfer only, so
// each running upload instead asks this budget before handing curl a chunk
// (from its read callback): together they never exceed the rate, and a chunk
// is small (1/50 s of the rate) so the running uploads take turns.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace CloudIngest {

// The arithmetic of the budget, on times given by the caller (tests use a
// fake clock): tokens are bytes, refilled at `rate` per second up to `burst`.
class TokenBucket {
 public:
  TokenBucket(double bytesPerSecond, double burst, double now);
  // Takes min(want, burst) bytes if that many are available, else none (0).
  size_t Take(size_t want, double now);
  // Seconds until Take(want, ...) could return min(want, burst) bytes.
  double WaitFor(size_t want, double now);
  double Burst() const { return burst_; }

 private:
  void Refill(double now);
  double rate_;
  double burst_;
  double tokens_;
  double last_;
};

class SendRateLimiter {
 public:
  explicit SendRateLimiter(uint64_t bytesPerSecond);
  // Blocks until some bytes may be sent; returns how many of `want` (at least
  // 1 when want > 0), or 0 once `stop` (may be null) is set: the transfer is
  // being aborted. The wait is cut in slices of at most 100 ms to see `stop`.
  size_t Acquire(size_t want, const std::atomic<bool>* stop);

 private:
  static double Now();
  std::mutex mutex_;
  TokenBucket bucket_;
};

}  // namespace CloudIngest
