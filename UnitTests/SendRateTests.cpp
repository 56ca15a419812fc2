// MaxSendRate's shared budget: the bucket's arithmetic on a fake clock, and
// the blocking limiter shared by several uploading threads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "Core/Cloud/SendRate.h"

using namespace CloudIngest;

TEST(TokenBucket, GrantsWholeChunksAtTheRate) {
  TokenBucket bucket(1000, 100, 0.0);      // 1000 B/s, chunks of at most 100 B
  EXPECT_EQ(100u, bucket.Take(500, 0.0));  // a full bucket: one chunk
  EXPECT_EQ(0u, bucket.Take(500, 0.0));    // empty
  EXPECT_NEAR(0.1, bucket.WaitFor(500, 0.0), 1e-9);
  EXPECT_EQ(0u, bucket.Take(100, 0.05));  // half refilled: no partial chunk
  EXPECT_EQ(40u, bucket.Take(40, 0.05));  // but a smaller request fits
  EXPECT_NEAR(0.09, bucket.WaitFor(100, 0.05), 1e-9);
  EXPECT_EQ(100u, bucket.Take(100, 0.14));
  // Idle time does not build up more than one chunk (no burst past the cap).
  EXPECT_EQ(100u, bucket.Take(1000, 100.0));
  EXPECT_EQ(0u, bucket.Take(1000, 100.0));
}

TEST(TokenBucket, OverAnyPeriodGrantsAtMostRateTimesTimePlusOneChunk) {
  TokenBucket bucket(2000, 50, 0.0);
  uint64_t granted = 0;
  for (double t = 0; t <= 3.0; t += 0.001) granted += bucket.Take(64, t);
  EXPECT_LE(granted, 2000 * 3 + 50);
  EXPECT_GE(granted, 2000 * 3 - 50);
}

// Four threads share 200 kB/s: 100 kB in all takes about half a second,
// whatever the number of threads.
TEST(SendRateLimiter, IsOneBudgetForEveryThread) {
  constexpr uint64_t kRate = 200'000;
  constexpr size_t kPerThread = 25'000;
  SendRateLimiter limiter(kRate);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      size_t sent = 0;
      while (sent < kPerThread)
        sent += limiter.Acquire(std::min<size_t>(16384, kPerThread - sent), &stop);
    });
  }
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // 100 kB minus the first chunk (4 kB, granted at once) at 200 kB/s.
  EXPECT_GE(seconds, (4 * kPerThread - 4000) / static_cast<double>(kRate) * 0.95);
  EXPECT_LT(seconds, 3.0);
}

TEST(SendRateLimiter, AStopEndsTheWaitWithinASlice) {
  SendRateLimiter limiter(1024);  // chunks of 1024: one per second
  std::atomic<bool> stop{false};
  EXPECT_EQ(1024u, limiter.Acquire(4096, &stop));
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stop = true;
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(0u, limiter.Acquire(4096, &stop));
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stopper.join();
  EXPECT_LT(waited, 0.5);
}
