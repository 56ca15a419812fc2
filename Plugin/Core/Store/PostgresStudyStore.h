#pragma once
// The study store in a PostgreSQL database shared by the nodes of a cluster,
// in the plugin's own schema. Construction, the transaction runner and the
// reads are in PostgresStudyStore.cpp, the cluster's leases, nodes and scan
// lock in PostgresStudyLeases.cpp, the tables in PostgresStudyTable.*, libpq
// in PostgresConnection.*; the state transitions are StudyTransitions.*.
//
// One connection, one transaction at a time under a mutex: every call is a
// few short statements, and the plugin's threads (a few senders, the lease
// renewal, the REST routes) share it without waiting long.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "Core/Store/PostgresConnection.h"
#include "Core/Store/StudyStore.h"

namespace CloudIngest {

class PostgresStudyStore final : public StudyStore {
 public:
  // `conninfo`: a postgresql:// URI or libpq key=value string; `schema`: the
  // plugin's schema, created and migrated on the first connection. Connects
  // when first used: while the server cannot be reached, the calls throw
  // DatabaseError and Health() says why; nothing throws here.
  PostgresStudyStore(std::string conninfo, std::string schema, StoreIdentity identity);
  PostgresStudyStore(const PostgresStudyStore&) = delete;
  PostgresStudyStore& operator=(const PostgresStudyStore&) = delete;

  StudyRecord Enqueue(const EnqueueRequest& request, double now) override;
  std::optional<StudyRecord> ClaimNext(double now) override;
  std::vector<HeldClaim> RenewLeases(double now, const std::vector<HeldClaim>& running) override;
  std::vector<NodeStatus> Nodes(double since) override;
  std::optional<double> NextDueTime() override;

  void Update(const StudyRecord& record, double now) override;
  void MarkSent(const StudyRecord& claimed, const std::string& signature, double now,
                bool newlySent) override;
  void MarkRetry(const StudyRecord& claimed, const std::string& error, double nextAttemptAt,
                 double now, RetryReason reason) override;
  void MarkFailed(const StudyRecord& claimed, const std::string& error, double now) override;
  void Postpone(const StudyRecord& claimed, double until, const std::string& reason,
                double now) override;
  void AddHistory(const StudyRecord& claimed, const HistoryEntry& entry) override;
  void Remove(const StudyRecord& claimed) override;

  CancelOutcome Cancel(const std::string& orthancId, double now) override;
  bool IsCancelled(const std::string& orthancId) override;
  void Remove(const std::string& orthancId) override;
  unsigned RecoverInterrupted(double now) override;

  std::optional<StudyRecord> Get(const std::string& orthancId) override;
  std::vector<StudyRecord> List(std::optional<StudyState> state, unsigned limit, unsigned offset,
                                double since) override;
  QueueTotals Totals() override;

  void AddHistory(const std::string& orthancId, const HistoryEntry& entry) override;
  std::vector<HistoryEntry> History(const std::string& orthancId, unsigned limit) override;
  void CountUpload(uint64_t bytes, unsigned instances) override;

  int64_t GetChangesCursor() override;
  void SetChangesCursor(int64_t seq) override;
  QueueMode GetQueueMode() override;
  void SetQueueMode(QueueMode mode) override;
  std::optional<std::string> GetAuditHead(const std::string& node) override;
  void SetAuditHead(const std::string& node, const std::string& head) override;
  void SaveReceipt(const std::string& orthancId, const std::string& receipt) override;
  std::optional<std::string> GetReceipt(const std::string& orthancId) override;
  // A session-level advisory lock: released by the returned object (which
  // must not outlive the store), or by the server when the connection drops.
  std::unique_ptr<ScanLock> TryLockChangesScan() override;

  StoreHealth Health() override;

 private:
  class AdvisoryScanLock;
  enum class Access {
    Read,     // a read-only snapshot of the database (repeatable read)
    Write,    // read committed, rows locked as they are read
    Session,  // no transaction: a session-level setting or lock
  };
  // Runs `body` in one transaction, connecting first if needed. A lost
  // connection is made again and the whole transaction run again, up to
  // kAttempts times with a short pause; then DatabaseError.
  void Transaction(const std::string& operation, Access access,
                   const std::function<void(PgSession&)>& body);
  template <typename Body>
  auto Run(const std::string& operation, Access access, Body&& body);
  // Under mutex_: connected, search_path set, schema created or migrated.
  void EnsureReady();
  enum class Outcome { Committed, Aborted, Unknown };
  Outcome CommitOutcome(const std::string& transactionId, const std::string& operation);
  void RollbackQuietly(const std::string& operation);
  void Reachable();
  void Unreachable(const std::string& error);
  void ReleaseScanLock(uint64_t generation);

  const std::string schema_;
  const StoreIdentity identity_;
  std::mutex mutex_;  // one transaction at a time on the connection; guards what follows
  PgSession session_;
  uint64_t preparedGeneration_ = 0;  // the connection whose search_path is set
  bool schemaReady_ = false;
  bool scanHeld_ = false;  // advisory locks are re-entrant within a session: this is not
  StoreHealth health_;
};

template <typename Body>
auto PostgresStudyStore::Run(const std::string& operation, Access access, Body&& body) {
  using Result = decltype(body(std::declval<PgSession&>()));
  if constexpr (std::is_void_v<Result>) {
    Transaction(operation, access, body);
  } else {
    std::optional<Result> result;  // the last run's, when the transaction ran again
    Transaction(operation, access, [&](PgSession& session) { result = body(session); });
    return std::move(*result);
  }
}

}  // namespace CloudIngest
