// What only a shared store has: the leases of the nodes' claims, the nodes'
// heartbeats, the /changes scan lock, and whether the server answers.
#include <algorithm>

#include "Core/Store/PostgresStudyStore.h"
#include "Core/Store/PostgresStudyTable.h"

namespace CloudIngest {

// Leases are reckoned on the server's clock (ClaimNext likewise, through
// Rows::LeaseNow): a node whose clock is off or stepped by more than a lease
// neither takes over a live send nor lets its own lapse early. The heartbeat
// keeps the node's `now`: it only shows when a node was last heard of.
std::vector<HeldClaim> PostgresStudyStore::RenewLeases(double now,
                                                       const std::vector<HeldClaim>& running) {
  static const std::string op = "RenewLeases";
  static const std::string renew =
      "UPDATE studies SET lease_expires_at = " + PostgresStudyTable::ServerEpochSql() +
      " + $1::double precision WHERE orthanc_id = $2 AND claim = $3 "
      "AND state = 'sending' AND node = $4 RETURNING orthanc_id";
  return Run(op, Access::Write, [&](PgSession& session) {
    session.Exec(
        "INSERT INTO nodes(name, last_heartbeat) VALUES ($1, $2) "
        "ON CONFLICT (name) DO UPDATE SET last_heartbeat = excluded.last_heartbeat",
        {identity_.node, PgText(now)}, op);
    std::vector<HeldClaim> held;
    for (const HeldClaim& claim : running) {
      const PgResult renewed =
          session.Exec(renew,
                       {PgText(identity_.leaseSeconds), claim.orthancId,
                        PgText(static_cast<int64_t>(claim.claim)), identity_.node},
                       op);
      if (renewed.Rows() > 0) held.push_back(claim);
    }
    return held;
  });
}

std::vector<NodeStatus> PostgresStudyStore::Nodes(double since) {
  static const std::string op = "Nodes";
  return Run(op, Access::Read, [&](PgSession& session) {
    const PgResult result = session.Exec(
        "SELECT n.name, n.last_heartbeat, s.orthanc_id FROM nodes n LEFT JOIN studies s ON "
        "s.state = 'sending' AND s.node = n.name WHERE n.last_heartbeat >= $1 "
        "ORDER BY n.name, s.orthanc_id",
        {PgText(since)}, op);
    std::vector<NodeStatus> nodes;
    for (int i = 0; i < result.Rows(); ++i) {
      if (nodes.empty() || nodes.back().name != result.Text(i, 0)) {
        NodeStatus node;
        node.name = result.Text(i, 0);
        node.lastHeartbeat = result.Real(i, 1);
        nodes.push_back(std::move(node));
      }
      if (!result.IsNull(i, 2)) nodes.back().sending.push_back(result.Text(i, 2));
    }
    return nodes;
  });
}

class PostgresStudyStore::AdvisoryScanLock final : public ScanLock {
 public:
  AdvisoryScanLock(PostgresStudyStore& store, uint64_t generation)
      : store_(store), generation_(generation) {}
  ~AdvisoryScanLock() override { store_.ReleaseScanLock(generation_); }

 private:
  PostgresStudyStore& store_;
  const uint64_t generation_;  // the connection that holds the lock
};

std::unique_ptr<ScanLock> PostgresStudyStore::TryLockChangesScan() {
  static const std::string op = "TryLockChangesScan";
  bool locked = false;
  uint64_t generation = 0;
  Transaction(op, Access::Session, [&](PgSession& session) {
    if (scanHeld_) return;  // by this store already (mutex_ is held here)
    locked = session
                 .Exec("SELECT pg_try_advisory_lock($1, hashtext($2))",
                       {PgText(int64_t{PostgresStudyTable::kScanLockClass}), schema_}, op)
                 .Text(0, 0) == "t";
    scanHeld_ = locked;
    generation = session.Generation();
  });
  if (!locked) return nullptr;
  return std::make_unique<AdvisoryScanLock>(*this, generation);
}

void PostgresStudyStore::ReleaseScanLock(uint64_t generation) {
  std::lock_guard<std::mutex> lock(mutex_);
  scanHeld_ = false;
  if (session_.Generation() != generation) {
    return;  // that connection is gone, and the server released its locks
  }
  try {
    session_.Exec("SELECT pg_advisory_unlock($1, hashtext($2))",
                  {PgText(int64_t{PostgresStudyTable::kScanLockClass}), schema_},
                  "release the /changes scan lock");
  } catch (const DatabaseError&) {
    session_.Drop();  // a lock that could not be released goes with the session
  }
}

StoreHealth PostgresStudyStore::Health() {
  try {
    Transaction("Health", Access::Session,
                [](PgSession& session) { session.Exec("SELECT 1", "Health"); });
  } catch (const DatabaseError& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (health_.reachable) {  // not a lost connection: the schema is unusable
      health_.reachable = false;
      health_.lastError = e.what();
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return health_;
}

}  // namespace CloudIngest
