// The study workers over a real store: what they claim and run, how they
// wake and stop, and the cancel registry entry of an attempt that ended.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include "Core/Sending/Scheduler.h"
#include "Core/Store/SqliteStudyStore.h"
#include "Fakes/ForwardingStore.h"
#include "Fakes/RecordingLogger.h"
#include "Fakes/WaitUntil.h"

using namespace CloudIngest;

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kT0 = 1'700'000'000.0;

// A time that moves only when told; counts the workers' readings, so a test
// knows a worker has looked at the queue (and, finding nothing, is about to wait).
class WatchedClock : public IClock {
 public:
  double Now() const override {
    double now = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      readings_++;
      now = kT0 + advanced_;
    }
    read_.notify_all();
    return now;
  }
  void Advance(double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    advanced_ += seconds;
  }
  bool WaitForReadings(unsigned count) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return read_.wait_for(lock, std::chrono::seconds(10), [&] { return readings_ >= count; });
  }
  unsigned Readings() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return readings_;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable read_;
  mutable unsigned readings_ = 0;
  double advanced_ = 0;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/scheduler-test-XXXXXX";
    dir_ = mkdtemp(pattern);
    queue_ = std::make_unique<SqliteStudyStore>(dir_ + "/queue.db");
    cancels_ = std::make_unique<CancelRegistry>(*queue_);
  }
  void TearDown() override {
    scheduler_.reset();
    cancels_.reset();
    queue_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Workers whose run calls `during` (if set), then marks the study sent
  // unless it was cancelled meanwhile, as the sender does.
  Scheduler& MakeScheduler(unsigned workers, ThreadStarter* threads = nullptr,
                           Scheduler::RunStudy during = nullptr) {
    scheduler_ = std::make_unique<Scheduler>(
        *queue_, *cancels_,
        [this, during](const StudyRecord& study) {
          if (during) during(study);
          if (!cancels_->IsCancelled(study.orthancId, study.claim)) {
            queue_->MarkSent(study, "signature", kT0);
          }
          std::lock_guard<std::mutex> lock(mutex_);
          runs_[study.orthancId]++;
          ran_.notify_all();
        },
        workers, clock_, log_, threads ? *threads : threads_);
    return *scheduler_;
  }

  void Enqueue(const std::string& id) {
    EnqueueRequest request;
    request.orthancId = id;
    queue_->Enqueue(request, kT0);
  }

  // Waits (up to `seconds`) until `count` runs have ended.
  bool WaitForRuns(size_t count, double seconds = 10) {
    std::unique_lock<std::mutex> lock(mutex_);
    return ran_.wait_for(lock, std::chrono::duration<double>(seconds), [&] {
      size_t total = 0;
      for (const auto& [id, n] : runs_) total += n;
      return total >= count;
    });
  }

  std::map<std::string, unsigned> Runs() {
    std::lock_guard<std::mutex> lock(mutex_);
    return runs_;
  }

  std::string dir_;
  WatchedClock clock_;
  Testing::RecordingLogger log_;
  ThreadStarter threads_{log_};
  std::unique_ptr<StudyStore> queue_;
  std::unique_ptr<CancelRegistry> cancels_;
  std::unique_ptr<Scheduler> scheduler_;
  std::mutex mutex_;
  std::condition_variable ran_;
  std::map<std::string, unsigned> runs_;
};

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

TEST_F(SchedulerTest, WorkersClaimAndRunEveryDueStudyOnce) {
  for (const char* id : {"s1", "s2", "s3", "s4", "s5"}) Enqueue(id);
  // Queued but due only later: not run at kT0.
  Enqueue("later");
  const auto claimed = queue_->ClaimNext(kT0);
  ASSERT_TRUE(claimed);
  queue_->MarkRetry(*claimed, "busy", kT0 + 3600, kT0);
  const std::string laterId = claimed->orthancId;

  Scheduler& scheduler = MakeScheduler(3);
  scheduler.Start();
  ASSERT_TRUE(WaitForRuns(5));
  scheduler.Stop();
  const auto runs = Runs();
  for (const char* id : {"s1", "s2", "s3", "s4", "s5", "later"}) {
    SCOPED_TRACE(id);
    if (id == laterId) {
      EXPECT_EQ(0u, runs.count(id));
      EXPECT_EQ(StudyState::Queued, queue_->Get(id)->state);
    } else {
      EXPECT_EQ(1u, runs.at(id));
      EXPECT_EQ(StudyState::Sent, queue_->Get(id)->state);
    }
  }
}

TEST_F(SchedulerTest, WakeStartsAnIdleWorkerBeforeItsNextPoll) {
  Scheduler& scheduler = MakeScheduler(1);
  scheduler.Start();
  ASSERT_TRUE(clock_.WaitForReadings(1));  // found nothing: idle for 5 s
  Enqueue("s1");
  const auto woken = Clock::now();
  scheduler.Wake();
  EXPECT_TRUE(WaitForRuns(1, 2.5));
  EXPECT_LT(SecondsSince(woken), 2.5);
  scheduler.Stop();
}

TEST_F(SchedulerTest, StopJoinsPromptlyDuringALongIdleWait) {
  Scheduler& scheduler = MakeScheduler(4);
  scheduler.Start();
  ASSERT_TRUE(clock_.WaitForReadings(4));  // every worker is idle
  const auto stopping = Clock::now();
  scheduler.Stop();
  EXPECT_LT(SecondsSince(stopping), 1.0);
  const unsigned readings = clock_.Readings();
  Enqueue("s1");
  scheduler.Wake();  // no worker left to take it
  EXPECT_FALSE(WaitForRuns(1, 0.2));
  EXPECT_EQ(readings, clock_.Readings());
}

TEST_F(SchedulerTest, ARefusedThreadLeavesTheWorkersThatStarted) {
  std::atomic<int> launched{0};
  ThreadStarter refusing(log_, [&](std::function<void()> body) {
    if (launched++ >= 1) {
      throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
    }
    return std::thread(std::move(body));
  });
  for (const char* id : {"s1", "s2", "s3"}) Enqueue(id);
  Scheduler& scheduler = MakeScheduler(4, &refusing);
  EXPECT_NO_THROW(scheduler.Start());
  EXPECT_TRUE(WaitForRuns(3));
  scheduler.Stop();
  EXPECT_EQ(3u, Runs().size());
  EXPECT_EQ(1u, log_.Count("refused a new thread"));
  EXPECT_EQ(0u, log_.Count("no study worker could be started"));
}

TEST_F(SchedulerTest, NoWorkerAtAllIsLoggedAndTheStudiesStayQueued) {
  ThreadStarter none(log_, [](std::function<void()>) -> std::thread {
    throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
  });
  Enqueue("s1");
  Scheduler& scheduler = MakeScheduler(2, &none);
  EXPECT_NO_THROW(scheduler.Start());
  EXPECT_EQ(1u, log_.Count("no study worker could be started"));
  scheduler.Stop();
  EXPECT_EQ(StudyState::Queued, queue_->Get("s1")->state);
}

TEST_F(SchedulerTest, TheCancelOfAnAttemptIsDroppedWhenTheAttemptEnds) {
  Enqueue("s1");
  uint64_t claim = 0;
  bool cancelledDuring = false;
  Scheduler& scheduler = MakeScheduler(1, nullptr, [&](const StudyRecord& study) {
    claim = study.claim;
    cancelledDuring =
        cancels_->Cancel(study.orthancId, kT0) && cancels_->IsCancelled(study.orthancId, claim);
  });
  scheduler.Start();
  ASSERT_TRUE(WaitForRuns(1));
  scheduler.Stop();  // joins: the worker is past its Forget
  EXPECT_TRUE(cancelledDuring);
  EXPECT_FALSE(cancels_->IsCancelled("s1", claim));
  EXPECT_EQ(StudyState::Cancelled, queue_->Get("s1")->state);
}

TEST_F(SchedulerTest, AFailingRunIsLoggedAndTheOtherStudiesStillRun) {
  Enqueue("s1");
  Enqueue("s2");
  std::atomic<bool> thrown{false};
  std::string failed;
  Scheduler& scheduler = MakeScheduler(2, nullptr, [&](const StudyRecord& study) {
    if (!thrown.exchange(true)) {
      failed = study.orthancId;
      throw std::runtime_error("disk I/O error");
    }
  });
  scheduler.Start();
  // The failed run is queued again (due later: the clock stands still); the
  // other study is still run.
  EXPECT_TRUE(WaitForRuns(1));
  scheduler.Stop();
  EXPECT_EQ(1u, log_.Count("the attempt stopped on an error: disk I/O error"));
  EXPECT_EQ(1u, Runs().size());
  EXPECT_EQ(StudyState::Queued, queue_->Get(failed)->state);
  EXPECT_TRUE(cancels_->Running().empty());
}

// A store whose Postpone fails once, as when the database drops the
// connection at that moment.
class PostponeFailsOnce : public Testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  void Postpone(const StudyRecord& claimed, double until, const std::string& reason,
                double now) override {
    if (!failed_.exchange(true)) throw DatabaseError("plugin database, Postpone: injected");
    ForwardingStore::Postpone(claimed, until, reason, now);
  }

 private:
  std::atomic<bool> failed_{false};
};

// Issue 21, item 6: an attempt whose Postpone (outside SendWindows, or a
// cluster still adding instances) threw stayed Sending for ever: its claim
// was never forgotten, so the lease keeper renewed it every second and no
// node could take it over.
TEST_F(SchedulerTest, AFailedPostponeLeavesTheStudyQueuedAndItIsSentOnALaterPass) {
  PostponeFailsOnce flaky(*queue_);
  CancelRegistry cancels(flaky);
  std::atomic<int> passes{0};
  Scheduler scheduler(
      flaky, cancels,
      [&](const StudyRecord& study) {
        if (passes++ == 0) {  // outside the send windows: wait for the next one
          flaky.Postpone(study, kT0 + 60, "outside SendWindows", clock_.Now());
          return;
        }
        flaky.MarkSent(study, "signature", clock_.Now(), true);
      },
      1, clock_, log_, threads_);
  EnqueueRequest request;
  request.orthancId = "s1";
  flaky.Enqueue(request, kT0);
  scheduler.Start();

  // The failed attempt released its claim: not running here (the lease keeper
  // renews only running claims), and queued again, due shortly.
  ASSERT_TRUE(Testing::WaitUntil([&] {
    const auto study = flaky.Get("s1");
    return passes > 0 && study->state == StudyState::Queued && cancels.Running().empty();
  }));
  EXPECT_EQ(1, passes.load());
  EXPECT_NE(flaky.Get("s1")->lastError.find("injected"), std::string::npos);
  EXPECT_EQ(1u, log_.Count("study s1: the attempt stopped on an error"));

  clock_.Advance(60);  // the retry is due: claimed and sent on a later pass
  scheduler.Wake();
  ASSERT_TRUE(Testing::WaitUntil([&] { return flaky.Get("s1")->state == StudyState::Sent; }));
  scheduler.Stop();
  EXPECT_EQ(2, passes.load());
  EXPECT_TRUE(cancels.Running().empty());
  EXPECT_EQ(0u, flaky.Totals().failures);  // a store fault, not a failed send
}

// POST /queue/pause: a paused scheduler claims nothing, however often it is
// woken; resuming wakes the idle workers at once (not at their next poll).
TEST_F(SchedulerTest, APausedSchedulerClaimsNothingUntilResumed) {
  Scheduler& scheduler = MakeScheduler(2);
  scheduler.SetMode(QueueMode::Paused);
  EXPECT_EQ(QueueMode::Paused, scheduler.Mode());
  scheduler.Start();
  Enqueue("s1");
  scheduler.Wake();
  EXPECT_FALSE(WaitForRuns(1, 0.3));
  EXPECT_EQ(StudyState::Queued, queue_->Get("s1")->state);
  const auto resumed = Clock::now();
  scheduler.SetMode(QueueMode::Running);
  EXPECT_TRUE(WaitForRuns(1, 2.5));
  EXPECT_LT(SecondsSince(resumed), 2.5);
  EXPECT_EQ(StudyState::Sent, queue_->Get("s1")->state);
  scheduler.Stop();
}

// Pausing leaves a running attempt alone: it ends as it would have.
TEST_F(SchedulerTest, PausingLetsTheRunningAttemptFinish) {
  std::mutex gate;
  std::condition_variable opened;
  bool started = false, paused = false;
  Scheduler& scheduler = MakeScheduler(1, nullptr, [&](const StudyRecord&) {
    std::unique_lock<std::mutex> lock(gate);
    started = true;
    opened.notify_all();
    opened.wait_for(lock, std::chrono::seconds(10), [&] { return paused; });
  });
  Enqueue("s1");
  scheduler.Start();
  {
    std::unique_lock<std::mutex> lock(gate);
    ASSERT_TRUE(opened.wait_for(lock, std::chrono::seconds(10), [&] { return started; }));
  }
  scheduler.SetMode(QueueMode::Paused);
  Enqueue("s2");
  {
    std::lock_guard<std::mutex> lock(gate);
    paused = true;
  }
  opened.notify_all();
  ASSERT_TRUE(WaitForRuns(1));
  EXPECT_EQ(StudyState::Sent, queue_->Get("s1")->state);
  EXPECT_FALSE(WaitForRuns(2, 0.3));
  EXPECT_EQ(StudyState::Queued, queue_->Get("s2")->state);
  scheduler.Stop();
}
