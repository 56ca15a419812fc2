#pragma once
// The study store in one SQLite file (WAL), for one node. The state
// transitions are StudyTransitions.*, over the tables of SqliteStudyTable.*.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "Core/Store/SqliteFile.h"
#include "Core/Store/StudyStore.h"

namespace CloudIngest {

class SqliteStudyStore final : public StudyStore {
 public:
  // Creates the file and schema if needed. Throws DatabaseError, or
  // CorruptDatabaseError when the file is damaged or not a database.
  explicit SqliteStudyStore(const std::string& path, StoreIdentity identity = {});
  // As the constructor, but a corrupt file (with its -wal, -shm and -journal
  // files) is renamed to "<path>.corrupt-<UTC time YYYYMMDDTHHMMSSZ>" and an
  // empty database takes its place; `recovery` then says what happened. Any
  // other failure throws as the constructor does, and nothing is moved.
  static std::unique_ptr<StudyStore> OpenOrRecover(const std::string& path,
                                                   const StoreIdentity& identity, double now,
                                                   std::optional<DatabaseRecovery>& recovery);
  SqliteStudyStore(const SqliteStudyStore&) = delete;
  SqliteStudyStore& operator=(const SqliteStudyStore&) = delete;

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
  // Exclusive among the store objects of this process on the same file (one
  // node: the file is not shared with other processes).
  std::unique_ptr<ScanLock> TryLockChangesScan() override;

  StoreHealth Health() override;

  QueueMode GetQueueMode() override;
  void SetQueueMode(QueueMode mode) override;

  // In SqliteAuditTables.cpp.
  std::optional<std::string> GetAuditHead(const std::string& node) override;
  void SetAuditHead(const std::string& node, const std::string& head) override;
  void SaveReceipt(const std::string& orthancId, const std::string& receipt) override;
  std::optional<std::string> GetReceipt(const std::string& orthancId) override;

 private:
  // Runs `write(table)` in one write transaction.
  template <typename Write>
  auto InTransaction(const std::string& operation, Write&& write);

  const StoreIdentity identity_;
  const std::string scanKey_;  // the file, for TryLockChangesScan
  std::mutex mutex_;           // one transaction at a time on the connection
  SqliteHandle handle_;
  sqlite3* db_;  // handle_'s
};

}  // namespace CloudIngest
