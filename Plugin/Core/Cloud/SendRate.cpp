#include "Core/Cloud/SendRate.h"

#include <algorithm>
#include <cmath>
#include <thread>

namespace CloudIngest {

namespace {
constexpr double kChunkSeconds = 0.02;  // a chunk is this much of the rate
constexpr double kMinChunk = 1024;
constexpr double kWaitSlice = 0.1;  // seconds: how soon an abort is seen
// Refills add fractions of a byte: a chunk is due when they sum to it, not
// one clock tick later.
constexpr double kRounding = 1e-6;
}  // namespace

TokenBucket::TokenBucket(double bytesPerSecond, double burst, double now)
    : rate_(bytesPerSecond),
      burst_(std::max(1.0, std::floor(burst))),
      tokens_(burst_),
      last_(now) {}

void TokenBucket::Refill(double now) {
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + (now - last_) * rate_);
    last_ = now;
  }
}

size_t TokenBucket::Take(size_t want, double now) {
  Refill(now);
  // Whole chunks only: a waiter woken by a trickle of tokens would otherwise
  // hand curl a few bytes at a time.
  const double granted = std::min(static_cast<double>(want), burst_);
  if (tokens_ + kRounding < granted) return 0;
  tokens_ -= granted;
  return static_cast<size_t>(granted);
}

double TokenBucket::WaitFor(size_t want, double now) {
  Refill(now);
  const double needed = std::min(static_cast<double>(want), burst_) - tokens_;
  return needed <= 0 ? 0 : needed / rate_;
}

SendRateLimiter::SendRateLimiter(uint64_t bytesPerSecond)
    : bucket_(static_cast<double>(bytesPerSecond),
              std::max(kMinChunk, static_cast<double>(bytesPerSecond) * kChunkSeconds), Now()) {}

double SendRateLimiter::Now() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

size_t SendRateLimiter::Acquire(size_t want, const std::atomic<bool>* stop) {
  if (want == 0) return 0;
  for (;;) {
    if (stop != nullptr && stop->load()) return 0;
    double wait = 0;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (const size_t granted = bucket_.Take(want, Now())) return granted;
      wait = bucket_.WaitFor(want, Now());
    }
    // Outside the lock: the other uploads keep taking their turns meanwhile.
    std::this_thread::sleep_for(std::chrono::duration<double>(std::clamp(wait, 0.001, kWaitSlice)));
  }
}

}  // namespace CloudIngest
