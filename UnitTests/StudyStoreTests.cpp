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
#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <thread>

#include "Core/Store/CancelRegistry.h"
#include "Core/Store/PostgresStudyStore.h"
#include "Core/Store/SqliteStudyStore.h"
#include "Core/Store/StudyStore.h"

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
  // Unique among the tests running now, usable in an SQL identifier.
  std::string Token() const { return path_.substr(path_.rfind('-') + 1); }

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

std::vector<std::string> Events(StudyStore& queue, const std::string& id) {
  std::vector<std::string> events;
  for (const HistoryEntry& entry : queue.History(id)) {
    events.push_back(entry.event);
  }
  return events;
}

// Claims `id` (must be the only due study) and checks it.
StudyRecord Claim(StudyStore& queue, const std::string& id, double now) {
  auto claimed = queue.ClaimNext(now);
  EXPECT_TRUE(claimed.has_value());
  if (!claimed) {
    return {};
  }
  EXPECT_EQ(claimed->orthancId, id);
  return *claimed;
}

// Claims `id` as Claim does, and records the order the attempt created.
StudyRecord ClaimWithOrder(StudyStore& queue, const std::string& id, const std::string& orderId,
                           double now) {
  StudyRecord claimed = Claim(queue, id, now);
  claimed.orderId = orderId;
  queue.Update(claimed, now);
  return claimed;
}

StoreIdentity Node(const std::string& name, double leaseSeconds = 30) {
  StoreIdentity identity;
  identity.node = name;
  identity.leaseSeconds = leaseSeconds;
  return identity;
}

// One implementation of StudyStore under test. `open(dir, name, identity)`
// opens the store called `name` (kept in the test's own `dir` if it needs
// files) as the node `identity`; opening the same name again is a second
// connection to the same data (another node's, with another identity).
//
// Leases run on the store's lease clock: for SQLite (one node) the `now` of
// the calls, for PostgreSQL the server's clock, which a test cannot move.
// `leaseNow(now)` reads that clock; `ageLeases(dir, name, seconds)` makes
// `seconds` of lease time pass on the server's clock by moving the leases
// back instead (nothing for SQLite, whose tests pass a later `now`).
struct StoreFactory {
  std::string name;  // the test name's suffix
  std::function<std::unique_ptr<StudyStore>(const TempDir& dir, const std::string& name,
                                            const StoreIdentity& identity)>
      open;
  std::function<double(double now)> leaseNow;
  std::function<void(const TempDir& dir, const std::string& name, double seconds)> ageLeases;
};

void PrintTo(const StoreFactory& factory, std::ostream* out) {
  *out << factory.name;
}

const StoreFactory kSqlite{
    "Sqlite",
    [](const TempDir& dir, const std::string& name, const StoreIdentity& identity) {
      return std::make_unique<SqliteStudyStore>(dir.File(name + ".db"), identity);
    },
    [](double now) { return now; }, [](const TempDir&, const std::string&, double) {}};

// The PostgreSQL server the tests may use (Store.postgresql starts one).
const char* PostgresUri() {
  return std::getenv("CLOUD_INGEST_TEST_POSTGRES");
}

// Each test gets schemas of its own, named after its temporary folder.
std::string TestSchema(const TempDir& dir, const std::string& name) {
  return "test_" + dir.Token() + "_" + name;
}

PgResult PostgresSql(const std::string& sql) {
  PgSession session(PostgresUri(), "test");
  session.Connect();
  return session.Exec(sql, "test");
}

const StoreFactory kPostgres{
    "Postgres",
    [](const TempDir& dir, const std::string& name, const StoreIdentity& identity) {
      return std::make_unique<PostgresStudyStore>(PostgresUri(), TestSchema(dir, name), identity);
    },
    [](double) { return PostgresSql("SELECT extract(epoch from clock_timestamp())").Real(0, 0); },
    [](const TempDir& dir, const std::string& name, double seconds) {
      PostgresSql("UPDATE \"" + TestSchema(dir, name) +
                  "\".studies SET lease_expires_at = lease_expires_at - " + PgText(seconds) +
                  " WHERE state = 'sending'");
    }};

std::vector<StoreFactory> StoresUnderTest() {
  std::vector<StoreFactory> stores = {kSqlite};
  if (PostgresUri() != nullptr) stores.push_back(kPostgres);
  return stores;
}

// The behaviour every StudyStore implementation must have.
class StudyStoreTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  std::unique_ptr<StudyStore> Open(const std::string& name = "queue",
                                   const StoreIdentity& identity = {}) {
    return GetParam().open(dir_, name, identity);
  }
  // The test's store, opened on first use.
  StudyStore& Store() {
    if (!store_) store_ = Open();
    return *store_;
  }
  double LeaseNow(double now) const { return GetParam().leaseNow(now); }
  void AgeLeases(double seconds, const std::string& name = "queue") const {
    GetParam().ageLeases(dir_, name, seconds);
  }
  // `lease` runs `seconds` from a reading of the lease clock in [before, after].
  static void ExpectLease(double lease, double before, double after, double seconds) {
    EXPECT_GE(lease, before + seconds);
    EXPECT_LE(lease, after + seconds);
  }

  TempDir dir_;
  std::unique_ptr<StudyStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Stores, StudyStoreTest, ::testing::ValuesIn(StoresUnderTest()),
                         [](const ::testing::TestParamInfo<StoreFactory>& info) {
                           return info.param.name;
                         });

// What only the SQLite store has: its file, schema versions and recovery.
class SqliteStudyStoreTest : public ::testing::Test {
 protected:
  std::string DbPath() const { return dir_.File("queue.db"); }

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

TEST_P(StudyStoreTest, EnqueueNewStudyIsQueuedAndDueNow) {
  StudyStore& queue = Store();
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

TEST_P(StudyStoreTest, EnqueueRejectsEmptyId) {
  StudyStore& queue = Store();
  EXPECT_THROW(queue.Enqueue(Request(""), kT0), DatabaseError);
}

TEST_P(StudyStoreTest, ReEnqueueStartsANewCycleButKeepsSignature) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = Claim(queue, "s1", kT0 + 1);
  r.orderId = "order-1";
  r.studyInstanceUid = "1.2.3";
  r.instancesSent = 5;
  r.instancesTotal = 5;
  r.bytesSent = 5000;
  queue.Update(r, kT0 + 2);
  queue.MarkSent(r, "sig-A", kT0 + 3);

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

TEST_P(StudyStoreTest, ForcedEnqueueClearsSignatureAndIsManual) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  const StudyRecord claimed = Claim(queue, "s1", kT0);
  queue.MarkSent(claimed, "sig-A", kT0 + 1);
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

TEST_P(StudyStoreTest, ReEnqueueFromFailedCancelledAndQueued) {
  StudyStore& queue = Store();
  // Failed
  queue.Enqueue(Request("f"), kT0);
  const StudyRecord f = Claim(queue, "f", kT0);
  queue.MarkFailed(f, "HTTP 400: bad order", kT0 + 1);
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
  const auto otherStore = Open("other");
  StudyStore& other = *otherStore;
  other.Enqueue(Request("q"), kT0 + 100);
  StudyRecord claimed = Claim(other, "q", kT0 + 100);
  claimed.orderId = "order-q";
  other.Update(claimed, kT0 + 100);
  other.MarkRetry(claimed, "timeout", kT0 + 500, kT0 + 101);
  r = other.Enqueue(Request("q", "auto"), kT0 + 102);
  EXPECT_EQ(r.state, StudyState::Queued);
  EXPECT_DOUBLE_EQ(r.nextAttemptAt, kT0 + 102);
  EXPECT_EQ(r.attempts, 0u);
  EXPECT_EQ(r.orderId, "");
  EXPECT_EQ(r.lastError, "");
}

TEST_P(StudyStoreTest, AutomaticEnqueueDoesNotDowngradeAQueuedManualSend) {
  StudyStore& queue = Store();
  queue.Enqueue(Manual("s1", "alice", R"({"k":"v"})", "Zip"), kT0);
  const StudyRecord r = queue.Enqueue(Request("s1", "auto"), kT0 + 1);
  EXPECT_EQ(r.trigger, "manual");
  EXPECT_EQ(r.requestedBy, "alice");
  EXPECT_EQ(r.extraMetadata, R"({"k":"v"})");
  EXPECT_EQ(r.mode, "Zip");
  EXPECT_DOUBLE_EQ(r.nextAttemptAt, kT0 + 1);
  // Once sent, an automatic event is an automatic send again.
  const StudyRecord claimed = Claim(queue, "s1", kT0 + 2);
  queue.MarkSent(claimed, "sig", kT0 + 3);
  const StudyRecord later = queue.Enqueue(Request("s1", "auto"), kT0 + 4);
  EXPECT_EQ(later.trigger, "auto");
  EXPECT_EQ(later.requestedBy, "");
  EXPECT_EQ(later.extraMetadata, "");
  EXPECT_EQ(later.sentSignature, "sig");
}

TEST_P(StudyStoreTest, EnqueueWhileSendingOnlyFlagsAResend) {
  StudyStore& queue = Store();
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

TEST_P(StudyStoreTest, MarkSentWithResendRequestedRequeuesWithTheNewRequest) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = Claim(queue, "s1", kT0);
  r.orderId = "order-1";
  r.instancesSent = 3;
  r.bytesSent = 300;
  queue.Update(r, kT0 + 1);
  queue.Enqueue(Manual("s1", "carol", R"({"x":"1"})", "Zip"), kT0 + 2);
  queue.Enqueue(Request("s1", "auto"), kT0 + 3);  // must not override carol's forced request
  queue.MarkSent(r, "sig-1", kT0 + 4);

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

TEST_P(StudyStoreTest, MarkSentWithAnAutomaticResendKeepsTheSignature) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  const StudyRecord r = Claim(queue, "s1", kT0);
  queue.Enqueue(Request("s1", "auto"), kT0 + 1);
  queue.MarkSent(r, "sig-1", kT0 + 2);
  const auto after = queue.Get("s1");
  EXPECT_EQ(after->state, StudyState::Queued);
  EXPECT_EQ(after->sentSignature, "sig-1");
  EXPECT_EQ(after->trigger, "auto");
}

TEST_P(StudyStoreTest, ClaimNextTakesTheOldestDueStudy) {
  StudyStore& queue = Store();
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

TEST_P(StudyStoreTest, ClaimNextPrefersEarlierCreatedOnEqualDueTime) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("zzz"), kT0);
  queue.Enqueue(Request("aaa"), kT0 + 1);
  // Both retried to the same time: the one created first wins despite its id.
  const StudyRecord zzz = Claim(queue, "zzz", kT0 + 1);
  queue.MarkRetry(zzz, "e", kT0 + 100, kT0 + 1);
  const StudyRecord aaa = Claim(queue, "aaa", kT0 + 1);
  queue.MarkRetry(aaa, "e", kT0 + 100, kT0 + 1);
  EXPECT_EQ(queue.ClaimNext(kT0 + 100)->orthancId, "zzz");
}

TEST_P(StudyStoreTest, MarkSentRecordsTotalsAndSignature) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = Claim(queue, "s1", kT0);
  queue.MarkRetry(r, "503", kT0 + 1, kT0);
  r = Claim(queue, "s1", kT0 + 1);
  EXPECT_EQ(r.lastError, "503");
  EXPECT_EQ(r.attempts, 2u);
  queue.MarkSent(r, "sig", kT0 + 2);
  const auto sent = queue.Get("s1");
  EXPECT_EQ(sent->state, StudyState::Sent);
  EXPECT_FALSE(sent->respectWindows);  // version 4's column, added with its default
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

TEST_P(StudyStoreTest, MarkRetryRequeuesLaterWithTheError) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = ClaimWithOrder(queue, "s1", "order-1", kT0);
  queue.MarkRetry(r, "HTTP 503 from new-order", kT0 + 30, kT0 + 1);
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

TEST_P(StudyStoreTest, MarkRetryClearsResendRequestAndAppliesItsRequest) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = Claim(queue, "s1", kT0);
  queue.Enqueue(Manual("s1", "dave"), kT0 + 1);
  queue.MarkRetry(r, "timeout", kT0 + 60, kT0 + 2);
  const auto after = queue.Get("s1");
  EXPECT_EQ(after->state, StudyState::Queued);
  EXPECT_FALSE(after->resendRequested);
  EXPECT_DOUBLE_EQ(after->nextAttemptAt, kT0 + 60);
  EXPECT_EQ(after->requestedBy, "dave");
  EXPECT_EQ(after->trigger, "manual");
  // Sent later: no second re-queue, the pending request was consumed.
  r = Claim(queue, "s1", kT0 + 60);
  queue.MarkSent(r, "sig", kT0 + 61);
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Sent);
}

TEST_P(StudyStoreTest, MarkFailedKeepsTheErrorAndCounts) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  const StudyRecord r = Claim(queue, "s1", kT0);
  queue.MarkFailed(r, "HTTP 400: invalid StudyInstanceUID", kT0 + 1);
  const auto after = queue.Get("s1");
  EXPECT_EQ(after->state, StudyState::Failed);
  EXPECT_EQ(after->lastError, "HTTP 400: invalid StudyInstanceUID");
  EXPECT_EQ(queue.Totals().failures, 1u);
  EXPECT_EQ(queue.Totals().studiesSent, 0u);
  EXPECT_EQ(queue.History("s1").back().event, "failed");
  EXPECT_FALSE(queue.ClaimNext(kT0 + 1000).has_value());
}

TEST_P(StudyStoreTest, MarkFailedWithResendRequestedRequeues) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = ClaimWithOrder(queue, "s1", "order-1", kT0);
  queue.Enqueue(Request("s1", "auto"), kT0 + 1);
  queue.MarkFailed(r, "boom", kT0 + 2);
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

TEST_P(StudyStoreTest, CancelQueuedOrSendingOnly) {
  StudyStore& queue = Store();
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
  const StudyRecord done = Claim(queue, "done", kT0);
  queue.MarkSent(done, "sig", kT0 + 1);
  EXPECT_FALSE(queue.Cancel("done", kT0 + 2));
  EXPECT_EQ(queue.Get("done")->state, StudyState::Sent);
}

TEST_P(StudyStoreTest, CancelDropsAPendingResendAndLateResultsDoNotRequeue) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  const StudyRecord r = Claim(queue, "s1", kT0);
  queue.Enqueue(Request("s1"), kT0 + 1);  // resend requested
  ASSERT_TRUE(queue.Cancel("s1", kT0 + 2));
  EXPECT_FALSE(queue.Get("s1")->resendRequested);
  // The sender notices late and reports a retryable error: still cancelled.
  queue.MarkRetry(r, "connection reset", kT0 + 10, kT0 + 3);
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Cancelled);
  EXPECT_EQ(queue.Get("s1")->lastError, "connection reset");
  queue.MarkFailed(r, "gave up", kT0 + 4);
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Cancelled);
  EXPECT_FALSE(queue.ClaimNext(kT0 + 100).has_value());
}

TEST_P(StudyStoreTest, SentAfterALateCancelIsRecordedAsSent) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  const StudyRecord r = Claim(queue, "s1", kT0);
  ASSERT_TRUE(queue.Cancel("s1", kT0 + 1));
  queue.MarkSent(r, "sig", kT0 + 2);  // the last upload had already gone
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Sent);
  EXPECT_EQ(queue.Get("s1")->sentSignature, "sig");
}

TEST_P(StudyStoreTest, MarkOnAStudyNotBeingSentDoesNotMoveIt) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);  // queued, never claimed
  const StudyRecord queued = *queue.Get("s1");
  queue.MarkSent(queued, "sig", kT0 + 1);
  queue.MarkFailed(queued, "x", kT0 + 1);
  queue.MarkRetry(queued, "y", kT0 + 99, kT0 + 1);
  const auto r = queue.Get("s1");
  EXPECT_EQ(r->state, StudyState::Queued);
  EXPECT_DOUBLE_EQ(r->nextAttemptAt, kT0);
  EXPECT_EQ(r->sentSignature, "");
  // Unknown studies: no row appears, no exception.
  StudyRecord ghost;
  ghost.orthancId = "ghost";
  queue.MarkSent(ghost, "sig", kT0);
  queue.MarkFailed(ghost, "x", kT0);
  EXPECT_FALSE(queue.Get("ghost").has_value());
}

TEST_P(StudyStoreTest, RecoverInterruptedRequeuesSendingStudies) {
  StudyStore& queue = Store();
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

TEST_P(StudyStoreTest, UpdateWritesProgressButNeverTheState) {
  StudyStore& queue = Store();
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

TEST_P(StudyStoreTest, ListOrdersFiltersAndPages) {
  StudyStore& queue = Store();
  for (int i = 0; i < 5; ++i) {
    queue.Enqueue(Request("s" + std::to_string(i)), kT0 + i);
  }
  const StudyRecord s0 = Claim(queue, "s0", kT0 + 10);
  queue.MarkSent(s0, "sig", kT0 + 11);  // s0 updated last

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

TEST_F(SqliteStudyStoreTest, ListLimitIsCappedAt1000) {
  SqliteStudyStore queue(DbPath());
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

TEST_P(StudyStoreTest, TotalsCountEveryStateAndUploads) {
  StudyStore& queue = Store();
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
  const StudyRecord a = Claim(queue, "a", kT0);
  queue.MarkSent(a, "sig", kT0 + 1);
  const StudyRecord b = Claim(queue, "b", kT0);
  queue.MarkFailed(b, "x", kT0 + 1);
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

TEST_P(StudyStoreTest, ChangesCursorDefaultsToMinusOne) {
  StudyStore& queue = Store();
  EXPECT_EQ(queue.GetChangesCursor(), -1);
  queue.SetChangesCursor(0);
  EXPECT_EQ(queue.GetChangesCursor(), 0);
  queue.SetChangesCursor(9'000'000'000LL);
  EXPECT_EQ(queue.GetChangesCursor(), 9'000'000'000LL);
}

// POST /queue/pause must hold across a restart of Orthanc.
TEST_P(StudyStoreTest, QueueModeIsRunningUntilPausedAndSurvivesReopening) {
  {
    const auto queueStore = Open();
    EXPECT_EQ(queueStore->GetQueueMode(), QueueMode::Running);
    queueStore->SetQueueMode(QueueMode::Paused);
    EXPECT_EQ(queueStore->GetQueueMode(), QueueMode::Paused);
    queueStore->SetChangesCursor(7);  // another setting leaves it alone
    EXPECT_EQ(queueStore->GetQueueMode(), QueueMode::Paused);
  }
  const auto reopened = Open();
  EXPECT_EQ(reopened->GetQueueMode(), QueueMode::Paused);
  reopened->SetQueueMode(QueueMode::Running);
  EXPECT_EQ(reopened->GetQueueMode(), QueueMode::Running);
  EXPECT_EQ(reopened->GetChangesCursor(), 7);
}

TEST_P(StudyStoreTest, HistoryKeepsTheLatest200InOrder) {
  StudyStore& queue = Store();
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

TEST_P(StudyStoreTest, RemoveDeletesTheStudyAndItsHistory) {
  StudyStore& queue = Store();
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

TEST_P(StudyStoreTest, EverythingSurvivesReopening) {
  {
    const auto queueStore = Open();
    StudyStore& queue = *queueStore;
    queue.Enqueue(Manual("s1", "alice", R"({"a":"1"})", "Zip"), kT0);
    StudyRecord r = Claim(queue, "s1", kT0 + 1);
    r.orderId = "order-1";
    r.studyInstanceUid = "1.2.3";
    r.bytesSent = 77;
    queue.Update(r, kT0 + 2);
    queue.CountUpload(77);
    queue.MarkSent(r, "sig-1", kT0 + 3);
    queue.Enqueue(Request("s2"), kT0 + 4);
    Claim(queue, "s2", kT0 + 4);  // left Sending, as by a crash
    queue.SetChangesCursor(1234);
  }
  const auto reopenedStore = Open();
  StudyStore& reopened = *reopenedStore;
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

TEST_F(SqliteStudyStoreTest, UsesWalAndSchemaVersion5) {
  { SqliteStudyStore queue(DbPath()); }
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
  EXPECT_EQ(single("PRAGMA user_version"), "5");
  sqlite3_close(db);
}

TEST_F(SqliteStudyStoreTest, CommittedChangesSurviveKill9) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    SqliteStudyStore queue(DbPath());
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
  SqliteStudyStore queue(DbPath());
  const auto r = queue.Get("s1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->state, StudyState::Sending);
  EXPECT_EQ(queue.GetChangesCursor(), 55);
  EXPECT_EQ(queue.RecoverInterrupted(kT0 + 1), 1u);
}

TEST_P(StudyStoreTest, ConcurrentClaimsNeverHandOutAStudyTwice) {
  constexpr int kStudies = 200;
  StudyStore& queue = Store();
  // As another node sharing the database would.
  const auto secondConnectionStore = Open("queue", Node("node-b"));
  StudyStore& secondConnection = *secondConnectionStore;
  for (int i = 0; i < kStudies; ++i) {
    queue.Enqueue(Request("s" + std::to_string(i)), kT0);
  }
  std::mutex claimedMutex;
  std::vector<std::string> claimed;
  std::atomic<bool> failed{false};
  auto worker = [&](StudyStore& q) {
    try {
      for (int guard = 0; guard < kStudies * 2; ++guard) {
        auto r = q.ClaimNext(kT0 + 1);
        if (!r) {
          return;
        }
        q.MarkSent(*r, "sig", kT0 + 2);
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

TEST_F(SqliteStudyStoreTest, MissingDirectoryIsAClearError) {
  const std::string path = dir_.File("no-such-dir/queue.db");
  try {
    SqliteStudyStore queue(path);
    FAIL() << "expected DatabaseError";
  } catch (const DatabaseError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("does not exist"), std::string::npos) << what;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.File("no-such-dir")));
}

TEST_F(SqliteStudyStoreTest, NotADatabaseIsAnError) {
  const std::string path = dir_.File("garbage.db");
  {
    std::ofstream out(path);
    for (int i = 0; i < 200; ++i) {
      out << "this is not an SQLite database, just text. ";
    }
  }
  try {
    SqliteStudyStore queue(path);
    FAIL() << "expected DatabaseError";
  } catch (const DatabaseError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("not a database"), std::string::npos) << what;
    EXPECT_NE(what.find(path), std::string::npos) << what;
  }
  // A directory in place of the file.
  EXPECT_THROW(SqliteStudyStore queue(dir_.File("")), DatabaseError);
}

TEST_F(SqliteStudyStoreTest, NewerSchemaIsRefused) {
  {
    SqliteStudyStore queue(DbPath());
    queue.Enqueue(Request("s1"), kT0);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=6", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  try {
    SqliteStudyStore queue(DbPath());
    FAIL() << "expected DatabaseError";
  } catch (const DatabaseError& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 6"), std::string::npos) << e.what();
  }
}

// Disk full, simulated with a file size limit in a child process (so the
// limit cannot affect the test runner): every write beyond it gets EFBIG.
TEST_F(SqliteStudyStoreTest, FullDiskSurfacesAsDatabaseError) {
  { SqliteStudyStore create(DbPath()); }
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);
    SqliteStudyStore queue(DbPath());
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
  SqliteStudyStore queue(DbPath());
  EXPECT_TRUE(queue.Get("s0").has_value());
}

TEST_F(SqliteStudyStoreTest, VersionOneDatabaseIsMigrated) {
  {
    SqliteStudyStore queue(DbPath());
    queue.Enqueue(Request("s1"), kT0);
  }
  // Make it a version-1 file: the columns versions 2 to 5 added are not there.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  for (const char* column :
       {"sent_order_id", "sent_instances", "sent_bytes", "sent_attempts", "claim", "node",
        "lease_expires_at", "respect_windows", "pending_respect_windows"}) {
    const std::string sql = std::string("ALTER TABLE studies DROP COLUMN ") + column;
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=1", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  SqliteStudyStore opened(DbPath());
  StudyStore& queue = opened;  // the interface's default arguments
  ASSERT_TRUE(queue.Get("s1").has_value());
  auto claimed = queue.ClaimNext(kT0 + 1);
  ASSERT_TRUE(claimed.has_value());
  queue.MarkSent(*claimed, "sig", kT0 + 2);
  EXPECT_EQ(StudyState::Sent, queue.Get("s1")->state);
}

TEST_F(SqliteStudyStoreTest, UnknownStateInTheFileIsADatabaseErrorNamingTheStudy) {
  {
    SqliteStudyStore queue(DbPath());
    queue.Enqueue(Request("s1"), kT0);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE studies SET state = 'lost'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  SqliteStudyStore queue(DbPath());
  try {
    queue.Get("s1");
    FAIL() << "expected DatabaseError";
  } catch (const DatabaseError& e) {
    EXPECT_NE(std::string::npos, std::string(e.what()).find("unknown state 'lost' for study s1"))
        << e.what();
  }
}

TEST_P(StudyStoreTest, UnchangedOutcomeRestoresTheLastRealSend) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = *queue.ClaimNext(kT0);
  r.orderId = "order-1";
  r.instancesSent = 7;
  r.bytesSent = 700;
  queue.Update(r, kT0 + 1);
  queue.MarkSent(r, "sig", kT0 + 2);
  // Stable again: queued, claimed, found unchanged.
  queue.Enqueue(Request("s1"), kT0 + 10);
  const auto again = queue.ClaimNext(kT0 + 10);
  ASSERT_TRUE(again.has_value());
  queue.MarkSent(*again, "sig", kT0 + 11, false);
  const StudyRecord after = *queue.Get("s1");
  EXPECT_EQ(StudyState::Sent, after.state);
  EXPECT_EQ("order-1", after.orderId);
  EXPECT_EQ(7u, after.instancesSent);
  EXPECT_EQ(700u, after.bytesSent);
  EXPECT_EQ(1u, after.attempts);
  EXPECT_EQ(kT0 + 2, after.sentAt);
  EXPECT_EQ(1u, queue.Totals().studiesSent);
}

// Every write an attempt holding `attempt` can make, as a late one would.
void WriteEverythingAs(StudyStore& queue, const StudyRecord& attempt, double now) {
  queue.Update(attempt, now);
  queue.MarkRetry(attempt, "late error", kT0 + 100, now);
  queue.MarkFailed(attempt, "late failure", now);
  queue.MarkSent(attempt, "sig-old", now);
  queue.AddHistory(attempt, HistoryEntry{now, 1, "unchanged", "old attempt"});
  queue.Remove(attempt);
}

// A cancel, then a resend: the first attempt may still be running when the
// second one claims the study. Nothing the first one writes may reach the row.
TEST_P(StudyStoreTest, WritesOfAStaleClaimAreNoOps) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord first = Claim(queue, "s1", kT0);
  EXPECT_EQ(first.claim, 1u);
  first.orderId = "order-1";
  first.instancesSent = 2;
  queue.Update(first, kT0 + 1);
  const CancelOutcome cancel = queue.Cancel("s1", kT0 + 2);
  EXPECT_TRUE(cancel.cancelled);
  EXPECT_TRUE(cancel.wasSending);
  EXPECT_EQ(cancel.claim, first.claim);
  queue.Enqueue(Manual("s1", "alice"), kT0 + 3);  // the resend

  // Queued again: the old attempt's writes neither start nor end anything.
  const size_t historyQueued = queue.History("s1").size();
  first.instancesSent = 3;
  WriteEverythingAs(queue, first, kT0 + 4);
  auto row = queue.Get("s1");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->state, StudyState::Queued);
  EXPECT_EQ(row->orderId, "");
  EXPECT_EQ(row->instancesSent, 0u);
  EXPECT_EQ(row->lastError, "");
  EXPECT_EQ(row->sentSignature, "");
  EXPECT_DOUBLE_EQ(row->nextAttemptAt, kT0 + 3);
  EXPECT_EQ(queue.History("s1").size(), historyQueued);

  // Claimed again: a new generation, which the old attempt cannot touch either.
  StudyRecord second = Claim(queue, "s1", kT0 + 5);
  EXPECT_EQ(second.claim, first.claim + 1);
  EXPECT_EQ(second.attempts, 1u);
  second.orderId = "order-2";
  queue.Update(second, kT0 + 6);
  const size_t historySending = queue.History("s1").size();
  WriteEverythingAs(queue, first, kT0 + 7);
  row = queue.Get("s1");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->state, StudyState::Sending);
  EXPECT_EQ(row->orderId, "order-2");
  EXPECT_EQ(row->instancesSent, 0u);
  EXPECT_EQ(row->claim, second.claim);
  EXPECT_EQ(queue.History("s1").size(), historySending);

  // The current claim's writes still work.
  second.instancesSent = 4;
  queue.Update(second, kT0 + 8);
  queue.AddHistory(second, HistoryEntry{kT0 + 8, 1, "note", "current attempt"});
  queue.MarkSent(second, "sig-new", kT0 + 9);
  row = queue.Get("s1");
  EXPECT_EQ(row->state, StudyState::Sent);
  EXPECT_EQ(row->orderId, "order-2");
  EXPECT_EQ(row->instancesSent, 4u);
  EXPECT_EQ(row->sentSignature, "sig-new");
  EXPECT_EQ(queue.History("s1").size(), historySending + 2);  // note, sent
  // Once sent, the claim is over too: a late write of it changes nothing.
  queue.MarkFailed(second, "too late", kT0 + 10);
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Sent);
}

TEST_P(StudyStoreTest, ClaimGenerationGrowsWithEveryClaimAndSurvivesReopening) {
  {
    const auto queueStore = Open();
    StudyStore& queue = *queueStore;
    queue.Enqueue(Request("s1"), kT0);
    EXPECT_EQ(queue.Get("s1")->claim, 0u);
    const StudyRecord one = Claim(queue, "s1", kT0);
    queue.MarkRetry(one, "503", kT0, kT0);
    EXPECT_EQ(Claim(queue, "s1", kT0 + 1).claim, 2u);
    EXPECT_EQ(queue.Get("s1")->claim, 2u);
  }
  const auto reopenedStore = Open();
  StudyStore& reopened = *reopenedStore;
  EXPECT_EQ(reopened.RecoverInterrupted(kT0 + 2), 1u);
  EXPECT_EQ(Claim(reopened, "s1", kT0 + 2).claim, 3u);
}

TEST_P(StudyStoreTest, CancelRegistryCancelsOnlyTheRunningClaim) {
  StudyStore& queue = Store();
  CancelRegistry cancels(queue);
  queue.Enqueue(Request("s1"), kT0);
  queue.Enqueue(Request("q"), kT0 + 50);  // not due before the end
  const StudyRecord first = Claim(queue, "s1", kT0 + 1);
  EXPECT_FALSE(cancels.IsCancelled("s1", first.claim));
  EXPECT_TRUE(cancels.Cancel("s1", kT0 + 2));
  EXPECT_EQ(queue.Get("s1")->state, StudyState::Cancelled);  // durable
  EXPECT_TRUE(cancels.IsCancelled("s1", first.claim));
  EXPECT_FALSE(cancels.Cancel("s1", kT0 + 2));  // already cancelled

  // Resent and claimed again: the new claim runs, the old one stays cancelled.
  queue.Enqueue(Manual("s1", "bob"), kT0 + 3);
  const StudyRecord second = Claim(queue, "s1", kT0 + 3);
  EXPECT_FALSE(cancels.IsCancelled("s1", second.claim));
  EXPECT_TRUE(cancels.IsCancelled("s1", first.claim));
  cancels.Forget("s1", first.claim);  // the old attempt ended
  EXPECT_FALSE(cancels.IsCancelled("s1", first.claim));
  EXPECT_TRUE(cancels.Cancel("s1", kT0 + 4));
  EXPECT_TRUE(cancels.IsCancelled("s1", second.claim));

  // A queued study has no running attempt: cancelled in the database only.
  const uint64_t queuedClaim = queue.Get("q")->claim;
  EXPECT_TRUE(cancels.Cancel("q", kT0 + 5));
  EXPECT_EQ(queue.Get("q")->state, StudyState::Cancelled);
  EXPECT_FALSE(cancels.IsCancelled("q", queuedClaim));
  EXPECT_FALSE(cancels.Cancel("nope", kT0 + 5));
}

TEST_F(SqliteStudyStoreTest, VersionTwoDatabaseIsMigratedKeepingItsRows) {
  {
    SqliteStudyStore opened(DbPath());
    StudyStore& queue = opened;  // the interface's default arguments
    queue.Enqueue(Request("sent"), kT0);
    StudyRecord r = Claim(queue, "sent", kT0);
    r.orderId = "order-1";
    queue.Update(r, kT0 + 1);
    queue.MarkSent(r, "sig", kT0 + 2);
    queue.Enqueue(Manual("queued", "carol"), kT0 + 3);
    queue.SetChangesCursor(77);
  }
  // Make it a version-2 file: without the claim column, the lease columns, the nodes and version
  // 5's.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db,
                   "ALTER TABLE studies DROP COLUMN claim; ALTER TABLE studies DROP COLUMN "
                   "node; ALTER TABLE studies DROP COLUMN lease_expires_at; DROP TABLE nodes; "
                   "ALTER TABLE studies DROP COLUMN respect_windows; ALTER TABLE studies "
                   "DROP COLUMN pending_respect_windows",
                   nullptr, nullptr, nullptr),
      SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  SqliteStudyStore opened(DbPath());
  StudyStore& queue = opened;  // the interface's default arguments
  const auto sent = queue.Get("sent");
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->state, StudyState::Sent);
  EXPECT_EQ(sent->orderId, "order-1");
  EXPECT_EQ(sent->sentSignature, "sig");
  EXPECT_EQ(sent->claim, 0u);
  EXPECT_EQ(queue.Get("queued")->requestedBy, "carol");
  EXPECT_EQ(queue.GetChangesCursor(), 77);
  EXPECT_EQ(queue.History("sent").size(), 3u);  // queued, started, sent
  const StudyRecord claimed = Claim(queue, "queued", kT0 + 4);
  EXPECT_EQ(claimed.claim, 1u);
  queue.MarkSent(claimed, "sig-q", kT0 + 5);
  EXPECT_EQ(queue.Get("queued")->state, StudyState::Sent);
  {
    SqliteStudyStore again(DbPath());  // opening a migrated file migrates nothing again
    EXPECT_EQ(again.Get("queued")->claim, 1u);
  }
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 5);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(SqliteStudyStoreTest, VersionThreeDatabaseGetsLeasesAndItsSendingStudyIsRecovered) {
  {
    SqliteStudyStore queue(DbPath(), Node("old"));
    queue.Enqueue(Request("s1"), kT0);
    Claim(queue, "s1", kT0 + 1);  // left Sending by a version without leases
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db,
                   "ALTER TABLE studies DROP COLUMN node; ALTER TABLE studies DROP COLUMN "
                   "lease_expires_at; DROP TABLE nodes; ALTER TABLE studies DROP COLUMN "
                   "respect_windows; ALTER TABLE studies DROP COLUMN pending_respect_windows; "
                   "PRAGMA user_version=3",
                   nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);

  SqliteStudyStore queue(DbPath(), Node("node-a"));
  const auto s1 = queue.Get("s1");
  ASSERT_TRUE(s1.has_value());
  EXPECT_EQ(s1->state, StudyState::Sending);
  EXPECT_EQ(s1->node, "");  // nobody's: the node that starts recovers it
  EXPECT_EQ(queue.RecoverInterrupted(kT0 + 2), 1u);
  const StudyRecord again = Claim(queue, "s1", kT0 + 3);
  EXPECT_EQ(again.node, "node-a");
  EXPECT_EQ(again.attempts, 2u);
  EXPECT_EQ(queue.RenewLeases(kT0 + 4, {{"s1", again.claim}}).size(), 1u);
  EXPECT_EQ(queue.Nodes(0).size(), 1u);
}

TEST_F(SqliteStudyStoreTest, VersionFourDatabaseGetsTheReceiptsTable) {
  {
    SqliteStudyStore queue(DbPath());
    queue.Enqueue(Request("s1"), kT0);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db,
                   "DROP TABLE receipts; ALTER TABLE studies DROP COLUMN respect_windows; ALTER "
                   "TABLE studies DROP COLUMN pending_respect_windows; PRAGMA user_version=4",
                   nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  SqliteStudyStore migrated(DbPath());
  migrated.SaveReceipt("s1", "{}");
  EXPECT_EQ("{}", migrated.GetReceipt("s1").value_or(""));
  EXPECT_TRUE(migrated.Get("s1").has_value());
}

// ---- a corrupt database at start-up

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST_F(SqliteStudyStoreTest, AGarbageFileIsMovedAsideAndAnEmptyQueueTakesItsPlace) {
  std::string garbage;
  for (int i = 0; i < 300; ++i) garbage += "not an SQLite database; ";
  WriteAll(DbPath(), garbage);
  WriteAll(DbPath() + "-wal", "garbage wal");
  WriteAll(DbPath() + "-shm", "garbage shm");
  EXPECT_THROW(SqliteStudyStore plain(DbPath()), CorruptDatabaseError);

  constexpr double kAt = 1'704'164'645.0;  // 2024-01-02T03:04:05Z
  std::optional<DatabaseRecovery> recovery;
  auto queue = SqliteStudyStore::OpenOrRecover(DbPath(), {}, kAt, recovery);
  ASSERT_TRUE(queue);
  ASSERT_TRUE(recovery.has_value());
  const std::string moved = DbPath() + ".corrupt-20240102T030405Z";
  EXPECT_EQ(recovery->movedTo, moved);
  EXPECT_DOUBLE_EQ(recovery->at, kAt);
  EXPECT_NE(recovery->reason.find("not a database"), std::string::npos) << recovery->reason;
  EXPECT_EQ(ReadAll(moved), garbage);
  // SQLite removes side files it cannot use when it closes the file; any it
  // leaves go with it, so none is replayed into the new database.
  EXPECT_NE(ReadAll(DbPath() + "-wal"), "garbage wal");
  EXPECT_NE(ReadAll(DbPath() + "-shm"), "garbage shm");

  // Empty and usable.
  EXPECT_EQ(queue->Totals().byState[StudyState::Queued], 0u);
  EXPECT_EQ(queue->GetChangesCursor(), -1);
  queue->Enqueue(Request("s1"), kAt);
  const StudyRecord r = Claim(*queue, "s1", kAt);
  queue->MarkSent(r, "sig", kAt + 1);
  EXPECT_EQ(queue->Get("s1")->state, StudyState::Sent);
  queue.reset();

  // A healthy database is opened as it is, and a second recovery in the same
  // second does not overwrite the first moved file.
  std::optional<DatabaseRecovery> none;
  ASSERT_TRUE(SqliteStudyStore::OpenOrRecover(DbPath(), {}, kAt, none)->Get("s1").has_value());
  EXPECT_FALSE(none.has_value());
  WriteAll(DbPath(), garbage);
  std::filesystem::remove(DbPath() + "-wal");
  std::filesystem::remove(DbPath() + "-shm");
  std::optional<DatabaseRecovery> again;
  SqliteStudyStore::OpenOrRecover(DbPath(), {}, kAt, again);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->movedTo, moved + "-2");
  EXPECT_EQ(ReadAll(moved), garbage);
}

TEST_F(SqliteStudyStoreTest, ATruncatedDatabaseIsMovedAside) {
  {
    SqliteStudyStore queue(DbPath());
    for (int i = 0; i < 400; ++i) {
      EnqueueRequest request = Request("study-" + std::to_string(i));
      request.extraMetadata = std::string(300, 'x');
      queue.Enqueue(request, kT0 + i);
    }
  }  // closing checkpoints the WAL into the file
  ASSERT_FALSE(std::filesystem::exists(DbPath() + "-wal"));
  const auto size = std::filesystem::file_size(DbPath());
  ASSERT_GT(size, 64u * 1024u);
  std::filesystem::resize_file(DbPath(), size / 2);

  std::optional<DatabaseRecovery> recovery;
  auto queue = SqliteStudyStore::OpenOrRecover(DbPath(), {}, kT0, recovery);
  ASSERT_TRUE(recovery.has_value());
  EXPECT_EQ(std::filesystem::file_size(recovery->movedTo), size / 2);
  EXPECT_EQ(recovery->reason.find('\n'), std::string::npos);  // one log line
  EXPECT_FALSE(queue->Get("study-0").has_value());
  queue->Enqueue(Request("s1"), kT0);
  EXPECT_EQ(queue->Totals().byState[StudyState::Queued], 1u);
}

TEST_F(SqliteStudyStoreTest, AFileThatCannotBeOpenedIsNotMovedAside) {
  std::optional<DatabaseRecovery> recovery;
  // A directory in place of the file.
  const std::string folder = dir_.File("a-folder");
  std::filesystem::create_directory(folder);
  EXPECT_THROW(SqliteStudyStore::OpenOrRecover(folder, {}, kT0, recovery), DatabaseError);
  try {
    SqliteStudyStore::OpenOrRecover(folder, {}, kT0, recovery);
  } catch (const CorruptDatabaseError& e) {
    ADD_FAILURE() << "judged corrupt: " << e.what();
  } catch (const DatabaseError&) {
  }
  // A missing folder.
  EXPECT_THROW(SqliteStudyStore::OpenOrRecover(dir_.File("missing/queue.db"), {}, kT0, recovery),
               DatabaseError);
  // A newer schema is not damage either.
  { SqliteStudyStore create(DbPath()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_THROW(SqliteStudyStore::OpenOrRecover(DbPath(), {}, kT0, recovery), DatabaseError);
  EXPECT_FALSE(recovery.has_value());
  EXPECT_EQ(FilesIn(dir_.File("")), (std::vector<std::string>{"a-folder", "queue.db"}));
}

// ---- several nodes on one store: leases, takeover, nodes, the scan lock

TEST_P(StudyStoreTest, ClaimNextGivesTheStudyALeaseThatEndsWithTheSend) {
  const auto store = Open("queue", Node("node-a", 20));
  StudyStore& queue = *store;
  queue.Enqueue(Request("s1"), kT0);
  const double before = LeaseNow(kT0 + 1);
  const StudyRecord claimed = Claim(queue, "s1", kT0 + 1);
  ExpectLease(claimed.leaseExpiresAt, before, LeaseNow(kT0 + 1), 20);
  EXPECT_EQ(claimed.node, "node-a");
  EXPECT_EQ(queue.Get("s1")->node, "node-a");
  queue.MarkSent(claimed, "sig", kT0 + 2);
  const auto sent = queue.Get("s1");
  EXPECT_EQ(sent->node, "");  // only a Sending study belongs to a node
  EXPECT_DOUBLE_EQ(sent->leaseExpiresAt, 0);
}

TEST_P(StudyStoreTest, AnotherNodeTakesOverAStudyWhoseLeaseRanOut) {
  const auto storeA = Open("queue", Node("node-a", 30));
  const auto storeB = Open("queue", Node("node-b", 30));
  StudyStore& a = *storeA;
  StudyStore& b = *storeB;
  a.Enqueue(Request("s1"), kT0);
  const StudyRecord first = ClaimWithOrder(a, "s1", "order-1", kT0 + 1);  // lease until kT0 + 31
  EXPECT_FALSE(b.ClaimNext(kT0 + 30).has_value());                        // still node-a's
  EXPECT_FALSE(b.ClaimNext(kT0 + 31).has_value());

  AgeLeases(31);
  const double before = LeaseNow(kT0 + 32);
  const StudyRecord taken = Claim(b, "s1", kT0 + 32);
  ExpectLease(taken.leaseExpiresAt, before, LeaseNow(kT0 + 32), 30);
  EXPECT_EQ(taken.node, "node-b");
  EXPECT_EQ(taken.orderId, "order-1");  // the same order goes on
  EXPECT_EQ(taken.attempts, 2u);
  EXPECT_EQ(taken.claim, first.claim + 1);
  const std::vector<HistoryEntry> history = b.History("s1");
  ASSERT_GE(history.size(), 2u);
  EXPECT_EQ(history[history.size() - 2].event, "taken-over");
  EXPECT_NE(history[history.size() - 2].detail.find("node-a"), std::string::npos);
  EXPECT_EQ(history.back().event, "started");

  // node-a comes back: its attempt learns that it lost the study, and its
  // writes do not touch node-b's.
  EXPECT_TRUE(a.RenewLeases(kT0 + 33, {{"s1", first.claim}}).empty());
  a.MarkRetry(first, "late", kT0 + 40, kT0 + 33);
  a.Update(first, kT0 + 33);
  const auto now = a.Get("s1");
  EXPECT_EQ(now->state, StudyState::Sending);
  EXPECT_EQ(now->node, "node-b");
  EXPECT_EQ(now->claim, taken.claim);
  const double renewing = LeaseNow(kT0 + 33);
  const std::vector<HeldClaim> held = b.RenewLeases(kT0 + 33, {{"s1", taken.claim}});
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].orthancId, "s1");
  EXPECT_EQ(held[0].claim, taken.claim);
  ExpectLease(b.Get("s1")->leaseExpiresAt, renewing, LeaseNow(kT0 + 33), 30);
}

TEST_P(StudyStoreTest, RenewLeasesKeepsTheStudiesAndReturnsOnlyTheClaimsStillHeld) {
  const auto storeA = Open("queue", Node("node-a", 30));
  const auto storeB = Open("queue", Node("node-b", 30));
  StudyStore& a = *storeA;
  StudyStore& b = *storeB;
  a.Enqueue(Request("s1"), kT0);
  a.Enqueue(Request("s2"), kT0 + 1);
  a.Enqueue(Request("s3"), kT0 + 2);
  const StudyRecord s1 = Claim(a, "s1", kT0 + 2);
  const StudyRecord s2 = Claim(a, "s2", kT0 + 2);
  const StudyRecord s3 = Claim(a, "s3", kT0 + 2);
  EXPECT_TRUE(b.Cancel("s2", kT0 + 3));  // from another node
  a.MarkSent(s3, "sig", kT0 + 4);

  AgeLeases(20);
  const double before = LeaseNow(kT0 + 20);
  const std::vector<HeldClaim> held =
      a.RenewLeases(kT0 + 20, {{"s1", s1.claim}, {"s2", s2.claim}, {"s3", s3.claim}});
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].orthancId, "s1");
  EXPECT_EQ(held[0].claim, s1.claim);
  ExpectLease(a.Get("s1")->leaseExpiresAt, before, LeaseNow(kT0 + 20), 30);
  EXPECT_FALSE(b.ClaimNext(kT0 + 40).has_value());  // renewed: not taken over
  // Much later, node-a silent: s1 is taken over; the cancelled s2 never is.
  AgeLeases(1000);
  EXPECT_EQ(Claim(b, "s1", kT0 + 1000).node, "node-b");
  EXPECT_FALSE(b.ClaimNext(kT0 + 1000).has_value());
  EXPECT_EQ(b.Get("s2")->state, StudyState::Cancelled);
}

TEST_P(StudyStoreTest, ASendingStudyWithoutARunningAttemptIsNotRenewedAndIsTakenOver) {
  // node-a's attempt ended without its last write (the database was down):
  // the study is still Sending for node-a, but nothing runs it any more.
  const auto storeA = Open("queue", Node("node-a", 30));
  const auto storeB = Open("queue", Node("node-b", 30));
  storeA->Enqueue(Request("orphan"), kT0);
  storeA->Enqueue(Request("running"), kT0);
  Claim(*storeA, "orphan", kT0 + 1);
  const StudyRecord running = Claim(*storeA, "running", kT0 + 1);
  AgeLeases(39);  // what the renewals below leave of the leases
  for (double t = kT0 + 2; t <= kT0 + 40; t += 1) {
    EXPECT_EQ(storeA->RenewLeases(t, {{"running", running.claim}}).size(), 1u);
  }
  const StudyRecord taken = Claim(*storeB, "orphan", kT0 + 40);
  EXPECT_EQ(taken.node, "node-b");
  EXPECT_FALSE(storeB->ClaimNext(kT0 + 40).has_value());  // "running" stays node-a's
}

TEST_P(StudyStoreTest, NodesListsHeartbeatsAndWhatEachNodeSends) {
  const auto storeA = Open("queue", Node("node-a"));
  const auto storeB = Open("queue", Node("node-b"));
  StudyStore& a = *storeA;
  StudyStore& b = *storeB;
  EXPECT_TRUE(a.Nodes(0).empty());
  a.Enqueue(Request("s1"), kT0);
  a.Enqueue(Request("s2"), kT0);
  a.Enqueue(Request("s3"), kT0);
  const StudyRecord s1 = Claim(a, "s1", kT0 + 1);
  const StudyRecord s2 = Claim(b, "s2", kT0 + 1);
  const StudyRecord s3 = Claim(a, "s3", kT0 + 1);
  a.RenewLeases(kT0 + 2, {{"s1", s1.claim}, {"s3", s3.claim}});
  b.RenewLeases(kT0 + 5, {{"s2", s2.claim}});

  const std::vector<NodeStatus> nodes = b.Nodes(kT0);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].name, "node-a");
  EXPECT_DOUBLE_EQ(nodes[0].lastHeartbeat, kT0 + 2);
  EXPECT_EQ(nodes[0].sending, (std::vector<std::string>{"s1", "s3"}));
  EXPECT_EQ(nodes[1].name, "node-b");
  EXPECT_EQ(nodes[1].sending, (std::vector<std::string>{"s2"}));
  const std::vector<NodeStatus> recent = a.Nodes(kT0 + 3);  // node-a has been silent since
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].name, "node-b");
}

TEST_P(StudyStoreTest, CancelledStudyIsNeitherHeldNorTakenOver) {
  const auto storeA = Open("queue", Node("node-a", 10));
  const auto storeB = Open("queue", Node("node-b", 10));
  storeA->Enqueue(Request("s1"), kT0);
  const StudyRecord claimed = Claim(*storeA, "s1", kT0 + 1);
  const CancelOutcome cancel = storeB->Cancel("s1", kT0 + 2);
  EXPECT_TRUE(cancel.wasSending);
  EXPECT_EQ(cancel.claim, claimed.claim);
  EXPECT_TRUE(storeA->RenewLeases(kT0 + 3, {{"s1", claimed.claim}}).empty());
  AgeLeases(100);
  EXPECT_FALSE(storeB->ClaimNext(kT0 + 100).has_value());
  EXPECT_EQ(storeB->Get("s1")->state, StudyState::Cancelled);
}

TEST_P(StudyStoreTest, RecoverInterruptedLeavesTheOtherNodesStudiesAlone) {
  const auto storeA = Open("queue", Node("node-a"));
  const auto storeB = Open("queue", Node("node-b"));
  storeA->Enqueue(Request("a1"), kT0);
  storeA->Enqueue(Request("b1"), kT0 + 1);
  Claim(*storeA, "a1", kT0 + 2);
  const StudyRecord b1Claim = Claim(*storeB, "b1", kT0 + 2);
  // node-a restarts.
  const auto restarted = Open("queue", Node("node-a"));
  EXPECT_EQ(restarted->RecoverInterrupted(kT0 + 3), 1u);
  EXPECT_EQ(restarted->Get("a1")->state, StudyState::Queued);
  EXPECT_EQ(restarted->Get("a1")->node, "");
  const auto b1 = restarted->Get("b1");
  EXPECT_EQ(b1->state, StudyState::Sending);
  EXPECT_EQ(b1->node, "node-b");
  EXPECT_EQ(storeB->RenewLeases(kT0 + 4, {{"b1", b1Claim.claim}}).size(), 1u);
}

TEST_P(StudyStoreTest, ChangesScanLockIsHeldByOneStoreAtATime) {
  const auto storeA = Open("queue", Node("node-a"));
  const auto storeB = Open("queue", Node("node-b"));
  {
    const std::unique_ptr<ScanLock> held = storeA->TryLockChangesScan();
    ASSERT_NE(held, nullptr);
    EXPECT_EQ(storeA->TryLockChangesScan(), nullptr);
    EXPECT_EQ(storeB->TryLockChangesScan(), nullptr);
  }
  const std::unique_ptr<ScanLock> next = storeB->TryLockChangesScan();
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(storeA->TryLockChangesScan(), nullptr);
  // Another store's data has a lock of its own.
  EXPECT_NE(Open("other", Node("node-a"))->TryLockChangesScan(), nullptr);
}

TEST_P(StudyStoreTest, RetryReasonsCountOnlyFailures) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord r = Claim(queue, "s1", kT0 + 1);
  EXPECT_EQ(r.attempts, 1u);
  queue.Postpone(r, kT0 + 10, "instances still arriving on another node", kT0 + 2);
  auto now = queue.Get("s1");
  EXPECT_EQ(now->attempts, 0u);
  EXPECT_EQ(now->node, "");
  EXPECT_EQ(queue.History("s1").back().event, "waiting");

  r = Claim(queue, "s1", kT0 + 10);
  EXPECT_EQ(r.attempts, 1u);
  queue.MarkRetry(r, "interrupted", kT0 + 11, kT0 + 11, RetryReason::Interrupted);
  EXPECT_EQ(queue.Get("s1")->attempts, 1u);
  EXPECT_EQ(queue.Totals().failures, 0u);

  r = Claim(queue, "s1", kT0 + 11);
  EXPECT_EQ(r.attempts, 2u);
  queue.MarkRetry(r, "HTTP 503", kT0 + 12, kT0 + 12, RetryReason::Failure);
  EXPECT_EQ(queue.Get("s1")->attempts, 2u);
  EXPECT_EQ(queue.History("s1").back().event, "retry");
  EXPECT_EQ(queue.Totals().failures, 1u);
}

// ---- SendWindows: a claimed study postponed to the next window

TEST_P(StudyStoreTest, PostponeQueuesTheStudyForLaterAsIfNeverClaimed) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  StudyRecord claimed = Claim(queue, "s1", kT0);
  queue.MarkRetry(claimed, "HTTP 503", kT0 + 10, kT0 + 1);
  claimed = Claim(queue, "s1", kT0 + 10);
  ASSERT_EQ(2u, claimed.attempts);
  const uint64_t failures = queue.Totals().failures;

  queue.Postpone(claimed, kT0 + 3600, "outside SendWindows", kT0 + 11);
  const StudyRecord waiting = *queue.Get("s1");
  EXPECT_EQ(StudyState::Queued, waiting.state);
  EXPECT_EQ(1u, waiting.attempts);  // the postponed claim does not count
  EXPECT_DOUBLE_EQ(kT0 + 3600, waiting.nextAttemptAt);
  EXPECT_EQ("HTTP 503", waiting.lastError);  // what happened before is still shown
  EXPECT_EQ(failures, queue.Totals().failures);
  const auto history = queue.History("s1");
  EXPECT_EQ("waiting", history.back().event);
  EXPECT_EQ("outside SendWindows", history.back().detail);
  EXPECT_FALSE(queue.ClaimNext(kT0 + 3599).has_value());
  EXPECT_DOUBLE_EQ(kT0 + 3600, *queue.NextDueTime());
  EXPECT_EQ(2u, Claim(queue, "s1", kT0 + 3600).attempts);
}

TEST_P(StudyStoreTest, PostponeOfAStaleClaimChangesNothing) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  const StudyRecord claimed = Claim(queue, "s1", kT0);
  ASSERT_TRUE(queue.Cancel("s1", kT0 + 1));
  queue.Enqueue(Manual("s1", "alice"), kT0 + 2);
  queue.Postpone(claimed, kT0 + 3600, "outside SendWindows", kT0 + 3);
  EXPECT_DOUBLE_EQ(kT0 + 2, queue.Get("s1")->nextAttemptAt);
}

TEST_P(StudyStoreTest, PostponeWithAResendRequestedQueuesTheNewRequestNow) {
  StudyStore& queue = Store();
  queue.Enqueue(Request("s1"), kT0);
  const StudyRecord claimed = Claim(queue, "s1", kT0);
  queue.Enqueue(Manual("s1", "alice"), kT0 + 1);  // while "sending"
  queue.Postpone(claimed, kT0 + 3600, "outside SendWindows", kT0 + 2);
  const StudyRecord r = *queue.Get("s1");
  EXPECT_EQ(StudyState::Queued, r.state);
  EXPECT_EQ("manual", r.trigger);
  EXPECT_DOUBLE_EQ(kT0 + 2, r.nextAttemptAt);
}

TEST_P(StudyStoreTest, RespectWindowsIsKeptWithTheRequest) {
  StudyStore& queue = Store();
  EnqueueRequest patient = Manual("s1", "alice");
  patient.respectWindows = true;
  EXPECT_TRUE(queue.Enqueue(patient, kT0).respectWindows);
  EXPECT_TRUE(queue.Get("s1")->respectWindows);
  const StudyRecord claimed = Claim(queue, "s1", kT0);
  EXPECT_TRUE(claimed.respectWindows);
  // A request arriving while sending brings its own choice with it.
  queue.Enqueue(Manual("s1", "bob"), kT0 + 1);
  queue.MarkSent(claimed, "sig", kT0 + 2);
  EXPECT_FALSE(queue.Get("s1")->respectWindows);
  queue.Enqueue(patient, kT0 + 3);
  EXPECT_TRUE(Store().Get("s1")->respectWindows);
  EXPECT_TRUE(Open("queue")->Get("s1")->respectWindows);  // durable
}

// ---- audit chain head and receipts

TEST_P(StudyStoreTest, AuditHeadIsKeptPerNodeAndSurvivesReopening) {
  {
    const auto store = Open();
    EXPECT_FALSE(store->GetAuditHead("node-a:8042").has_value());
    store->SetAuditHead("node-a:8042", "1 abc 1");
    store->SetAuditHead("node-a:8042", "2 def 1");
    store->SetAuditHead("node-b:8042", "7 fed 5");
  }
  const auto reopened = Open();
  EXPECT_EQ("2 def 1", reopened->GetAuditHead("node-a:8042").value_or(""));
  EXPECT_EQ("7 fed 5", reopened->GetAuditHead("node-b:8042").value_or(""));
  EXPECT_EQ(-1, reopened->GetChangesCursor());  // a separate setting
}

TEST_P(StudyStoreTest, ReceiptIsStoredPerStudyAndReplacedByTheNextSend) {
  {
    const auto store = Open();
    EXPECT_FALSE(store->GetReceipt("s1").has_value());
    store->SaveReceipt("s1", R"({"order_id":"o1"})");
    store->SaveReceipt("s2", R"({"order_id":"o2"})");
    store->SaveReceipt("s1", R"({"order_id":"o3"})");
  }
  const auto reopened = Open();
  EXPECT_EQ(R"({"order_id":"o3"})", reopened->GetReceipt("s1").value_or(""));
  EXPECT_EQ(R"({"order_id":"o2"})", reopened->GetReceipt("s2").value_or(""));
}

}  // namespace
}  // namespace CloudIngest
