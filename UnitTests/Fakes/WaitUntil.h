#pragma once
// Polls a condition that another thread makes true, bounded in time.
#include <chrono>
#include <functional>
#include <thread>

namespace CloudIngest::Testing {

// Polls `condition` every few milliseconds for at most `seconds`.
inline bool WaitUntil(const std::function<bool()>& condition, double seconds = 10) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace CloudIngest::Testing
