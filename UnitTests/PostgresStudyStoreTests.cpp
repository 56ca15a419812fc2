// What only the PostgreSQL store has: a server that goes away and comes back,
// nodes starting together, credentials kept out of messages. The behaviour
// shared with SQLite is StudyStoreTests.cpp's suite. These tests need the
// server Store.postgresql starts (CLOUD_INGEST_TEST_POSTGRES, and _CTL to stop
// and start it); without it they are skipped, except the offline ones.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "Core/Store/PostgresConnection.h"
#include "Core/Store/PostgresStudyStore.h"

namespace CloudIngest {
namespace {

constexpr double kT0 = 1'700'000'000.0;

EnqueueRequest Request(const std::string& id) {
  EnqueueRequest request;
  request.orthancId = id;
  return request;
}

StoreIdentity Node(const std::string& name, double leaseSeconds = 30) {
  StoreIdentity identity;
  identity.node = name;
  identity.leaseSeconds = leaseSeconds;
  return identity;
}

// A port of 127.0.0.1 that nothing listens on (bound, then let go).
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  close(fd);
  return ntohs(address.sin_port);
}

std::string ErrorOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const DatabaseError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected DatabaseError";
  return "";
}

TEST(PostgresStudyStoreOffline, AnUnreachableServerIsADatabaseErrorThatNeverShowsThePassword) {
  const std::string port = std::to_string(ClosedPort());
  const std::vector<std::string> targets = {
      "postgresql://alice:pw-s3cret@127.0.0.1:" + port + "/orthanc",
      "host=127.0.0.1 port=" + port + " user=alice password=pw-s3cret dbname=orthanc",
      // Not even readable: libpq's message quotes the bad token.
      "postgresql://alice:pw-s3cret%zz@127.0.0.1:" + port + "/orthanc",
  };
  for (const std::string& target : targets) {
    SCOPED_TRACE(target);
    PostgresStudyStore store(target, "cloud_ingest", Node("node-a"));  // does not connect yet
    const std::string error = ErrorOf([&] { store.Enqueue(Request("s1"), kT0); });
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(error.find("s3cret"), std::string::npos) << error;
    const StoreHealth health = store.Health();
    EXPECT_EQ(health.kind, "postgresql");
    EXPECT_FALSE(health.reachable);
    EXPECT_FALSE(health.lastError.empty());
    EXPECT_EQ(health.lastError.find("s3cret"), std::string::npos) << health.lastError;
  }
}

TEST(PostgresStudyStoreOffline, RedactRemovesEveryFormOfThePassword) {
  PgSession session("postgresql://bob:t0p-secret@db.example:5432/orthanc", "test");
  const std::string text = session.Redact(
      "failed for postgresql://bob:t0p-secret@db.example:5432/orthanc (password=other-one), "
      "token \"t0p-secret\"");
  EXPECT_EQ(text.find("t0p-secret"), std::string::npos) << text;
  EXPECT_EQ(text.find("other-one"), std::string::npos) << text;
  EXPECT_NE(text.find("postgresql://bob:***@db.example"), std::string::npos) << text;
}

// ---- with the test server

class PostgresStudyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* uri = std::getenv("CLOUD_INGEST_TEST_POSTGRES");
    if (uri == nullptr) GTEST_SKIP() << "CLOUD_INGEST_TEST_POSTGRES is not set";
    uri_ = uri;
    const char* ctl = std::getenv("CLOUD_INGEST_TEST_POSTGRES_CTL");
    ctl_ = ctl != nullptr ? ctl : "";
    // Within PostgreSQL's 63 characters, and not "pg_" (reserved).
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    schema_ = "t_" + test.substr(0, 40) + "_" + std::to_string(getpid());
  }
  void TearDown() override {
    if (stopped_) Control("start");  // whatever the test's assertions did
  }

  std::unique_ptr<StudyStore> Open(const std::string& node, double leaseSeconds = 30) {
    return std::make_unique<PostgresStudyStore>(uri_, schema_, Node(node, leaseSeconds));
  }
  // Runs pg_ctl on the test server: "stop", "start" or "restart".
  void Control(const std::string& mode) {
    ASSERT_FALSE(ctl_.empty()) << "CLOUD_INGEST_TEST_POSTGRES_CTL is not set";
    ASSERT_EQ(std::system((ctl_ + " " + mode + " >/dev/null").c_str()), 0) << mode;
    stopped_ = mode == "stop";
  }
  // SQL on a connection of the test's own.
  PgResult Sql(const std::string& sql) {
    PgSession session(uri_, "test");
    session.Connect();
    return session.Exec(sql, "test");
  }
  // The server's clock, in seconds since the epoch.
  double ServerNow() { return Sql("SELECT extract(epoch from clock_timestamp())").Real(0, 0); }

  std::string uri_, ctl_, schema_;
  bool stopped_ = false;
};

TEST_F(PostgresStudyStoreTest, ThreeNodesStartingTogetherCreateTheSchemaOnce) {
  schema_ = "odd \"schema\"; drop " + std::to_string(getpid());  // quoted, never spliced
  std::promise<void> go;
  const std::shared_future<void> start = go.get_future().share();
  std::vector<std::future<std::string>> results;
  for (int i = 0; i < 3; ++i) {
    results.push_back(std::async(std::launch::async, [this, i, start] {
      const auto store = Open("node-" + std::to_string(i));
      start.wait();
      try {
        store->Enqueue(Request("s" + std::to_string(i)), kT0);
        return std::string();
      } catch (const std::exception& e) {
        return std::string(e.what());
      }
    }));
  }
  go.set_value();
  for (auto& result : results) EXPECT_EQ(result.get(), "");
  const auto store = Open("node-x");
  EXPECT_EQ(store->Totals().byState[StudyState::Queued], 3u);
  EXPECT_EQ(Sql("SELECT count(*) FROM pg_namespace WHERE nspname = '" + schema_ + "'").Text(0, 0),
            "1");
}

TEST_F(PostgresStudyStoreTest, ANewerSchemaIsRefused) {
  Open("node-a")->Enqueue(Request("s1"), kT0);
  Sql("UPDATE \"" + schema_ + "\".settings SET value = '99' WHERE key = 'schema_version'");
  const auto store = Open("node-a");
  const std::string error = ErrorOf([&] { store->Get("s1"); });
  EXPECT_NE(error.find("newer than this plugin's"), std::string::npos) << error;
}

TEST_F(PostgresStudyStoreTest, ReconnectsAfterTheServerRestartsAndAppliesEachWriteOnce) {
  if (ctl_.empty()) GTEST_SKIP() << "CLOUD_INGEST_TEST_POSTGRES_CTL is not set";
  const auto store = Open("node-a");
  store->Enqueue(Request("s1"), kT0);
  StudyRecord claimed = *store->ClaimNext(kT0 + 1);
  Control("restart");  // the store's connection is cut

  claimed.orderId = "order-1";
  claimed.instancesSent = 3;
  store->Update(claimed, kT0 + 2);  // on a new connection
  store->CountUpload(100, 3);
  EXPECT_EQ(store->Get("s1")->orderId, "order-1");
  EXPECT_EQ(store->Totals().bytesSent, 100u);  // counted once
  store->MarkSent(claimed, "sig", kT0 + 3);
  EXPECT_EQ(store->Totals().studiesSent, 1u);
  std::vector<std::string> events;
  for (const HistoryEntry& entry : store->History("s1")) events.push_back(entry.event);
  EXPECT_EQ(events, (std::vector<std::string>{"queued", "started", "sent"}));
  EXPECT_TRUE(store->Health().reachable);
}

TEST_F(PostgresStudyStoreTest, AServerDownAtStartUpIsReportedThenUsedOnceItAnswers) {
  if (ctl_.empty()) GTEST_SKIP() << "CLOUD_INGEST_TEST_POSTGRES_CTL is not set";
  Control("stop");
  const auto store = Open("node-a");  // does not throw
  const std::string error = ErrorOf([&] { store->Enqueue(Request("s1"), kT0); });
  EXPECT_NE(error.find("PostgreSQL"), std::string::npos) << error;
  StoreHealth health = store->Health();
  EXPECT_FALSE(health.reachable);
  EXPECT_FALSE(health.lastError.empty());
  EXPECT_THROW(store->TryLockChangesScan(), DatabaseError);

  Control("start");
  store->Enqueue(Request("s1"), kT0);
  EXPECT_EQ(store->Get("s1")->state, StudyState::Queued);
  health = store->Health();
  EXPECT_TRUE(health.reachable);
  EXPECT_EQ(health.lastError, "");
}

TEST_F(PostgresStudyStoreTest, TheScanLockGoesWithItsSession) {
  const auto a = Open("node-a-" + std::to_string(getpid()));
  const auto b = Open("node-b");
  std::unique_ptr<ScanLock> held = a->TryLockChangesScan();
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(b->TryLockChangesScan(), nullptr);
  // node-a's connection is cut (its server process ends, as when a node dies).
  EXPECT_EQ(Sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                "application_name = 'orthanc-cloud-ingest node-a-" +
                std::to_string(getpid()) + "'")
                .Text(0, 0),
            "1");
  std::unique_ptr<ScanLock> taken;
  for (int i = 0; i < 100 && !taken; ++i) {  // the server releases it as the process ends
    taken = b->TryLockChangesScan();
    if (!taken) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(taken, nullptr);
  held.reset();                                 // releasing on a dead connection is harmless
  EXPECT_EQ(a->TryLockChangesScan(), nullptr);  // reconnected: b holds it
  a->Enqueue(Request("s1"), kT0);               // and the store works on
}

// ---- Leases on the server's clock (issue 21, item 7): the nodes' own clocks
// may be off, or stepped, by more than a lease. The `now` the nodes pass
// stands for their wall clocks; they date history and due times only.

TEST_F(PostgresStudyStoreTest, ANodeClockAheadByMoreThanALeaseDoesNotTakeOverALiveSend) {
  const auto a = Open("node-a");
  const auto b = Open("node-b");
  const double before = ServerNow();
  a->Enqueue(Request("s1"), before);
  const StudyRecord claimed = *a->ClaimNext(before);
  const double after = ServerNow();
  EXPECT_GE(claimed.leaseExpiresAt, before + 30);  // the server's time plus the lease
  EXPECT_LE(claimed.leaseExpiresAt, after + 30);
  // node-b's clock is 1000 s ahead: by it, node-a's lease ran out long ago.
  EXPECT_FALSE(b->ClaimNext(after + 1000).has_value());
  EXPECT_EQ(b->Get("s1")->node, "node-a");
  EXPECT_EQ(a->RenewLeases(ServerNow(), {{"s1", claimed.claim}}).size(), 1u);
}

TEST_F(PostgresStudyStoreTest, ANodeClockBehindByMoreThanALeaseKeepsItsLease) {
  const auto a = Open("node-a");
  const auto b = Open("node-b");
  const double skew = -1000;  // node-a's clock, stepped back or never set
  a->Enqueue(Request("s1"), ServerNow() + skew);
  const StudyRecord claimed = *a->ClaimNext(ServerNow() + skew);
  EXPECT_FALSE(b->ClaimNext(ServerNow()).has_value());  // node-b, on time
  const double renewing = ServerNow();
  EXPECT_EQ(a->RenewLeases(renewing + skew, {{"s1", claimed.claim}}).size(), 1u);
  EXPECT_GE(a->Get("s1")->leaseExpiresAt, renewing + 30);
  EXPECT_FALSE(b->ClaimNext(ServerNow()).has_value());
  EXPECT_EQ(b->Get("s1")->node, "node-a");
}

TEST_F(PostgresStudyStoreTest, ALapsedLeaseIsTakenOverByTheServersClockWhateverTheNodeClock) {
  const auto a = Open("node-a", 1);  // a one-second lease, never renewed
  const auto b = Open("node-b");
  a->Enqueue(Request("s1"), ServerNow());
  const StudyRecord claimed = *a->ClaimNext(ServerNow());
  // node-b's clock is 1000 s behind: by it, the lease has 1000 s to go.
  std::optional<StudyRecord> taken;
  for (int i = 0; i < 200 && !taken; ++i) {  // at most about 10 s
    taken = b->ClaimNext(ServerNow() - 1000);
    if (!taken) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->node, "node-b");
  EXPECT_EQ(taken->claim, claimed.claim + 1);
  EXPECT_TRUE(a->RenewLeases(ServerNow(), {{"s1", claimed.claim}}).empty());
}

}  // namespace
}  // namespace CloudIngest
