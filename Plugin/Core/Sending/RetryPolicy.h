#pragma once
// Exponential backoff with full jitter, honouring Retry-After.
#include <mutex>
#include <optional>
#include <random>

#include "Core/Cloud/IngestError.h"
#include "Core/Configuration/Configuration.h"

namespace CloudIngest {

class RetryPolicy {
 public:
  explicit RetryPolicy(RetrySettings settings, unsigned seed = std::random_device{}());
  // Whether a failed step should be tried again after `attemptsSoFar` attempts.
  bool ShouldRetry(const IngestError& error, unsigned attemptsSoFar) const;
  // Seconds to wait before attempt number `attemptsSoFar + 1`: random in
  // [base*2^(n-1)/2, base*2^(n-1)], capped at maxDelay; at least Retry-After
  // when the server sent one (itself capped at maxDelay).
  double NextDelay(unsigned attemptsSoFar, std::optional<double> retryAfter);
  // Whole-study attempts: whether study attempt number `attempts` was the
  // last one allowed, and the wait before the next (StudyRetryDelay doubling,
  // at most kMaxStudyDelay).
  bool StudyAttemptsExhausted(unsigned attempts) const;
  double StudyDelay(unsigned attempts) const;
  static constexpr double kMaxStudyDelay = 900;  // seconds: a quarter of an hour
  const RetrySettings& Settings() const { return settings_; }

 private:
  RetrySettings settings_;
  std::mutex mutex_;
  std::mt19937 random_;
};

}  // namespace CloudIngest
