#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "Core/UploadQueue.h"

namespace CloudIngest {
namespace {

constexpr double kT0 = 1'700'000'000.0;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "uq-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

EnqueueRequest Request(const std::string& id, const std::string& trigger = "auto") {
  EnqueueRequest request;
  request.orthancId = id;
  request.trigger = trigger;
  return request;
}

EnqueueRequest Manual(const std::string& id, const std::string& user, const std::string& extra = "",
                      const std::string& mode = "") {
  EnqueueRequest request;
  request.orthancId = id;
  request.trigger = "manual";
  request.requestedBy = user;
  request.extraMetadata = extra;
  request.mode = mode;
  request.force = true;
  return request;
}

std::vector<std::string> Events(UploadQueue& queue, const std::string& id) {
  std::vector<std::string> events;
  for (const HistoryEntry& entry : queue.History(id)) {
    events.push_back(entry.event);
  }
  return events;
}

class UploadQueueTest : public ::testing::Test {
 protected:
  std::string DbPath() const { return dir_.File("queue.db"); }
  // Claims `id` (must be the only due study) and checks it.
  StudyRecord Claim(UploadQueue& queue, const std::string& id, double now) {
    auto claimed = queue.ClaimNext(now);
    EXPECT_TRUE(claimed.has_value());
    if (!claimed) {
      return {};
    }
    EXPECT_EQ(claimed->orthancId, id);
    return *claimed;
  }

  TempDir dir_;
};

TEST(StudyStateText, RoundTripsAndRejectsUnknown) {
  const std::vector<std::pair<StudyState, std::string>> expected = {
      {StudyState::Queued, "queued"},
      {StudyState::Sending, "sending"},
      {StudyState::Sent, "sent"},
      {StudyState::Failed, "failed"},
      {StudyState::Cancelled, "cancelled"}};
  for (const auto& [state, text] : expected) {
    EXPECT_EQ(ToString(state), text);
    EXPECT_EQ(ParseStudyState(text), state);
  }
  EXPECT_EQ(ParseStudyState("Sent"), StudyState::Sent);
  EXPECT_FALSE(ParseStudyState("").has_value());
  EXPECT_FALSE(ParseStudyState("done").has_value());
  EXPECT_FALSE(ParseStudyState("sent ").has_value());
}

TEST_F(UploadQueueTest, EnqueueNewStudyIsQueuedAndDueNow) {
  UploadQueue queue(DbPath());
  EnqueueRequest request = Manual("s1", "alice", R"({"site":"7"})", "Zip");
  request.force = false;
  const StudyRecord r = queue.Enqueue(request, kT0);
  EXPECT_EQ(r.orthancId, "s1");
  EXPECT_EQ(r.state, StudyState::Queued);
  EXPECT_EQ(r.attempts, 0u);
  EXPECT_DOUBLE_EQ(r.nextAttemptAt, kT0);
  EXPECT_DOUBLE_EQ(r.createdAt, kT0);
  EXPECT_DOUBLE_EQ(r.updatedAt, kT0);
  EXPECT_EQ(r.trigger, "manual");
  EXPECT_EQ(r.mode, "Zip");
  EXPECT_EQ(r.extraMetadata, R"({"site":"7"})");
  EXPECT_EQ(r.requestedBy, "alice");
  EXPECT_FALSE(r.resendRequested);

  const auto stored = queue.Get("s1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->requestedBy, "alice");
  EXPECT_EQ(stored->extraMetadata, R"({"site":"7"})");
  const auto history = queue.History("s1");
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].event, "queued");
  EXPECT_NE(history[0].detail.find("manual"), std::string::npos);
  EXPECT_DOUBLE_EQ(history[0].time, kT0);
  EXPECT_FALSE(queue.Get("unknown").has_value());
}

TEST_F(UploadQueueTest, EnqueueRejectsEmptyId) {
  UploadQueue queue(DbPath());
  EXPECT_THROW(queue.Enqueue(Request(""), kT0), DatabaseError);
}

TEST_F(UploadQueueTest, ReEnqueueStartsANewCycleButKeepsSignature) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = Claim(queue, "s1", kT0 + 1);
  r.orderId = "order-1";
  r.studyInstanceUid = "1.2.3";
  r.instancesSent = 5;
  r.instancesTotal = 5;
  r.bytesSent = 5000;
  queue.Update(r, kT0 + 2);
  queue.MarkSent("s1", "sig-A", kT0 + 3);

  const StudyRecord again = queue.Enqueue(Request("s1", "catch-up"), kT0 + 10);
  EXPECT_EQ(again.state, StudyState::Queued);
  EXPECT_DOUBLE_EQ(again.nextAttemptAt, kT0 + 10);
  EXPECT_EQ(again.attempts, 0u);
  EXPECT_EQ(again.orderId, "");
  EXPECT_EQ(again.instancesSent, 0u);
  EXPECT_EQ(again.bytesSent, 0u);
  EXPECT_EQ(again.lastError, "");
  EXPECT_EQ(again.trigger, "catch-up");
  EXPECT_EQ(again.sentSignature, "sig-A");  // the sender compares it
  EXPECT_DOUBLE_EQ(again.sentAt, kT0 + 3);
  EXPECT_DOUBLE_EQ(again.createdAt, kT0);
  EXPECT_EQ(again.studyInstanceUid, "1.2.3");
  EXPECT_EQ(again.instancesTotal, 5u);
}

TEST_F(UploadQueueTest, ForcedEnqueueClearsSignatureAndIsManual) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  Claim(queue, "s1", kT0);
  queue.MarkSent("s1", "sig-A", kT0 + 1);
  EnqueueRequest request = Manual("s1", "bob", "{\"a\":\"b\"}", "Instances");
  request.trigger = "something-else";
  const StudyRecord r = queue.Enqueue(request, kT0 + 2);
  EXPECT_EQ(r.state, StudyState::Queued);
  EXPECT_EQ(r.trigger, "manual");
  EXPECT_EQ(r.sentSignature, "");
  EXPECT_EQ(r.requestedBy, "bob");
  EXPECT_EQ(r.mode, "Instances");
  EXPECT_EQ(queue.Get("s1")->sentSignature, "");
}

TEST_F(UploadQueueTest, ReEnqueueFromFailedCancelledAndQueued) {
  UploadQueue queue(DbPath());
  // Failed
  queue.Enqueue(Request("f"), kT0);
  Claim(queue, "f", kT0);
  queue.MarkFailed("f", "HTTP 400: bad order", kT0 + 1);
  ASSERT_EQ(queue.Get("f")->state, StudyState::Failed);
  StudyRecord r = queue.Enqueue(Request("f"), kT0 + 2);
  EXPECT_EQ(r.state, StudyState::Queued);
  EXPECT_EQ(r.lastError, "");
  EXPECT_EQ(r.attempts, 0u);

  // Cancelled
  queue.Enqueue(Request("c"), kT0);
  ASSERT_TRUE(queue.Cancel("c", kT0 + 1));
  r = queue.Enqueue(Request("c"), kT0 + 3);
  EXPECT_EQ(r.state, StudyState::Queued);
  EXPECT_DOUBLE_EQ(r.nextAttemptAt, kT0 + 3);

  // Queued and waiting for a retry: due now again, attempts reset.
  UploadQueue other(dir_.File("other.db"));
  other.Enqueue(Request("q"), kT0 + 100);
  StudyRecord claimed = Claim(other, "q", kT0 + 100);
  claimed.orderId = "order-q";
  other.Update(claimed, kT0 + 100);
  other.MarkRetry("q", "timeout", kT0 + 500, kT0 + 101);
  r = other.Enqueue(Request("q", "auto"), kT0 + 102);
  EXPECT_EQ(r.state, StudyState::Queued);
  EXPECT_DOUBLE_EQ(r.nextAttemptAt, kT0 + 102);
  EXPECT_EQ(r.attempts, 0u);
  EXPECT_EQ(r.orderId, "");
  EXPECT_EQ(r.lastError, "");
}

TEST_F(UploadQueueTest, AutomaticEnqueueDoesNotDowngradeAQueuedManualSend) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Manual("s1", "alice", R"({"k":"v"})", "Zip"), kT0);
  const StudyRecord r = queue.Enqueue(Request("s1", "auto"), kT0 + 1);
  EXPECT_EQ(r.trigger, "manual");
  EXPECT_EQ(r.requestedBy, "alice");
  EXPECT_EQ(r.extraMetadata, R"({"k":"v"})");
  EXPECT_EQ(r.mode, "Zip");
  EXPECT_DOUBLE_EQ(r.nextAttemptAt, kT0 + 1);
  // Once sent, an automatic event is an automatic send again.
  Claim(queue, "s1", kT0 + 2);
  queue.MarkSent("s1", "sig", kT0 + 3);
  const StudyRecord later = queue.Enqueue(Request("s1", "auto"), kT0 + 4);
  EXPECT_EQ(later.trigger, "auto");
  EXPECT_EQ(later.requestedBy, "");
  EXPECT_EQ(later.extraMetadata, "");
  EXPECT_EQ(later.sentSignature, "sig");
}

TEST_F(UploadQueueTest, EnqueueWhileSendingOnlyFlagsAResend) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  Claim(queue, "s1", kT0);
  const StudyRecord r = queue.Enqueue(Manual("s1", "carol", R"({"x":"1"})", "Zip"), kT0 + 5);
  EXPECT_EQ(r.state, StudyState::Sending);
  EXPECT_TRUE(r.resendRequested);
  EXPECT_EQ(r.attempts, 1u);
  EXPECT_EQ(r.trigger, "auto");  // the running send keeps its own request
  EXPECT_FALSE(queue.ClaimNext(kT0 + 6).has_value());
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Sending);
}

TEST_F(UploadQueueTest, MarkSentWithResendRequestedRequeuesWithTheNewRequest) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = Claim(queue, "s1", kT0);
  r.orderId = "order-1";
  r.instancesSent = 3;
  r.bytesSent = 300;
  queue.Update(r, kT0 + 1);
  queue.Enqueue(Manual("s1", "carol", R"({"x":"1"})", "Zip"), kT0 + 2);
  queue.Enqueue(Request("s1", "auto"), kT0 + 3);  // must not override carol's forced request
  queue.MarkSent("s1", "sig-1", kT0 + 4);

  const auto after = queue.Get("s1");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->state, StudyState::Queued);
  EXPECT_FALSE(after->resendRequested);
  EXPECT_DOUBLE_EQ(after->nextAttemptAt, kT0 + 4);
  EXPECT_EQ(after->attempts, 0u);
  EXPECT_EQ(after->orderId, "");
  EXPECT_EQ(after->instancesSent, 0u);
  EXPECT_EQ(after->bytesSent, 0u);
  EXPECT_DOUBLE_EQ(after->sentAt, kT0 + 4);
  EXPECT_EQ(after->sentSignature, "");  // forced: resent even if unchanged
  EXPECT_EQ(after->trigger, "manual");
  EXPECT_EQ(after->requestedBy, "carol");
  EXPECT_EQ(after->extraMetadata, R"({"x":"1"})");
  EXPECT_EQ(after->mode, "Zip");
  EXPECT_EQ(queue.Totals().studiesSent, 1u);
  const auto events = Events(queue, "s1");
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[events.size() - 2], "sent");
  EXPECT_EQ(events.back(), "queued");

  // The re-queued study is claimable as a fresh cycle.
  const StudyRecord next = Claim(queue, "s1", kT0 + 5);
  EXPECT_EQ(next.attempts, 1u);
}

TEST_F(UploadQueueTest, MarkSentWithAnAutomaticResendKeepsTheSignature) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  Claim(queue, "s1", kT0);
  queue.Enqueue(Request("s1", "auto"), kT0 + 1);
  queue.MarkSent("s1", "sig-1", kT0 + 2);
  const auto after = queue.Get("s1");
  EXPECT_EQ(after->state, StudyState::Queued);
  EXPECT_EQ(after->sentSignature, "sig-1");
  EXPECT_EQ(after->trigger, "auto");
}

TEST_F(UploadQueueTest, ClaimNextTakesTheOldestDueStudy) {
  UploadQueue queue(DbPath());
  EXPECT_FALSE(queue.ClaimNext(kT0).has_value());
  queue.Enqueue(Request("late"), kT0 + 50);
  queue.Enqueue(Request("b"), kT0 + 10);
  queue.Enqueue(Request("a"), kT0 + 10);  // same due time, created... at the same time too
  queue.Enqueue(Request("first"), kT0 + 5);

  EXPECT_FALSE(queue.ClaimNext(kT0 + 4).has_value());  // nothing due yet
  EXPECT_EQ(queue.NextDueTime(), kT0 + 5);

  const auto one = queue.ClaimNext(kT0 + 20);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->orthancId, "first");
  EXPECT_EQ(one->state, StudyState::Sending);
  EXPECT_EQ(one->attempts, 1u);
  EXPECT_DOUBLE_EQ(one->updatedAt, kT0 + 20);
  EXPECT_EQ(queue.Get("first")->state, StudyState::Sending);
  EXPECT_EQ(Events(queue, "first"), (std::vector<std::string>{"queued", "started"}));
  EXPECT_EQ(queue.History("first").back().attempt, 1u);

  const auto two = queue.ClaimNext(kT0 + 20);
  const auto three = queue.ClaimNext(kT0 + 20);
  ASSERT_TRUE(two && three);
  EXPECT_EQ(two->orthancId, "a");  // tie broken deterministically
  EXPECT_EQ(three->orthancId, "b");
  EXPECT_FALSE(queue.ClaimNext(kT0 + 20).has_value());  // "late" not due
  EXPECT_EQ(queue.NextDueTime(), kT0 + 50);
  EXPECT_EQ(queue.ClaimNext(kT0 + 50)->orthancId, "late");
  EXPECT_FALSE(queue.NextDueTime().has_value());
}

TEST_F(UploadQueueTest, ClaimNextPrefersEarlierCreatedOnEqualDueTime) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("zzz"), kT0);
  queue.Enqueue(Request("aaa"), kT0 + 1);
  // Both retried to the same time: the one created first wins despite its id.
  Claim(queue, "zzz", kT0 + 1);
  queue.MarkRetry("zzz", "e", kT0 + 100, kT0 + 1);
  Claim(queue, "aaa", kT0 + 1);
  queue.MarkRetry("aaa", "e", kT0 + 100, kT0 + 1);
  EXPECT_EQ(queue.ClaimNext(kT0 + 100)->orthancId, "zzz");
}

TEST_F(UploadQueueTest, MarkSentRecordsTotalsAndSignature) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = Claim(queue, "s1", kT0);
  queue.MarkRetry("s1", "503", kT0 + 1, kT0);
  r = Claim(queue, "s1", kT0 + 1);
  EXPECT_EQ(r.lastError, "503");
  EXPECT_EQ(r.attempts, 2u);
  queue.MarkSent("s1", "sig", kT0 + 2);
  const auto sent = queue.Get("s1");
  EXPECT_EQ(sent->state, StudyState::Sent);
  EXPECT_DOUBLE_EQ(sent->sentAt, kT0 + 2);
  EXPECT_EQ(sent->sentSignature, "sig");
  EXPECT_EQ(sent->lastError, "");
  EXPECT_EQ(sent->attempts, 2u);
  const QueueTotals totals = queue.Totals();
  EXPECT_EQ(totals.studiesSent, 1u);
  EXPECT_EQ(totals.failures, 1u);
  EXPECT_DOUBLE_EQ(totals.lastSuccess, kT0 + 2);
  EXPECT_EQ(Events(queue, "s1"),
            (std::vector<std::string>{"queued", "started", "retry", "started", "sent"}));
}

TEST_F(UploadQueueTest, MarkRetryRequeuesLaterWithTheError) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = Claim(queue, "s1", kT0);
  r.orderId = "order-1";
  queue.Update(r, kT0);
  queue.MarkRetry("s1", "HTTP 503 from new-order", kT0 + 30, kT0 + 1);
  const auto after = queue.Get("s1");
  EXPECT_EQ(after->state, StudyState::Queued);
  EXPECT_DOUBLE_EQ(after->nextAttemptAt, kT0 + 30);
  EXPECT_EQ(after->lastError, "HTTP 503 from new-order");
  EXPECT_EQ(after->attempts, 1u);
  EXPECT_EQ(after->orderId, "order-1");  // same cycle
  EXPECT_EQ(queue.Totals().failures, 1u);
  EXPECT_EQ(queue.History("s1").back().event, "retry");
  EXPECT_EQ(queue.History("s1").back().detail, "HTTP 503 from new-order");
  EXPECT_FALSE(queue.ClaimNext(kT0 + 29).has_value());
  EXPECT_EQ(queue.NextDueTime(), kT0 + 30);
  EXPECT_TRUE(queue.ClaimNext(kT0 + 30).has_value());
}

TEST_F(UploadQueueTest, MarkRetryClearsResendRequestAndAppliesItsRequest) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  Claim(queue, "s1", kT0);
  queue.Enqueue(Manual("s1", "dave"), kT0 + 1);
  queue.MarkRetry("s1", "timeout", kT0 + 60, kT0 + 2);
  const auto after = queue.Get("s1");
  EXPECT_EQ(after->state, StudyState::Queued);
  EXPECT_FALSE(after->resendRequested);
  EXPECT_DOUBLE_EQ(after->nextAttemptAt, kT0 + 60);
  EXPECT_EQ(after->requestedBy, "dave");
  EXPECT_EQ(after->trigger, "manual");
  // Sent later: no second re-queue, the pending request was consumed.
  Claim(queue, "s1", kT0 + 60);
  queue.MarkSent("s1", "sig", kT0 + 61);
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Sent);
}

TEST_F(UploadQueueTest, MarkFailedKeepsTheErrorAndCounts) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  Claim(queue, "s1", kT0);
  queue.MarkFailed("s1", "HTTP 400: invalid StudyInstanceUID", kT0 + 1);
  const auto after = queue.Get("s1");
  EXPECT_EQ(after->state, StudyState::Failed);
  EXPECT_EQ(after->lastError, "HTTP 400: invalid StudyInstanceUID");
  EXPECT_EQ(queue.Totals().failures, 1u);
  EXPECT_EQ(queue.Totals().studiesSent, 0u);
  EXPECT_EQ(queue.History("s1").back().event, "failed");
  EXPECT_FALSE(queue.ClaimNext(kT0 + 1000).has_value());
}

TEST_F(UploadQueueTest, MarkFailedWithResendRequestedRequeues) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = Claim(queue, "s1", kT0);
  r.orderId = "order-1";
  queue.Update(r, kT0);
  queue.Enqueue(Request("s1", "auto"), kT0 + 1);
  queue.MarkFailed("s1", "boom", kT0 + 2);
  const auto after = queue.Get("s1");
  EXPECT_EQ(after->state, StudyState::Queued);
  EXPECT_DOUBLE_EQ(after->nextAttemptAt, kT0 + 2);
  EXPECT_EQ(after->attempts, 0u);
  EXPECT_EQ(after->orderId, "");
  EXPECT_FALSE(after->resendRequested);
  EXPECT_EQ(queue.Totals().failures, 1u);
  const auto events = Events(queue, "s1");
  EXPECT_EQ(events[events.size() - 2], "failed");
  EXPECT_EQ(events.back(), "queued");
}

TEST_F(UploadQueueTest, CancelQueuedOrSendingOnly) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("q"), kT0);
  queue.Enqueue(Request("s"), kT0 + 1);
  Claim(queue, "q", kT0 + 1);  // "q" is older: sending; "s" stays queued
  EXPECT_FALSE(queue.IsCancelled("q"));
  EXPECT_TRUE(queue.Cancel("q", kT0 + 2));
  EXPECT_TRUE(queue.IsCancelled("q"));
  EXPECT_TRUE(queue.Cancel("s", kT0 + 2));
  EXPECT_TRUE(queue.IsCancelled("s"));
  EXPECT_EQ(queue.Get("q")->state, StudyState::Cancelled);
  EXPECT_EQ(queue.History("q").back().event, "cancelled");
  EXPECT_FALSE(queue.ClaimNext(kT0 + 100).has_value());
  EXPECT_FALSE(queue.Cancel("q", kT0 + 3));  // already cancelled
  EXPECT_FALSE(queue.Cancel("nope", kT0 + 3));
  EXPECT_FALSE(queue.IsCancelled("nope"));

  queue.Enqueue(Request("done"), kT0);
  Claim(queue, "done", kT0);
  queue.MarkSent("done", "sig", kT0 + 1);
  EXPECT_FALSE(queue.Cancel("done", kT0 + 2));
  EXPECT_EQ(queue.Get("done")->state, StudyState::Sent);
}

TEST_F(UploadQueueTest, CancelDropsAPendingResendAndLateResultsDoNotRequeue) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  Claim(queue, "s1", kT0);
  queue.Enqueue(Request("s1"), kT0 + 1);  // resend requested
  ASSERT_TRUE(queue.Cancel("s1", kT0 + 2));
  EXPECT_FALSE(queue.Get("s1")->resendRequested);
  // The sender notices late and reports a retryable error: still cancelled.
  queue.MarkRetry("s1", "connection reset", kT0 + 10, kT0 + 3);
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Cancelled);
  EXPECT_EQ(queue.Get("s1")->lastError, "connection reset");
  queue.MarkFailed("s1", "gave up", kT0 + 4);
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Cancelled);
  EXPECT_FALSE(queue.ClaimNext(kT0 + 100).has_value());
}

TEST_F(UploadQueueTest, SentAfterALateCancelIsRecordedAsSent) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  Claim(queue, "s1", kT0);
  ASSERT_TRUE(queue.Cancel("s1", kT0 + 1));
  queue.MarkSent("s1", "sig", kT0 + 2);  // the last upload had already gone
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Sent);
  EXPECT_EQ(queue.Get("s1")->sentSignature, "sig");
}

TEST_F(UploadQueueTest, MarkOnAStudyNotBeingSentDoesNotMoveIt) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);  // queued, never claimed
  queue.MarkSent("s1", "sig", kT0 + 1);
  queue.MarkFailed("s1", "x", kT0 + 1);
  queue.MarkRetry("s1", "y", kT0 + 99, kT0 + 1);
  const auto r = queue.Get("s1");
  EXPECT_EQ(r->state, StudyState::Queued);
  EXPECT_DOUBLE_EQ(r->nextAttemptAt, kT0);
  EXPECT_EQ(r->sentSignature, "");
  // Unknown studies: no row appears, no exception.
  queue.MarkSent("ghost", "sig", kT0);
  queue.MarkFailed("ghost", "x", kT0);
  EXPECT_FALSE(queue.Get("ghost").has_value());
}

TEST_F(UploadQueueTest, RecoverInterruptedRequeuesSendingStudies) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("a"), kT0);
  queue.Enqueue(Request("b"), kT0 + 1);
  queue.Enqueue(Request("c"), kT0 + 2);
  Claim(queue, "a", kT0 + 2);
  Claim(queue, "b", kT0 + 2);
  queue.Enqueue(Manual("b", "erin"), kT0 + 3);  // b: resend requested
  EXPECT_EQ(queue.RecoverInterrupted(kT0 + 100), 2u);
  const auto a = queue.Get("a");
  EXPECT_EQ(a->state, StudyState::Queued);
  EXPECT_DOUBLE_EQ(a->nextAttemptAt, kT0 + 100);
  EXPECT_EQ(a->attempts, 1u);  // the interrupted attempt counts
  EXPECT_EQ(queue.History("a").back().event, "recovered after restart");
  const auto b = queue.Get("b");
  EXPECT_EQ(b->state, StudyState::Queued);
  EXPECT_FALSE(b->resendRequested);
  EXPECT_EQ(b->requestedBy, "erin");
  EXPECT_EQ(queue.Get("c")->state, StudyState::Queued);
  EXPECT_EQ(queue.History("c").size(), 1u);  // untouched
  EXPECT_EQ(queue.RecoverInterrupted(kT0 + 101), 0u);
}

TEST_F(UploadQueueTest, UpdateWritesProgressButNeverTheState) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = Claim(queue, "s1", kT0);
  r.state = StudyState::Sent;  // must be ignored
  r.attempts = 42;             // must be ignored
  r.trigger = "hacked";        // must be ignored
  r.studyInstanceUid = "1.2.840.1";
  r.orderId = "0b3c2d1e-0000-4000-8000-000000000000";
  r.instancesSent = 2;
  r.instancesTotal = 7;
  r.bytesSent = 123456789012ULL;
  r.patientName = "DOE^JANE";
  r.patientId = "P-1";
  r.studyDate = "20240102";
  r.studyDescription = "CT chest";
  r.lastError = "retrying instance 3";
  queue.Update(r, kT0 + 5);
  const auto stored = queue.Get("s1");
  EXPECT_EQ(stored->state, StudyState::Sending);
  EXPECT_EQ(stored->attempts, 1u);
  EXPECT_EQ(stored->trigger, "auto");
  EXPECT_EQ(stored->studyInstanceUid, "1.2.840.1");
  EXPECT_EQ(stored->orderId, "0b3c2d1e-0000-4000-8000-000000000000");
  EXPECT_EQ(stored->instancesSent, 2u);
  EXPECT_EQ(stored->instancesTotal, 7u);
  EXPECT_EQ(stored->bytesSent, 123456789012ULL);
  EXPECT_EQ(stored->patientName, "DOE^JANE");
  EXPECT_EQ(stored->patientId, "P-1");
  EXPECT_EQ(stored->studyDate, "20240102");
  EXPECT_EQ(stored->studyDescription, "CT chest");
  EXPECT_EQ(stored->lastError, "retrying instance 3");
  EXPECT_DOUBLE_EQ(stored->updatedAt, kT0 + 5);

  // Cancelled meanwhile: progress is written, the study stays cancelled.
  ASSERT_TRUE(queue.Cancel("s1", kT0 + 6));
  r.state = StudyState::Sending;
  r.instancesSent = 3;
  queue.Update(r, kT0 + 7);
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Cancelled);
  EXPECT_TRUE(queue.IsCancelled("s1"));
  EXPECT_EQ(queue.Get("s1")->instancesSent, 3u);

  // Removed meanwhile: not recreated.
  queue.Remove("s1");
  queue.Update(r, kT0 + 8);
  EXPECT_FALSE(queue.Get("s1").has_value());
}

TEST_F(UploadQueueTest, ListOrdersFiltersAndPages) {
  UploadQueue queue(DbPath());
  for (int i = 0; i < 5; ++i) {
    queue.Enqueue(Request("s" + std::to_string(i)), kT0 + i);
  }
  Claim(queue, "s0", kT0 + 10);
  queue.MarkSent("s0", "sig", kT0 + 11);  // s0 updated last

  auto all = queue.List(std::nullopt, 100, 0, 0);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].orthancId, "s0");
  EXPECT_EQ(all[1].orthancId, "s4");
  EXPECT_EQ(all[4].orthancId, "s1");

  auto sent = queue.List(StudyState::Sent, 100, 0, 0);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].orthancId, "s0");
  EXPECT_TRUE(queue.List(StudyState::Failed, 100, 0, 0).empty());
  EXPECT_EQ(queue.List(StudyState::Queued, 100, 0, 0).size(), 4u);

  auto page = queue.List(std::nullopt, 2, 1, 0);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].orthancId, "s4");
  EXPECT_EQ(page[1].orthancId, "s3");
  EXPECT_TRUE(queue.List(std::nullopt, 2, 10, 0).empty());

  auto recent = queue.List(std::nullopt, 100, 0, kT0 + 3);
  ASSERT_EQ(recent.size(), 3u);  // s3, s4 (updated at +3, +4) and s0 (+11)
  EXPECT_EQ(recent[2].orthancId, "s3");
  EXPECT_EQ(queue.List(StudyState::Queued, 100, 0, kT0 + 3).size(), 2u);
}

TEST_F(UploadQueueTest, ListLimitIsCappedAt1000) {
  UploadQueue queue(DbPath());
  // Insert 1005 rows in one go through a second connection (faster than 1005 transactions).
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
    std::string sql = "BEGIN;";
    for (int i = 0; i < 1005; ++i) {
      sql += "INSERT INTO studies(orthanc_id, state, updated_at) VALUES ('id" + std::to_string(i) +
             "', 'sent', " + std::to_string(i) + ");";
    }
    sql += "COMMIT;";
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  EXPECT_EQ(queue.List(std::nullopt, 5000, 0, 0).size(), 1000u);
  EXPECT_EQ(queue.List(std::nullopt, 0, 0, 0).size(), 1000u);  // 0 = as many as allowed
  EXPECT_EQ(queue.List(std::nullopt, 10, 1000, 0).size(), 5u);
  EXPECT_EQ(queue.Totals().byState[StudyState::Sent], 1005u);
}

TEST_F(UploadQueueTest, TotalsCountEveryStateAndUploads) {
  UploadQueue queue(DbPath());
  QueueTotals empty = queue.Totals();
  EXPECT_EQ(empty.byState.size(), 5u);
  for (const auto& [state, count] : empty.byState) {
    EXPECT_EQ(count, 0u) << ToString(state);
  }
  EXPECT_EQ(empty.studiesSent, 0u);
  EXPECT_DOUBLE_EQ(empty.lastSuccess, 0);

  for (const char* id : {"a", "b", "c", "d", "e", "f"}) {
    queue.Enqueue(Request(id), kT0);
  }
  Claim(queue, "a", kT0);
  queue.MarkSent("a", "sig", kT0 + 1);
  Claim(queue, "b", kT0);
  queue.MarkFailed("b", "x", kT0 + 1);
  Claim(queue, "c", kT0);
  queue.Cancel("d", kT0);
  queue.CountUpload(1000);
  queue.CountUpload(24);
  const QueueTotals totals = queue.Totals();
  EXPECT_EQ(totals.byState.at(StudyState::Sent), 1u);
  EXPECT_EQ(totals.byState.at(StudyState::Failed), 1u);
  EXPECT_EQ(totals.byState.at(StudyState::Sending), 1u);
  EXPECT_EQ(totals.byState.at(StudyState::Cancelled), 1u);
  EXPECT_EQ(totals.byState.at(StudyState::Queued), 2u);
  EXPECT_EQ(totals.studiesSent, 1u);
  EXPECT_EQ(totals.failures, 1u);
  EXPECT_EQ(totals.instancesSent, 2u);
  EXPECT_EQ(totals.bytesSent, 1024u);
  EXPECT_DOUBLE_EQ(totals.lastSuccess, kT0 + 1);
}

TEST_F(UploadQueueTest, ChangesCursorDefaultsToMinusOne) {
  UploadQueue queue(DbPath());
  EXPECT_EQ(queue.GetChangesCursor(), -1);
  queue.SetChangesCursor(0);
  EXPECT_EQ(queue.GetChangesCursor(), 0);
  queue.SetChangesCursor(9'000'000'000LL);
  EXPECT_EQ(queue.GetChangesCursor(), 9'000'000'000LL);
}

TEST_F(UploadQueueTest, HistoryKeepsTheLatest200InOrder) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  queue.Enqueue(Request("other"), kT0);
  for (unsigned i = 0; i < 250; ++i) {
    HistoryEntry entry;
    entry.time = kT0 + i;
    entry.attempt = i;
    entry.event = "upload";
    entry.detail = "n" + std::to_string(i);
    queue.AddHistory("s1", entry);
  }
  const auto history = queue.History("s1");
  ASSERT_EQ(history.size(), 200u);
  EXPECT_EQ(history.front().detail, "n50");
  EXPECT_EQ(history.back().detail, "n249");
  EXPECT_EQ(history.back().attempt, 249u);
  EXPECT_DOUBLE_EQ(history.back().time, kT0 + 249);
  const auto lastThree = queue.History("s1", 3);
  ASSERT_EQ(lastThree.size(), 3u);
  EXPECT_EQ(lastThree[0].detail, "n247");
  EXPECT_EQ(lastThree[2].detail, "n249");
  EXPECT_EQ(queue.History("other").size(), 1u);  // pruning is per study

  // Unknown study: nothing recorded, no exception.
  queue.AddHistory("ghost", HistoryEntry{kT0, 0, "x", ""});
  EXPECT_TRUE(queue.History("ghost").empty());
}

TEST_F(UploadQueueTest, RemoveDeletesTheStudyAndItsHistory) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  queue.Enqueue(Request("s2"), kT0);
  queue.Remove("s1");
  EXPECT_FALSE(queue.Get("s1").has_value());
  EXPECT_TRUE(queue.History("s1").empty());
  EXPECT_TRUE(queue.Get("s2").has_value());
  queue.Remove("never-there");
  // Re-enqueued after removal: a fresh record.
  const StudyRecord r = queue.Enqueue(Request("s1"), kT0 + 9);
  EXPECT_DOUBLE_EQ(r.createdAt, kT0 + 9);
  EXPECT_EQ(queue.History("s1").size(), 1u);
}

TEST_F(UploadQueueTest, EverythingSurvivesReopening) {
  {
    UploadQueue queue(DbPath());
    queue.Enqueue(Manual("s1", "alice", R"({"a":"1"})", "Zip"), kT0);
    StudyRecord r = Claim(queue, "s1", kT0 + 1);
    r.orderId = "order-1";
    r.studyInstanceUid = "1.2.3";
    r.bytesSent = 77;
    queue.Update(r, kT0 + 2);
    queue.CountUpload(77);
    queue.MarkSent("s1", "sig-1", kT0 + 3);
    queue.Enqueue(Request("s2"), kT0 + 4);
    Claim(queue, "s2", kT0 + 4);  // left Sending, as by a crash
    queue.SetChangesCursor(1234);
  }
  UploadQueue reopened(DbPath());
  const auto s1 = reopened.Get("s1");
  ASSERT_TRUE(s1.has_value());
  EXPECT_EQ(s1->state, StudyState::Sent);
  EXPECT_EQ(s1->orderId, "order-1");
  EXPECT_EQ(s1->studyInstanceUid, "1.2.3");
  EXPECT_EQ(s1->sentSignature, "sig-1");
  EXPECT_EQ(s1->requestedBy, "alice");
  EXPECT_EQ(s1->extraMetadata, R"({"a":"1"})");
  EXPECT_EQ(s1->mode, "Zip");
  EXPECT_EQ(s1->bytesSent, 77u);
  EXPECT_DOUBLE_EQ(s1->sentAt, kT0 + 3);
  EXPECT_EQ(Events(reopened, "s1"), (std::vector<std::string>{"queued", "started", "sent"}));
  const QueueTotals totals = reopened.Totals();
  EXPECT_EQ(totals.studiesSent, 1u);
  EXPECT_EQ(totals.instancesSent, 1u);
  EXPECT_EQ(totals.bytesSent, 77u);
  EXPECT_EQ(reopened.GetChangesCursor(), 1234);
  EXPECT_EQ(reopened.Get("s2")->state, StudyState::Sending);
  EXPECT_EQ(reopened.RecoverInterrupted(kT0 + 100), 1u);
  EXPECT_EQ(reopened.ClaimNext(kT0 + 100)->orthancId, "s2");
}

TEST_F(UploadQueueTest, UsesWalAndSchemaVersion2) {
  { UploadQueue queue(DbPath()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  auto single = [db](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    std::string value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return value;
  };
  EXPECT_EQ(single("PRAGMA journal_mode"), "wal");  // persistent in the file
  EXPECT_EQ(single("PRAGMA user_version"), "2");
  sqlite3_close(db);
}

TEST_F(UploadQueueTest, CommittedChangesSurviveKill9) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    UploadQueue queue(DbPath());
    queue.Enqueue(Request("s1"), kT0);
    queue.ClaimNext(kT0);
    queue.SetChangesCursor(55);
    raise(SIGKILL);  // no destructor, no checkpoint
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  UploadQueue queue(DbPath());
  const auto r = queue.Get("s1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->state, StudyState::Sending);
  EXPECT_EQ(queue.GetChangesCursor(), 55);
  EXPECT_EQ(queue.RecoverInterrupted(kT0 + 1), 1u);
}

TEST_F(UploadQueueTest, ConcurrentClaimsNeverHandOutAStudyTwice) {
  constexpr int kStudies = 200;
  UploadQueue queue(DbPath());
  UploadQueue secondConnection(DbPath());  // as if another process shared the file
  for (int i = 0; i < kStudies; ++i) {
    queue.Enqueue(Request("s" + std::to_string(i)), kT0);
  }
  std::mutex claimedMutex;
  std::vector<std::string> claimed;
  std::atomic<bool> failed{false};
  auto worker = [&](UploadQueue& q) {
    try {
      for (int guard = 0; guard < kStudies * 2; ++guard) {
        auto r = q.ClaimNext(kT0 + 1);
        if (!r) {
          return;
        }
        q.MarkSent(r->orthancId, "sig", kT0 + 2);
        std::lock_guard<std::mutex> lock(claimedMutex);
        claimed.push_back(r->orthancId);
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
      failed = true;
    }
  };
  std::thread a(worker, std::ref(queue));
  std::thread b(worker, std::ref(queue));
  std::thread c(worker, std::ref(secondConnection));
  a.join();
  b.join();
  c.join();
  ASSERT_FALSE(failed);
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kStudies));
  const std::set<std::string> unique(claimed.begin(), claimed.end());
  EXPECT_EQ(unique.size(), static_cast<size_t>(kStudies));
  EXPECT_EQ(queue.Totals().studiesSent, static_cast<uint64_t>(kStudies));
  EXPECT_EQ(queue.Totals().byState[StudyState::Sent], static_cast<unsigned>(kStudies));
}

TEST_F(UploadQueueTest, MissingDirectoryIsAClearError) {
  const std::string path = dir_.File("no-such-dir/queue.db");
  try {
    UploadQueue queue(path);
    FAIL() << "expected DatabaseError";
  } catch (const DatabaseError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("does not exist"), std::string::npos) << what;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.File("no-such-dir")));
}

TEST_F(UploadQueueTest, NotADatabaseIsAnError) {
  const std::string path = dir_.File("garbage.db");
  {
    std::ofstream out(path);
    for (int i = 0; i < 200; ++i) {
      out << "this is not an SQLite database, just text. ";
    }
  }
  try {
    UploadQueue queue(path);
    FAIL() << "expected DatabaseError";
  } catch (const DatabaseError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("not a database"), std::string::npos) << what;
    EXPECT_NE(what.find(path), std::string::npos) << what;
  }
  // A directory in place of the file.
  EXPECT_THROW(UploadQueue queue(dir_.File("")), DatabaseError);
}

TEST_F(UploadQueueTest, NewerSchemaIsRefused) {
  {
    UploadQueue queue(DbPath());
    queue.Enqueue(Request("s1"), kT0);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=3", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  try {
    UploadQueue queue(DbPath());
    FAIL() << "expected DatabaseError";
  } catch (const DatabaseError& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 3"), std::string::npos) << e.what();
  }
}

// Disk full, simulated with a file size limit in a child process (so the
// limit cannot affect the test runner): every write beyond it gets EFBIG.
TEST_F(UploadQueueTest, FullDiskSurfacesAsDatabaseError) {
  { UploadQueue create(DbPath()); }
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);
    UploadQueue queue(DbPath());
    // Room for a few more studies beyond what the files hold now.
    std::error_code ignored;
    const auto walSize = std::filesystem::file_size(DbPath() + "-wal", ignored);
    const auto dbSize = std::filesystem::file_size(DbPath());
    struct rlimit limit {};
    limit.rlim_cur = limit.rlim_max =
        std::max<uintmax_t>(dbSize, walSize == static_cast<uintmax_t>(-1) ? 0 : walSize) +
        64 * 1024;
    setrlimit(RLIMIT_FSIZE, &limit);
    const std::string big(4000, 'x');
    int code = 10;  // never failed
    for (int i = 0; i < 1000; ++i) {
      EnqueueRequest request = Request("s" + std::to_string(i));
      request.extraMetadata = big;
      try {
        queue.Enqueue(request, kT0 + i);
      } catch (const DatabaseError& e) {
        const std::string what = e.what();
        code = what.find("Enqueue") == std::string::npos ? 11 : i < 3 ? 14 : 0;
        break;
      }
    }
    // Still usable for reading after the failure.
    try {
      if (code == 0 && !queue.Get("s0").has_value()) {
        code = 12;
      }
    } catch (...) {
      code = 13;
    }
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "child crashed, signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // And the database is intact afterwards.
  UploadQueue queue(DbPath());
  EXPECT_TRUE(queue.Get("s0").has_value());
}

TEST_F(UploadQueueTest, VersionOneDatabaseIsMigrated) {
  {
    UploadQueue queue(DbPath());
    queue.Enqueue(Request("s1"), kT0);
  }
  // Make it a version-1 file: the columns version 2 added are not there.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  for (const char* column : {"sent_order_id", "sent_instances", "sent_bytes", "sent_attempts"}) {
    const std::string sql = std::string("ALTER TABLE studies DROP COLUMN ") + column;
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=1", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  UploadQueue queue(DbPath());
  ASSERT_TRUE(queue.Get("s1").has_value());
  auto claimed = queue.ClaimNext(kT0 + 1);
  ASSERT_TRUE(claimed.has_value());
  queue.MarkSent("s1", "sig", kT0 + 2);
  EXPECT_EQ(StudyState::Sent, queue.Get("s1")->state);
}

TEST_F(UploadQueueTest, UnknownStateInTheFileIsADatabaseErrorNamingTheStudy) {
  {
    UploadQueue queue(DbPath());
    queue.Enqueue(Request("s1"), kT0);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE studies SET state = 'lost'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  UploadQueue queue(DbPath());
  try {
    queue.Get("s1");
    FAIL() << "expected DatabaseError";
  } catch (const DatabaseError& e) {
    EXPECT_NE(std::string::npos, std::string(e.what()).find("unknown state 'lost' for study s1"))
        << e.what();
  }
}

TEST_F(UploadQueueTest, UnchangedOutcomeRestoresTheLastRealSend) {
  UploadQueue queue(DbPath());
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = *queue.ClaimNext(kT0);
  r.orderId = "order-1";
  r.instancesSent = 7;
  r.bytesSent = 700;
  queue.Update(r, kT0 + 1);
  queue.MarkSent("s1", "sig", kT0 + 2);
  // Stable again: queued, claimed, found unchanged.
  queue.Enqueue(Request("s1"), kT0 + 10);
  ASSERT_TRUE(queue.ClaimNext(kT0 + 10).has_value());
  queue.MarkSent("s1", "sig", kT0 + 11, false);
  const StudyRecord after = *queue.Get("s1");
  EXPECT_EQ(StudyState::Sent, after.state);
  EXPECT_EQ("order-1", after.orderId);
  EXPECT_EQ(7u, after.instancesSent);
  EXPECT_EQ(700u, after.bytesSent);
  EXPECT_EQ(1u, after.attempts);
  EXPECT_EQ(kT0 + 2, after.sentAt);
  EXPECT_EQ(1u, queue.Totals().studiesSent);
}

}  // namespace
}  // namespace CloudIngest
