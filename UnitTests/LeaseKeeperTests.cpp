// LeaseKeeper: a node's running attempts stop when their claim is cancelled
// on another node or taken over, and when the node cannot renew for most of
// a lease. Two store objects on one SQLite file stand for two nodes.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "Core/Sending/LeaseKeeper.h"
#include "Core/Store/SqliteStudyStore.h"
#include "Fakes/RecordingLogger.h"

namespace CloudIngest {
namespace {

class LeaseKeeperTest : public ::testing::Test {
 protected:
  LeaseKeeperTest() {
    std::string pattern = (std::filesystem::temp_directory_path() / "leases-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    nodeA_ = std::make_unique<SqliteStudyStore>(dir_ + "/queue.db", StoreIdentity{"node-a", 30});
    nodeB_ = std::make_unique<SqliteStudyStore>(dir_ + "/queue.db", StoreIdentity{"node-b", 30});
    cancels_ = std::make_unique<CancelRegistry>(*nodeA_);  // after the store it refers to
  }
  ~LeaseKeeperTest() override {
    cancels_.reset();
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
  ManualClock clock_;
  Testing::RecordingLogger log_;
  std::unique_ptr<StudyStore> nodeA_, nodeB_;
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

}  // namespace
}  // namespace CloudIngest
