#pragma once
// An interruptible sleep: workers wait on it between retries, and
// OrthancStopped wakes them all at once instead of waiting out a backoff.
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace CloudIngest {

class StopSignal {
 public:
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopped_ = true;
    }
    changed_.notify_all();
  }
  void Reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = false;
    woken_ = false;
  }
  bool Stopped() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopped_;
  }
  // Ends a WaitFor early without stopping (new work arrived).
  void Wake() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      woken_ = true;
    }
    changed_.notify_all();
  }
  // Waits up to `seconds`; false when stopped (before or during the wait).
  bool WaitFor(double seconds, bool wakeable = false) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(seconds > 0 ? seconds : 0));
    changed_.wait_until(lock, until, [&] { return stopped_ || (wakeable && woken_); });
    if (wakeable) woken_ = false;
    return !stopped_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stopped_ = false;
  bool woken_ = false;
};

}  // namespace CloudIngest
