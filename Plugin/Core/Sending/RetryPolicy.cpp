#include "Core/Sending/RetryPolicy.h"

#include <algorithm>
#include <cmath>

namespace CloudIngest {

RetryPolicy::RetryPolicy(RetrySettings settings, unsigned seed)
    : settings_(settings), random_(seed) {}

bool RetryPolicy::ShouldRetry(const IngestError& error, unsigned attemptsSoFar) const {
  if (error.Kind() == FailureKind::Permanent) {
    return false;
  }
  return attemptsSoFar < settings_.maxAttempts;
}

double RetryPolicy::NextDelay(unsigned attemptsSoFar, std::optional<double> retryAfter) {
  const double maxDelay =
      std::isfinite(settings_.maxDelay) ? std::max(settings_.maxDelay, 0.0) : 0.0;
  const double base = std::isfinite(settings_.baseDelay) ? std::max(settings_.baseDelay, 0.0) : 0.0;

  // base * 2^(n-1), with the exponent bounded so it cannot overflow.
  const unsigned exponent = std::min(std::max(attemptsSoFar, 1u) - 1, 60u);
  const double upper = std::min(std::ldexp(base, static_cast<int>(exponent)), maxDelay);
  double delay = upper;
  if (upper > 0) {
    // Full jitter over the upper half keeps concurrent senders apart while
    // still guaranteeing the delay grows.
    std::uniform_real_distribution<double> distribution(upper / 2, upper);
    const std::lock_guard<std::mutex> lock(mutex_);
    delay = distribution(random_);
  }
  if (retryAfter && std::isfinite(*retryAfter)) {
    delay = std::max(delay, std::clamp(*retryAfter, 0.0, maxDelay));
  }
  return std::min(delay, maxDelay);
}

bool RetryPolicy::StudyAttemptsExhausted(unsigned attempts) const {
  return attempts >= settings_.maxStudyAttempts;
}

double RetryPolicy::StudyDelay(unsigned attempts) const {
  const double exponent = attempts > 0 ? attempts - 1.0 : 0.0;
  return std::min(settings_.studyRetryDelay * std::pow(2.0, exponent), kMaxStudyDelay);
}

}  // namespace CloudIngest
