// LeaseKeeper: a node's running attempts stop when their claim is cancelled
// on another node or taken over, and when the node cannot renew for most of
// a lease. Two store objects on one SQLite file stand for two nodes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <thread>

#include "Core/Sending/LeaseKeeper.h"
#include "Core/Store/SqliteStudyStore.h"
#include "Fakes/ForwardingStore.h"
#include "Fakes/RecordingLogger.h"

namespace CloudIngest {
namespace {

// Node A's store as its lease keeper sees it: renewals may fail, as when the
// database is cut off, and `during` runs inside each renewal call.
class UnreliableRenewals : public Testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::vector<HeldClaim> RenewLeases(double now, const std::vector<HeldClaim>& running) override {
    if (during) during();
    if (failing) throw DatabaseError("plugin database: connection timed out");
    return ForwardingStore::RenewLeases(now, running);
  }
  std::atomic<bool> failing{false};
  std::function<void()> during;
};

class LeaseKeeperTest : public ::testing::Test {
 protected:
  LeaseKeeperTest() {
    std::string pattern = (std::filesystem::temp_directory_path() / "leases-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    nodeA_ = std::make_unique<SqliteStudyStore>(dir_ + "/queue.db", StoreIdentity{"node-a", 30});
    nodeB_ = std::make_unique<SqliteStudyStore>(dir_ + "/queue.db", StoreIdentity{"node-b", 30});
    renewalsA_ = std::make_unique<UnreliableRenewals>(*nodeA_);
    cancels_ = std::make_unique<CancelRegistry>(*nodeA_, steady_);  // after the store
  }
  ~LeaseKeeperTest() override {
    cancels_.reset();
    renewalsA_.reset();
    nodeA_.reset();
    nodeB_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Queued, then claimed by node A, whose scheduler begins the attempt.
  StudyRecord ClaimOnA(const std::string& id) {
    EnqueueRequest request;
    request.orthancId = id;
    nodeA_->Enqueue(request, clock_.Now());
    auto claimed = nodeA_->ClaimNext(clock_.Now());
    EXPECT_TRUE(claimed.has_value());
    CancelsA().Begin(claimed->orthancId, claimed->claim);
    return *claimed;
  }

  std::string dir_;
  ManualClock clock_;            // the node's wall clock
  ManualMonotonicClock steady_;  // its monotonic clock
  Testing::RecordingLogger log_;
  std::unique_ptr<StudyStore> nodeA_, nodeB_;
  std::unique_ptr<UnreliableRenewals> renewalsA_;
  std::unique_ptr<CancelRegistry> cancels_;
  CancelRegistry& CancelsA() { return *cancels_; }
};

TEST_F(LeaseKeeperTest, RenewingKeepsTheClaimsAndTheHeartbeat) {
  LeaseKeeper keeper(*nodeA_, CancelsA(), clock_, log_, 30);
  const StudyRecord claimed = ClaimOnA("s1");
  for (int i = 0; i < 100; ++i) {  // far longer than a lease, renewed each second
    clock_.Advance(1);
    EXPECT_EQ(0u, keeper.Renew());
  }
  EXPECT_FALSE(CancelsA().IsCancelled("s1", claimed.claim));
  EXPECT_FALSE(nodeB_->ClaimNext(clock_.Now()).has_value());  // node B cannot take it
  const auto nodes = nodeB_->Nodes(clock_.Now() - 60);
  ASSERT_EQ(1u, nodes.size());
  EXPECT_EQ("node-a", nodes[0].name);
  EXPECT_DOUBLE_EQ(clock_.Now(), nodes[0].lastHeartbeat);
  EXPECT_EQ(std::vector<std::string>{"s1"}, nodes[0].sending);
}

TEST_F(LeaseKeeperTest, ACancelOnAnotherNodeStopsTheAttemptAtTheNextRenewal) {
  LeaseKeeper keeper(*nodeA_, CancelsA(), clock_, log_, 30);
  const StudyRecord claimed = ClaimOnA("s1");
  const StudyRecord other = ClaimOnA("s2");
  ASSERT_TRUE(nodeB_->Cancel("s1", clock_.Now()));  // the operator used node B
  EXPECT_FALSE(CancelsA().IsCancelled("s1", claimed.claim));
  clock_.Advance(1);
  EXPECT_EQ(1u, keeper.Renew());
  EXPECT_TRUE(CancelsA().IsCancelled("s1", claimed.claim));
  EXPECT_FALSE(CancelsA().IsCancelled("s2", other.claim));
  EXPECT_TRUE(log_.Logged("study s1: stopping its attempt here"));
}

TEST_F(LeaseKeeperTest, AnAttemptBegunDuringTheRenewalIsNotStopped) {
  LeaseKeeper keeper(*nodeA_, CancelsA(), clock_, log_, 30);
  // Begun (registered) after the keeper read the running claims would look
  // unheld; only claims registered before the renewal are judged.
  EXPECT_EQ(0u, keeper.Renew());
  const StudyRecord claimed = ClaimOnA("s1");
  clock_.Advance(1);
  EXPECT_EQ(0u, keeper.Renew());
  EXPECT_FALSE(CancelsA().IsCancelled("s1", claimed.claim));
}

TEST_F(LeaseKeeperTest, ATakenOverStudyStopsOnTheNodeThatLostIt) {
  LeaseKeeper keeper(*nodeA_, CancelsA(), clock_, log_, 30);
  const StudyRecord claimed = ClaimOnA("s1");
  clock_.Advance(31);  // node A was frozen for longer than a lease
  auto taken = nodeB_->ClaimNext(clock_.Now());
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ("node-b", taken->node);
  EXPECT_EQ(1u, keeper.Renew());
  EXPECT_TRUE(CancelsA().IsCancelled("s1", claimed.claim));
  // Node B's claim is untouched by node A's renewal.
  const auto heldByB = nodeB_->RenewLeases(clock_.Now(), {{"s1", taken->claim}});
  ASSERT_EQ(1u, heldByB.size());
  EXPECT_EQ(taken->claim, heldByB[0].claim);
}

// ---- The self-fence on the monotonic clock (issue 21, item 7)

TEST_F(LeaseKeeperTest, SelfFencesOnTheMonotonicClockWhenTheWallClockIsSteppedBack) {
  LeaseKeeper keeper(*renewalsA_, CancelsA(), clock_, log_, 30);
  const StudyRecord claimed = ClaimOnA("s1");
  EXPECT_EQ(0u, keeper.Renew());
  renewalsA_->failing = true;
  clock_.Advance(-3600);  // the wall clock is stepped back an hour
  steady_.Advance(17);
  EXPECT_EQ(0u, keeper.Renew());
  EXPECT_FALSE(CancelsA().IsCancelled("s1", claimed.claim));
  steady_.Advance(2);  // 19 s without a renewal: more than 0.6 of the lease
  EXPECT_EQ(1u, keeper.Renew());
  EXPECT_TRUE(CancelsA().IsCancelled("s1", claimed.claim));
  EXPECT_TRUE(log_.Logged("could not be renewed for 19 s"));
}

TEST_F(LeaseKeeperTest, AWallClockSteppedForwardDoesNotFenceALiveNode) {
  LeaseKeeper keeper(*renewalsA_, CancelsA(), clock_, log_, 30);
  const StudyRecord claimed = ClaimOnA("s1");
  EXPECT_EQ(0u, keeper.Renew());
  renewalsA_->failing = true;  // one renewal fails, just as the clock jumps an hour ahead
  clock_.Advance(3600);
  steady_.Advance(1);
  EXPECT_EQ(0u, keeper.Renew());
  EXPECT_FALSE(CancelsA().IsCancelled("s1", claimed.claim));
  renewalsA_->failing = false;
  steady_.Advance(1);
  EXPECT_EQ(0u, keeper.Renew());
  EXPECT_FALSE(CancelsA().IsCancelled("s1", claimed.claim));
}

TEST_F(LeaseKeeperTest, ARenewalThatBlockedCountsFromItsStart) {
  LeaseKeeper keeper(*renewalsA_, CancelsA(), clock_, log_, 30);
  const StudyRecord claimed = ClaimOnA("s1");
  // It succeeds after blocking 10 s: the lease may have been written at its start.
  renewalsA_->during = [&] { steady_.Advance(10); };
  EXPECT_EQ(0u, keeper.Renew());
  renewalsA_->during = nullptr;
  renewalsA_->failing = true;
  steady_.Advance(9);  // 19 s since that renewal began, 9 s since it ended
  EXPECT_EQ(1u, keeper.Renew());
  EXPECT_TRUE(CancelsA().IsCancelled("s1", claimed.claim));
  EXPECT_TRUE(log_.Logged("could not be renewed for 19 s"));
}

TEST_F(LeaseKeeperTest, ARenewalThatSucceedsTooLateStopsTheAttempts) {
  LeaseKeeper keeper(*renewalsA_, CancelsA(), clock_, log_, 30);
  const StudyRecord claimed = ClaimOnA("s1");
  renewalsA_->during = [&] { steady_.Advance(20); };
  EXPECT_EQ(1u, keeper.Renew());
  EXPECT_TRUE(CancelsA().IsCancelled("s1", claimed.claim));
  EXPECT_TRUE(log_.Logged("renewing its claim took 20 s"));
}

TEST_F(LeaseKeeperTest, AttemptsStopAtTheDeadlineWhileTheRenewalCallIsStillBlocked) {
  LeaseKeeper keeper(*renewalsA_, CancelsA(), clock_, log_, 30);
  const StudyRecord claimed = ClaimOnA("s1");
  EXPECT_EQ(0u, keeper.Renew());
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  renewalsA_->during = [&entered, released] {
    entered.set_value();
    released.wait_for(std::chrono::seconds(30));
  };
  renewalsA_->failing = true;
  std::thread renewal([&] { keeper.Renew(); });
  ASSERT_EQ(entered.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  steady_.Advance(17);
  EXPECT_FALSE(CancelsA().IsCancelled("s1", claimed.claim));
  steady_.Advance(2);  // the call is still blocked: the attempt stops at its next step anyway
  EXPECT_TRUE(CancelsA().IsCancelled("s1", claimed.claim));
  release.set_value();
  renewal.join();
}

}  // namespace
}  // namespace CloudIngest
