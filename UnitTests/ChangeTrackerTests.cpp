// CatchUpScanner (the start-up scan of /changes) and ChangeTracker (which
// moves its cursor while the plugin runs), over the real SQLite queue.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "Core/CatchUpScanner.h"
#include "Core/ChangeTracker.h"
#include "Fakes/FakeChangeFeed.h"

namespace CloudIngest {
namespace {

class SilentLogger : public ILogger {
 public:
  void Info(const std::string&) override {}
  void Warning(const std::string& message) override { warnings.push_back(message); }
  void Error(const std::string&) override {}
  std::vector<std::string> warnings;
};

class ChangesTest : public ::testing::Test {
 protected:
  ChangesTest() {
    std::string pattern = (std::filesystem::temp_directory_path() / "changes-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    OpenQueue();
  }
  ~ChangesTest() override {
    queue_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // A fresh UploadQueue on the same file: what a restarted Orthanc sees.
  void OpenQueue() {
    queue_.reset();
    queue_ = std::make_unique<UploadQueue>(dir_ + "/queue.db");
  }

  // A study fully received and stable: NewStudy, `instances` x NewChildInstance, StableStudy.
  void Receive(const std::string& id, int instances = 2) {
    feed_.Add("NewStudy", id);
    for (int i = 0; i < instances; ++i) {
      feed_.Add("NewInstance", id + "-i" + std::to_string(i), "Instance");
      feed_.Add("NewChildInstance", id);
    }
    feed_.Add("StableStudy", id);
  }

  unsigned Scan() { return CatchUpScanner(feed_, *queue_, clock_, log_).Scan(); }

  std::string dir_;
  FakeChangeFeed feed_;
  ManualClock clock_;
  SilentLogger log_;
  std::unique_ptr<UploadQueue> queue_;
};

TEST_F(ChangesTest, FirstScanOnlySetsTheCursor) {
  Receive("old-a");
  Receive("old-b");
  EXPECT_EQ(0u, Scan());  // installing the plugin does not resend the archive
  EXPECT_EQ(feed_.LastSeq(), queue_->GetChangesCursor());
  EXPECT_FALSE(queue_->Get("old-a").has_value());
}

TEST_F(ChangesTest, ScanQueuesChangedStudiesExceptThoseOnTheirWayOrCancelled) {
  Scan();
  Receive("received");
  Receive("queued");
  Receive("cancelled");
  feed_.Add("NewStudy", "deleted");
  feed_.Add("Deleted", "deleted");
  feed_.Add("NewStudy", "half-received");
  feed_.Add("NewChildInstance", "half-received");

  EnqueueRequest request;
  request.trigger = "auto";
  request.orthancId = "queued";
  queue_->Enqueue(request, clock_.Now());
  request.orthancId = "cancelled";
  queue_->Enqueue(request, clock_.Now());
  ASSERT_TRUE(queue_->Cancel("cancelled", clock_.Now()));

  EXPECT_EQ(2u, Scan());  // received (the sender compares it with what was sent) and half-received
  EXPECT_EQ("catch-up", queue_->Get("received")->trigger);
  EXPECT_EQ("catch-up", queue_->Get("half-received")->trigger);
  EXPECT_EQ("auto", queue_->Get("queued")->trigger);
  EXPECT_EQ(StudyState::Cancelled, queue_->Get("cancelled")->state);
  EXPECT_FALSE(queue_->Get("deleted").has_value());
  EXPECT_EQ(feed_.LastSeq(), queue_->GetChangesCursor());
}

TEST_F(ChangesTest, WithAutoSendOffTheScanOnlyMovesTheCursor) {
  Scan();
  Receive("stored-while-down");
  EXPECT_EQ(0u, CatchUpScanner(feed_, *queue_, clock_, log_, /*autoSend=*/false).Scan());
  EXPECT_FALSE(queue_->Get("stored-while-down").has_value());
  EXPECT_EQ(feed_.LastSeq(), queue_->GetChangesCursor());
}

TEST_F(ChangesTest, TrackerMovesTheCursorPastAStableStudyOnceItSettled) {
  Scan();
  ChangeTracker tracker(feed_, *queue_, clock_, 10);
  Receive("a");
  const int64_t stable = feed_.LastSeq();
  // The StableStudy may not have reached OnChange yet: the cursor stops before it.
  EXPECT_EQ(stable - 1, tracker.Poll());
  clock_.Advance(5);
  EXPECT_EQ(stable - 1, tracker.Poll());
  clock_.Advance(6);
  EXPECT_EQ(stable, tracker.Poll());
  EXPECT_EQ(stable, queue_->GetChangesCursor());
  EXPECT_EQ(0u, tracker.UnsettledStudies());
}

TEST_F(ChangesTest, AStudyStillReceivingHoldsTheCursorUntilItIsStable) {
  Scan();
  const int64_t start = queue_->GetChangesCursor();
  ChangeTracker tracker(feed_, *queue_, clock_, 10);
  const int64_t first = feed_.Add("NewStudy", "slow");
  feed_.Add("NewChildInstance", "slow");
  Receive("quick");
  clock_.Advance(60);
  EXPECT_EQ(first - 1, tracker.Poll());  // "quick" is done, "slow" is not
  EXPECT_EQ(start, first - 1);
  EXPECT_EQ(1u, tracker.UnsettledStudies());

  feed_.Add("NewChildInstance", "slow");
  const int64_t stable = feed_.Add("StableStudy", "slow");
  tracker.Poll();
  clock_.Advance(11);
  EXPECT_EQ(stable, tracker.Poll());
  EXPECT_EQ(0u, tracker.UnsettledStudies());
}

TEST_F(ChangesTest, NewInstancesAfterStabilityHoldTheCursorAgain) {
  Scan();
  ChangeTracker tracker(feed_, *queue_, clock_, 10);
  Receive("a");
  tracker.Poll();
  clock_.Advance(11);  // settling counts from when the tracker saw the change
  const int64_t settled = tracker.Poll();
  EXPECT_EQ(feed_.LastSeq(), settled);
  const int64_t late = feed_.Add("NewChildInstance", "a");
  clock_.Advance(60);
  EXPECT_EQ(late - 1, tracker.Poll());
}

TEST_F(ChangesTest, ADeletedStudyNoLongerHoldsTheCursor) {
  Scan();
  ChangeTracker tracker(feed_, *queue_, clock_, 10);
  feed_.Add("NewStudy", "gone");
  feed_.Add("NewChildInstance", "gone");
  const int64_t deleted = feed_.Add("Deleted", "gone");
  EXPECT_EQ(deleted, tracker.Poll());
}

TEST_F(ChangesTest, ReadsEveryPageOfABurst) {
  Scan();
  ChangeTracker tracker(feed_, *queue_, clock_, 10);
  for (int i = 0; i < 1200; ++i) Receive("s" + std::to_string(i), 1);
  clock_.Advance(11);
  const int pagesBefore = feed_.pagesRead;
  tracker.Poll();  // 4,800 changes: 5 pages
  EXPECT_EQ(5, feed_.pagesRead - pagesBefore);
  // The StableStudy changes were all seen at the first poll: none has settled yet.
  clock_.Advance(11);
  EXPECT_EQ(feed_.LastSeq(), tracker.Poll());
}

TEST_F(ChangesTest, AfterARestartOnlyUnaccountedStudiesAreScannedAgain) {
  // The point of the tracker: a restart does not look up every study of the previous run.
  Scan();
  {
    ChangeTracker tracker(feed_, *queue_, clock_, 10);
    for (int i = 0; i < 50; ++i) Receive("done" + std::to_string(i));
    clock_.Advance(1);
    tracker.Poll();
    clock_.Advance(11);
    tracker.Poll();
    feed_.Add("NewStudy", "interrupted");  // Orthanc is killed while this one arrives
    feed_.Add("NewChildInstance", "interrupted");
    clock_.Advance(30);
    tracker.Poll();
  }
  OpenQueue();
  EXPECT_EQ(1u, Scan());
  EXPECT_TRUE(queue_->Get("interrupted").has_value());
  EXPECT_FALSE(queue_->Get("done0").has_value());
  EXPECT_FALSE(queue_->Get("done49").has_value());
}

TEST_F(ChangesTest, AScanAfterTheLogWasClearedStartsOverFromItsEnd) {
  Scan();
  for (int i = 0; i < 5; ++i) Receive("old" + std::to_string(i));
  Scan();
  feed_.Clear();  // sequence numbers start again, below the saved cursor
  Receive("new");
  EXPECT_EQ(0u, Scan());  // not the whole new log: that could be a whole archive
  EXPECT_FALSE(queue_->Get("new").has_value());
  EXPECT_EQ(feed_.LastSeq(), queue_->GetChangesCursor());
  ASSERT_FALSE(log_.warnings.empty());
  EXPECT_NE(std::string::npos, log_.warnings.back().find("log cleared or index replaced"));
  // And from there on as usual.
  Receive("later");
  EXPECT_EQ(1u, Scan());
  EXPECT_TRUE(queue_->Get("later").has_value());
}

TEST_F(ChangesTest, TrackerFollowsALogClearedWhileRunningFromItsEnd) {
  Scan();
  ChangeTracker tracker(feed_, *queue_, clock_, 10);
  for (int i = 0; i < 5; ++i) Receive("old" + std::to_string(i));
  tracker.Poll();
  clock_.Advance(11);
  ASSERT_EQ(feed_.LastSeq(), tracker.Poll());
  feed_.Clear();
  Receive("new");
  EXPECT_EQ(feed_.LastSeq(), tracker.Poll());
  const int64_t first = feed_.Add("NewStudy", "arriving");
  clock_.Advance(60);
  EXPECT_EQ(first - 1, tracker.Poll());  // followed again: the arriving study holds it
}

TEST_F(ChangesTest, TrackerNeverMovesTheCursorBack) {
  Scan();
  ChangeTracker tracker(feed_, *queue_, clock_, 10);
  Receive("a");
  tracker.Poll();
  clock_.Advance(11);
  const int64_t first = tracker.Poll();
  // A study whose first change is older than the cursor cannot pull it back.
  feed_.Add("NewChildInstance", "a");
  EXPECT_GE(tracker.Poll(), first);
  EXPECT_GE(queue_->GetChangesCursor(), first);
}

}  // namespace
}  // namespace CloudIngest
