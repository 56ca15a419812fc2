#include "Core/Store/SqliteStudyStore.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "Core/Store/SqliteStatement.h"
#include "Core/Store/SqliteStudyTable.h"
#include "Core/Store/StudyTransitions.h"

namespace CloudIngest {

namespace {

constexpr unsigned kMaxListLimit = 1000;
// The /changes cursor is one row of the settings table.
const char* const kGetCursor = "SELECT value FROM settings WHERE key = 'changes_cursor'";
const char* const kSetCursor =
    "INSERT INTO settings(key, value) VALUES ('changes_cursor', :value) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value";

// The files whose /changes scan is held by a store object of this process.
std::mutex scanMutex;
std::set<std::string> scanning;

class SqliteScanLock final : public ScanLock {
 public:
  explicit SqliteScanLock(std::string key) : key_(std::move(key)) {}
  ~SqliteScanLock() override {
    std::lock_guard<std::mutex> lock(scanMutex);
    scanning.erase(key_);
  }

 private:
  const std::string key_;
};
// So is the queue's pause switch: 'paused' while paused, absent or 'running' otherwise.
const char* const kGetQueueMode = "SELECT value FROM settings WHERE key = 'queue_mode'";
const char* const kSetQueueMode =
    "INSERT INTO settings(key, value) VALUES ('queue_mode', :value) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value";

}  // namespace

SqliteStudyStore::SqliteStudyStore(const std::string& path, StoreIdentity identity)
    : identity_(std::move(identity)),
      scanKey_(std::filesystem::weakly_canonical(std::filesystem::absolute(path)).string()),
      handle_(OpenSqliteFile(path)),
      db_(handle_.get()) {
  SqliteStudyTable::CreateOrMigrate(db_, path);
}

std::unique_ptr<StudyStore> SqliteStudyStore::OpenOrRecover(
    const std::string& path, const StoreIdentity& identity, double now,
    std::optional<DatabaseRecovery>& recovery) {
  recovery.reset();
  try {
    return std::make_unique<SqliteStudyStore>(path, identity);
  } catch (const CorruptDatabaseError& e) {
    DatabaseRecovery moved;
    moved.at = now;
    moved.reason = e.what();
    std::replace(moved.reason.begin(), moved.reason.end(), '\n', ' ');  // quick_check's lines
    moved.movedTo = MoveCorruptFileAside(path, now);
    auto store = std::make_unique<SqliteStudyStore>(path, identity);
    recovery = std::move(moved);
    return store;
  }
}

template <typename Write>
auto SqliteStudyStore::InTransaction(const std::string& operation, Write&& write) {
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, operation);
  SqliteStudyTable::Rows table(db_, operation);
  if constexpr (std::is_void_v<decltype(write(table))>) {
    write(table);
    transaction.Commit();
  } else {
    auto result = write(table);
    transaction.Commit();
    return result;
  }
}

StudyRecord SqliteStudyStore::Enqueue(const EnqueueRequest& request, double now) {
  return InTransaction(
      "Enqueue", [&](StudyTable& table) { return StudyTransitions::Enqueue(table, request, now); });
}

std::optional<StudyRecord> SqliteStudyStore::ClaimNext(double now) {
  return InTransaction("ClaimNext", [&](StudyTable& table) {
    return StudyTransitions::ClaimNext(table, identity_, now);
  });
}

void SqliteStudyStore::Update(const StudyRecord& record, double now) {
  InTransaction("Update", [&](StudyTable& table) { StudyTransitions::Update(table, record, now); });
}

void SqliteStudyStore::MarkSent(const StudyRecord& claimed, const std::string& signature,
                                double now, bool newlySent) {
  InTransaction("MarkSent", [&](StudyTable& table) {
    StudyTransitions::MarkSent(table, claimed, signature, now, newlySent);
  });
}

void SqliteStudyStore::MarkRetry(const StudyRecord& claimed, const std::string& error,
                                 double nextAttemptAt, double now, RetryReason reason) {
  InTransaction("MarkRetry", [&](StudyTable& table) {
    StudyTransitions::MarkRetry(table, claimed, error, nextAttemptAt, now, reason);
  });
}

void SqliteStudyStore::Postpone(const StudyRecord& claimed, double until, const std::string& reason,
                                double now) {
  InTransaction("Postpone", [&](StudyTable& table) {
    StudyTransitions::Postpone(table, claimed, until, reason, now);
  });
}

void SqliteStudyStore::MarkFailed(const StudyRecord& claimed, const std::string& error,
                                  double now) {
  InTransaction("MarkFailed", [&](StudyTable& table) {
    StudyTransitions::MarkFailed(table, claimed, error, now);
  });
}

void SqliteStudyStore::AddHistory(const StudyRecord& claimed, const HistoryEntry& entry) {
  InTransaction("AddHistory",
                [&](StudyTable& table) { StudyTransitions::AddHistory(table, claimed, entry); });
}

void SqliteStudyStore::Remove(const StudyRecord& claimed) {
  InTransaction("Remove", [&](StudyTable& table) { StudyTransitions::Remove(table, claimed); });
}

CancelOutcome SqliteStudyStore::Cancel(const std::string& orthancId, double now) {
  return InTransaction(
      "Cancel", [&](StudyTable& table) { return StudyTransitions::Cancel(table, orthancId, now); });
}

unsigned SqliteStudyStore::RecoverInterrupted(double now) {
  return InTransaction("RecoverInterrupted", [&](StudyTable& table) {
    return StudyTransitions::RecoverInterrupted(table, identity_.node, now);
  });
}

std::vector<HeldClaim> SqliteStudyStore::RenewLeases(double now,
                                                     const std::vector<HeldClaim>& running) {
  static const std::string op = "RenewLeases";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, op);
  std::vector<HeldClaim> held;
  for (const HeldClaim& claim : running) {
    SqliteStatement(db_,
                    "UPDATE studies SET lease_expires_at = :until WHERE orthanc_id = :id AND "
                    "claim = :claim AND state = 'sending' AND node = :node",
                    op)
        .Bind(":until", now + identity_.leaseSeconds)
        .Bind(":id", claim.orthancId)
        .Bind(":claim", static_cast<int64_t>(claim.claim))
        .Bind(":node", identity_.node)
        .Run();
    if (sqlite3_changes(db_) > 0) held.push_back(claim);
  }
  SqliteStatement(db_,
                  "INSERT INTO nodes(name, last_heartbeat) VALUES (:node, :now) "
                  "ON CONFLICT(name) DO UPDATE SET last_heartbeat = excluded.last_heartbeat",
                  op)
      .Bind(":node", identity_.node)
      .Bind(":now", now)
      .Run();
  transaction.Commit();
  return held;
}

std::vector<NodeStatus> SqliteStudyStore::Nodes(double since) {
  static const std::string op = "Nodes";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, false, op);  // one consistent snapshot
  std::vector<NodeStatus> nodes;
  {
    SqliteStatement s(
        db_, "SELECT name, last_heartbeat FROM nodes WHERE last_heartbeat >= :since ORDER BY name",
        op);
    s.Bind(":since", since);
    while (s.Step()) {
      NodeStatus node;
      node.name = s.Text(0);
      node.lastHeartbeat = s.Real(1);
      nodes.push_back(std::move(node));
    }
  }
  for (NodeStatus& node : nodes) {
    SqliteStatement s(db_,
                      "SELECT orthanc_id FROM studies WHERE state = 'sending' AND node = :node "
                      "ORDER BY orthanc_id",
                      op);
    s.Bind(":node", node.name);
    while (s.Step()) {
      node.sending.push_back(s.Text(0));
    }
  }
  transaction.Commit();
  return nodes;
}

std::unique_ptr<ScanLock> SqliteStudyStore::TryLockChangesScan() {
  std::lock_guard<std::mutex> lock(scanMutex);
  if (!scanning.insert(scanKey_).second) {
    return nullptr;
  }
  return std::make_unique<SqliteScanLock>(scanKey_);
}

StoreHealth SqliteStudyStore::Health() {
  StoreHealth health;
  health.kind = "sqlite";
  return health;  // a local file: its failures surface as errors of the calls themselves
}

std::optional<double> SqliteStudyStore::NextDueTime() {
  static const std::string op = "NextDueTime";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_, "SELECT MIN(next_attempt_at) FROM studies WHERE state = 'queued'", op);
  if (!s.Step() || s.IsNull(0)) {
    return std::nullopt;
  }
  return s.Real(0);
}

bool SqliteStudyStore::IsCancelled(const std::string& orthancId) {
  static const std::string op = "IsCancelled";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_, "SELECT state FROM studies WHERE orthanc_id = :id", op);
  s.Bind(":id", orthancId);
  return s.Step() && s.Text(0) == ToString(StudyState::Cancelled);
}

void SqliteStudyStore::Remove(const std::string& orthancId) {
  InTransaction("Remove", [&](StudyTable& table) { table.Delete(orthancId); });
}

std::optional<StudyRecord> SqliteStudyStore::Get(const std::string& orthancId) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::optional<SqliteStudyTable::Row> row = SqliteStudyTable::LoadRow(db_, orthancId, "Get");
  if (!row) {
    return std::nullopt;
  }
  return row->record;
}

std::vector<StudyRecord> SqliteStudyStore::List(std::optional<StudyState> state, unsigned limit,
                                                unsigned offset, double since) {
  static const std::string op = "List";
  // 0 means "as many as allowed".
  const unsigned effectiveLimit = limit == 0 ? kMaxListLimit : std::min(limit, kMaxListLimit);
  std::string sql = SqliteStudyTable::SelectColumns() + " WHERE updated_at >= :since";
  if (state) {
    sql += " AND state = :state";
  }
  sql += " ORDER BY updated_at DESC, orthanc_id LIMIT :limit OFFSET :offset";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_, sql, op);
  s.Bind(":since", since)
      .Bind(":limit", static_cast<int64_t>(effectiveLimit))
      .Bind(":offset", static_cast<int64_t>(offset));
  if (state) {
    s.Bind(":state", ToString(*state));
  }
  std::vector<StudyRecord> result;
  while (s.Step()) {
    result.push_back(SqliteStudyTable::ReadRow(s, op).record);
  }
  return result;
}

QueueTotals SqliteStudyStore::Totals() {
  static const std::string op = "Totals";
  QueueTotals totals;
  for (const StudyState state : {StudyState::Queued, StudyState::Sending, StudyState::Sent,
                                 StudyState::Failed, StudyState::Cancelled}) {
    totals.byState[state] = 0;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, false, op);  // one consistent snapshot
  {
    SqliteStatement s(db_, "SELECT state, COUNT(*) FROM studies GROUP BY state", op);
    while (s.Step()) {
      if (const auto state = ParseStudyState(s.Text(0))) {
        totals.byState[*state] = static_cast<unsigned>(s.Int(1));
      }
    }
  }
  {
    SqliteStatement s(db_,
                      "SELECT studies_sent, instances_sent, bytes_sent, failures, last_success "
                      "FROM totals WHERE id = 1",
                      op);
    if (s.Step()) {
      totals.studiesSent = static_cast<uint64_t>(s.Int(0));
      totals.instancesSent = static_cast<uint64_t>(s.Int(1));
      totals.bytesSent = static_cast<uint64_t>(s.Int(2));
      totals.failures = static_cast<uint64_t>(s.Int(3));
      totals.lastSuccess = s.Real(4);
    }
  }
  transaction.Commit();
  return totals;
}

void SqliteStudyStore::AddHistory(const std::string& orthancId, const HistoryEntry& entry) {
  InTransaction("AddHistory", [&](StudyTable& table) { table.InsertHistory(orthancId, entry); });
}

std::vector<HistoryEntry> SqliteStudyStore::History(const std::string& orthancId, unsigned limit) {
  static const std::string op = "History";
  // The most recent `limit` entries, oldest first (0 = all that are kept).
  const unsigned effectiveLimit = limit == 0 ? kHistoryPerStudy : std::min(limit, kHistoryPerStudy);
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_,
                    "SELECT time, attempt, event, detail FROM (SELECT id, time, attempt, event, "
                    "detail FROM history WHERE orthanc_id = :id ORDER BY id DESC LIMIT :limit) "
                    "ORDER BY id",
                    op);
  s.Bind(":id", orthancId).Bind(":limit", static_cast<int64_t>(effectiveLimit));
  std::vector<HistoryEntry> result;
  while (s.Step()) {
    HistoryEntry entry;
    entry.time = s.Real(0);
    entry.attempt = static_cast<unsigned>(s.Int(1));
    entry.event = s.Text(2);
    entry.detail = s.Text(3);
    result.push_back(std::move(entry));
  }
  return result;
}

void SqliteStudyStore::CountUpload(uint64_t bytes, unsigned instances) {
  static const std::string op = "CountUpload";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_,
                    "UPDATE totals SET instances_sent = instances_sent + :instances, "
                    "bytes_sent = bytes_sent + :bytes WHERE id = 1",
                    op);
  s.Bind(":bytes", static_cast<int64_t>(bytes))
      .Bind(":instances", static_cast<int64_t>(instances))
      .Run();  // one statement: its own transaction
}

int64_t SqliteStudyStore::GetChangesCursor() {
  static const std::string op = "GetChangesCursor";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_, kGetCursor, op);
  if (!s.Step() || s.IsNull(0)) {
    return -1;  // never scanned
  }
  return s.Int(0);
}

void SqliteStudyStore::SetChangesCursor(int64_t seq) {
  static const std::string op = "SetChangesCursor";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement(db_, kSetCursor, op).Bind(":value", seq).Run();
}

QueueMode SqliteStudyStore::GetQueueMode() {
  static const std::string op = "GetQueueMode";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_, kGetQueueMode, op);
  return s.Step() && !s.IsNull(0) && s.Text(0) == "paused" ? QueueMode::Paused : QueueMode::Running;
}

void SqliteStudyStore::SetQueueMode(QueueMode mode) {
  static const std::string op = "SetQueueMode";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement(db_, kSetQueueMode, op)
      .Bind(":value", std::string(mode == QueueMode::Paused ? "paused" : "running"))
      .Run();
}

}  // namespace CloudIngest
