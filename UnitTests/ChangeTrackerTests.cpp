// CatchUpScanner (the start-up scan of /changes) and ChangeTracker (which
// moves its cursor while the plugin runs), over the real SQLite queue.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "Core/Orthanc/CatchUpScanner.h"
#include "Core/Orthanc/ChangeTracker.h"
#include "Core/Store/SqliteStudyStore.h"
#include "Core/Time.h"
#include "Fakes/FakeChangeFeed.h"
#include "Fakes/FakeStudySource.h"

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

  // A fresh store on the same file: what a restarted Orthanc sees.
  void OpenQueue() {
    queue_.reset();
    queue_ = std::make_unique<SqliteStudyStore>(dir_ + "/queue.db");
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

  // Inserts of new studies fail, as on a full disk: a trigger in the real
  // database, set through a second connection.
  void FailNewStudies(bool fail) {
    sqlite3* db = nullptr;
    ASSERT_EQ(SQLITE_OK, sqlite3_open((dir_ + "/queue.db").c_str(), &db));
    const char* sql = fail ? "CREATE TRIGGER fail_new_study BEFORE INSERT ON studies BEGIN "
                             "SELECT RAISE(ABORT, 'injected: database or disk is full'); END;"
                           : "DROP TRIGGER fail_new_study;";
    EXPECT_EQ(SQLITE_OK, sqlite3_exec(db, sql, nullptr, nullptr, nullptr)) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }

  // What CloudIngestService::OnStableStudy does in Orthanc's change callback.
  void OnStableStudy(const std::string& id, UnrecordedStudies& unrecorded) {
    EnqueueRequest request;
    request.orthancId = id;
    try {
      queue_->Enqueue(request, clock_.Now());
    } catch (const DatabaseError&) {
      unrecorded.Add(id);
    }
  }

  std::string dir_;
  FakeChangeFeed feed_;
  ManualClock clock_;
  SilentLogger log_;
  std::unique_ptr<StudyStore> queue_;
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
  ChangeTracker tracker(feed_, *queue_, clock_, nullptr, 10);
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
  ChangeTracker tracker(feed_, *queue_, clock_, nullptr, 10);
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
  ChangeTracker tracker(feed_, *queue_, clock_, nullptr, 10);
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
  ChangeTracker tracker(feed_, *queue_, clock_, nullptr, 10);
  feed_.Add("NewStudy", "gone");
  feed_.Add("NewChildInstance", "gone");
  const int64_t deleted = feed_.Add("Deleted", "gone");
  EXPECT_EQ(deleted, tracker.Poll());
}

TEST_F(ChangesTest, ReadsEveryPageOfABurst) {
  Scan();
  ChangeTracker tracker(feed_, *queue_, clock_, nullptr, 10);
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
    ChangeTracker tracker(feed_, *queue_, clock_, nullptr, 10);
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
  ChangeTracker tracker(feed_, *queue_, clock_, nullptr, 10);
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

// Orthanc 1.12.5's ExtendedChanges (/changes?type=NewStudy;StableStudy):
// pages with gaps, and a "Last" at the log's end when nothing matched.
TEST_F(ChangesTest, AFilteredFeedStillFindsAStudyWhoseStableStudyNeverCame) {
  Scan();
  feed_.filtered = true;
  feed_.Add("NewStudy", "half-received");  // Orthanc killed before it was stable
  feed_.Add("NewInstance", "half-received-i0", "Instance");
  Receive("received");
  const int64_t stable = feed_.LastSeq();
  feed_.Add("NewInstance", "other-i0", "Instance");  // not in a filtered page
  EXPECT_EQ(2u, Scan());
  EXPECT_EQ("catch-up", queue_->Get("half-received")->trigger);
  EXPECT_EQ("catch-up", queue_->Get("received")->trigger);
  EXPECT_EQ(stable, queue_->GetChangesCursor());  // the last change read
  EXPECT_EQ(0u, Scan());                          // both on their way; nothing read twice
  // A page without a change ends at the log's end: past the gap the filter left.
  EXPECT_EQ(feed_.LastSeq(), queue_->GetChangesCursor());
}

TEST_F(ChangesTest, TrackerOnAFilteredFeedHoldsTheCursorBeforeAnUnstableStudy) {
  Scan();
  feed_.filtered = true;
  ChangeTracker tracker(feed_, *queue_, clock_, nullptr, 10);
  Receive("a");
  const int64_t stable = feed_.LastSeq();
  feed_.Add("NewInstance", "x-i0", "Instance");
  const int64_t slow = feed_.Add("NewStudy", "slow");
  feed_.Add("NewInstance", "slow-i0", "Instance");
  EXPECT_EQ(stable - 1, tracker.Poll());  // "a" settling
  clock_.Advance(11);
  EXPECT_EQ(slow - 1, tracker.Poll());  // "a" settled; "slow" is not stable
  const int64_t slowStable = feed_.Add("StableStudy", "slow");
  feed_.Add("NewInstance", "y-i0", "Instance");
  tracker.Poll();
  clock_.Advance(11);
  EXPECT_LT(slowStable, feed_.LastSeq());
  EXPECT_EQ(feed_.LastSeq(), tracker.Poll());  // settled, and past the gap after it
}

TEST_F(ChangesTest, TrackerNeverMovesTheCursorBack) {
  Scan();
  ChangeTracker tracker(feed_, *queue_, clock_, nullptr, 10);
  Receive("a");
  tracker.Poll();
  clock_.Advance(11);
  const int64_t first = tracker.Poll();
  // A study whose first change is older than the cursor cannot pull it back.
  feed_.Add("NewChildInstance", "a");
  EXPECT_GE(tracker.Poll(), first);
  EXPECT_GE(queue_->GetChangesCursor(), first);
}

TEST_F(ChangesTest, TrackerHoldsTheCursorBeforeAStableStudyWhoseInsertFailed) {
  Scan();
  UnrecordedStudies unrecorded;
  ChangeTracker tracker(feed_, *queue_, clock_, &unrecorded, 10);
  Receive("sent-before");
  const int64_t before = feed_.LastSeq();
  FailNewStudies(true);
  Receive("lost");
  OnStableStudy("lost", unrecorded);
  ASSERT_TRUE(unrecorded.Contains("lost"));
  ASSERT_FALSE(queue_->Get("lost").has_value());
  tracker.Poll();  // sees both StableStudy changes; neither has settled yet
  clock_.Advance(11);
  // The disk is still full: the tracker cannot insert it and must not pass it.
  EXPECT_THROW(tracker.Poll(), DatabaseError);
  EXPECT_LE(queue_->GetChangesCursor(), before);

  // Orthanc dies here; after the restart the catch-up scan still finds it.
  FailNewStudies(false);
  OpenQueue();
  EXPECT_GE(Scan(), 1u);
  ASSERT_TRUE(queue_->Get("lost").has_value());
  EXPECT_EQ(StudyState::Queued, queue_->Get("lost")->state);
}

TEST_F(ChangesTest, TrackerInsertsAStableStudyWhoseInsertFailedOnceItCan) {
  Scan();
  UnrecordedStudies unrecorded;
  ChangeTracker tracker(feed_, *queue_, clock_, &unrecorded, 10);
  FailNewStudies(true);
  Receive("lost");
  OnStableStudy("lost", unrecorded);
  FailNewStudies(false);
  Receive("later");
  OnStableStudy("later", unrecorded);
  tracker.Poll();
  clock_.Advance(11);
  EXPECT_EQ(feed_.LastSeq(), tracker.Poll());
  ASSERT_TRUE(queue_->Get("lost").has_value());
  EXPECT_EQ(StudyState::Queued, queue_->Get("lost")->state);
  EXPECT_EQ("auto", queue_->Get("lost")->trigger);
  EXPECT_EQ(0u, unrecorded.Size());
}

TEST_F(ChangesTest, ADeletedStudyWhoseInsertFailedIsNotInsertedLater) {
  Scan();
  UnrecordedStudies unrecorded;
  ChangeTracker tracker(feed_, *queue_, clock_, &unrecorded, 10);
  FailNewStudies(true);
  Receive("gone");
  OnStableStudy("gone", unrecorded);
  FailNewStudies(false);
  tracker.Poll();
  feed_.Add("Deleted", "gone");
  clock_.Advance(11);
  EXPECT_EQ(feed_.LastSeq(), tracker.Poll());
  EXPECT_FALSE(queue_->Get("gone").has_value());
  EXPECT_EQ(0u, unrecorded.Size());
}

// Orthanc's LastUpdate text for a time of the test clock.
std::string OrthancTime(double unixSeconds) {
  std::string iso = FormatIsoTime(unixSeconds);  // 2023-11-14T22:13:20.000Z
  iso.erase(std::remove_if(iso.begin(), iso.end(), [](char c) { return c == '-' || c == ':'; }),
            iso.end());
  return iso.substr(0, 15);
}

TEST_F(ChangesTest, AStudyWhoseStableStudyNeverCameIsQueuedOnceQuietForStableAge) {
  // Another node received it and was killed inside StableAge: no node fires
  // StableStudy, and only the shared /changes and LastUpdate tell.
  Scan();
  Testing::FakeStudySource source;
  source.AddStudy("orphan", "1.2.3", 2).lastUpdate = OrthancTime(clock_.Now());
  StudyInfo& arriving = source.AddStudy("arriving", "1.2.4", 2);
  arriving.lastUpdate = OrthancTime(clock_.Now());
  ChangeTracker tracker(feed_, *queue_, clock_, nullptr, 10);
  tracker.QueueQuietStudies(source, 60);
  for (const char* id : {"orphan", "arriving"}) {
    feed_.Add("NewStudy", id);
    feed_.Add("NewChildInstance", id);
  }
  const int64_t before = feed_.LastSeq() - 4;
  EXPECT_EQ(before, tracker.Poll());

  clock_.Advance(65);  // not yet StableAge plus the settle time
  EXPECT_EQ(before, tracker.Poll());
  EXPECT_FALSE(queue_->Get("orphan").has_value());

  clock_.Advance(10);
  source.AddInstance("arriving");  // still receiving on a live node
  arriving.lastUpdate = OrthancTime(clock_.Now() - 5);
  tracker.Poll();
  ASSERT_TRUE(queue_->Get("orphan").has_value());
  EXPECT_EQ("catch-up", queue_->Get("orphan")->trigger);
  EXPECT_FALSE(queue_->Get("arriving").has_value());
  EXPECT_EQ(1u, tracker.UnsettledStudies());  // the cursor waits for "arriving"
  EXPECT_LT(queue_->GetChangesCursor(), feed_.LastSeq());

  // Its own StableStudy comes from the live node: settled as usual.
  feed_.Add("StableStudy", "arriving");
  clock_.Advance(11);
  tracker.Poll();
  clock_.Advance(11);
  EXPECT_EQ(feed_.LastSeq(), tracker.Poll());
  EXPECT_FALSE(queue_->Get("arriving").has_value());  // its node's callback queues it
}

TEST_F(ChangesTest, AQuietStudyDeletedMeanwhileIsDropped) {
  Scan();
  Testing::FakeStudySource source;
  ChangeTracker tracker(feed_, *queue_, clock_, nullptr, 10);
  tracker.QueueQuietStudies(source, 60);
  feed_.Add("NewStudy", "deleted-on-disk");
  feed_.Add("NewChildInstance", "deleted-on-disk");
  tracker.Poll();
  clock_.Advance(71);
  EXPECT_EQ(feed_.LastSeq(), tracker.Poll());
  EXPECT_FALSE(queue_->Get("deleted-on-disk").has_value());
}

}  // namespace
}  // namespace CloudIngest
