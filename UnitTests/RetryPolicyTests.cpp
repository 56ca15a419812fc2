#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "Core/Sending/RetryPolicy.h"

using namespace CloudIngest;

namespace {

RetrySettings Settings(unsigned maxAttempts, double base, double max) {
  RetrySettings settings;
  settings.maxAttempts = maxAttempts;
  settings.baseDelay = base;
  settings.maxDelay = max;
  return settings;
}

}  // namespace

TEST(RetryPolicy, PermanentIsNeverRetried) {
  const RetryPolicy policy(Settings(5, 1, 30), 1);
  const IngestError permanent(FailureKind::Permanent, "400");
  EXPECT_FALSE(policy.ShouldRetry(permanent, 0));
  EXPECT_FALSE(policy.ShouldRetry(permanent, 1));
}

TEST(RetryPolicy, OtherKindsRetriedUpToMaxAttempts) {
  const RetryPolicy policy(Settings(3, 1, 30), 1);
  for (const FailureKind kind :
       {FailureKind::Transient, FailureKind::Unauthorized, FailureKind::UrlRefused}) {
    const IngestError error(kind, "x");
    EXPECT_TRUE(policy.ShouldRetry(error, 1));
    EXPECT_TRUE(policy.ShouldRetry(error, 2));
    EXPECT_FALSE(policy.ShouldRetry(error, 3));
    EXPECT_FALSE(policy.ShouldRetry(error, 100));
  }
  const RetryPolicy never(Settings(1, 1, 30), 1);
  EXPECT_FALSE(never.ShouldRetry(IngestError(FailureKind::Transient, "x"), 1));
}

TEST(RetryPolicy, DelayStaysInTheJitterWindowAndGrows) {
  RetryPolicy policy(Settings(10, 1, 1000), 42);
  for (unsigned n = 1; n <= 8; ++n) {
    const double upper = std::ldexp(1.0, static_cast<int>(n - 1));
    double lowest = upper;
    double highest = 0;
    for (int i = 0; i < 200; ++i) {
      const double delay = policy.NextDelay(n, std::nullopt);
      EXPECT_GE(delay, upper / 2) << "attempt " << n;
      EXPECT_LE(delay, upper) << "attempt " << n;
      lowest = std::min(lowest, delay);
      highest = std::max(highest, delay);
    }
    // Jitter really spreads over the window.
    EXPECT_LT(lowest, upper * 0.6) << n;
    EXPECT_GT(highest, upper * 0.9) << n;
  }
  // Attempt 0 is treated like attempt 1.
  const double first = policy.NextDelay(0, std::nullopt);
  EXPECT_GE(first, 0.5);
  EXPECT_LE(first, 1.0);
}

TEST(RetryPolicy, DelayIsCappedAtMaxDelay) {
  RetryPolicy policy(Settings(100, 2, 30), 7);
  for (const unsigned n : {5u, 6u, 10u, 64u, 1000u, 4'000'000'000u}) {
    const double delay = policy.NextDelay(n, std::nullopt);
    EXPECT_GE(delay, 15.0) << n;
    EXPECT_LE(delay, 30.0) << n;
    EXPECT_TRUE(std::isfinite(delay));
  }
}

TEST(RetryPolicy, RetryAfterIsHonouredButCapped) {
  RetryPolicy policy(Settings(10, 1, 30), 3);
  EXPECT_DOUBLE_EQ(12.0, policy.NextDelay(1, 12.0));    // more than the backoff: wins
  EXPECT_DOUBLE_EQ(30.0, policy.NextDelay(1, 3600.0));  // capped at maxDelay
  // Less than the backoff: the backoff still applies.
  const double delay = policy.NextDelay(4, 0.5);
  EXPECT_GE(delay, 4.0);
  EXPECT_LE(delay, 8.0);
  // Nonsense values are ignored.
  const double negative = policy.NextDelay(1, -10.0);
  EXPECT_GE(negative, 0.5);
  EXPECT_LE(negative, 1.0);
  const double nan = policy.NextDelay(1, std::nan(""));
  EXPECT_GE(nan, 0.5);
  EXPECT_LE(nan, 1.0);
}

TEST(RetryPolicy, SameSeedSameSequence) {
  RetryPolicy a(Settings(10, 1, 30), 99);
  RetryPolicy b(Settings(10, 1, 30), 99);
  std::set<double> distinct;
  for (unsigned n = 1; n <= 5; ++n) {
    const double delay = a.NextDelay(n, std::nullopt);
    EXPECT_EQ(delay, b.NextDelay(n, std::nullopt));
    distinct.insert(delay);
  }
  EXPECT_EQ(5u, distinct.size());
}

TEST(RetryPolicy, DegenerateSettingsGiveZeroDelay) {
  RetryPolicy zero(Settings(3, 0, 30), 1);
  EXPECT_EQ(0.0, zero.NextDelay(3, std::nullopt));
  EXPECT_EQ(5.0, zero.NextDelay(3, 5.0));
  RetryPolicy noMax(Settings(3, 1, 0), 1);
  EXPECT_EQ(0.0, noMax.NextDelay(3, 5.0));
  EXPECT_EQ(3u, zero.Settings().maxAttempts);
}
