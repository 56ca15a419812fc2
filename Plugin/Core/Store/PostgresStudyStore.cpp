#include "Core/Store/PostgresStudyStore.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "Core/Store/PostgresStudyTable.h"
#include "Core/Store/StudyTransitions.h"

namespace CloudIngest {

namespace {

using PostgresStudyTable::ReadRow;
using PostgresStudyTable::Rows;
using PostgresStudyTable::SelectColumns;

constexpr unsigned kMaxListLimit = 1000;
// A dropped connection is made again at once, then after 0.1 s and 0.4 s:
// enough for a connection cut by a server restart or a network blip; longer
// outages surface as DatabaseError, which the service retries on its side.
constexpr unsigned kAttempts = 3;

std::chrono::milliseconds Backoff(unsigned attempt) {
  return std::chrono::milliseconds(attempt <= 1 ? 0 : 100 << (2 * (attempt - 2)));
}

}  // namespace

PostgresStudyStore::PostgresStudyStore(std::string conninfo, std::string schema,
                                       StoreIdentity identity)
    : schema_(std::move(schema)),
      identity_(std::move(identity)),
      session_(std::move(conninfo), "orthanc-cloud-ingest " + identity_.node) {
  health_.kind = "postgresql";
}

void PostgresStudyStore::EnsureReady() {
  const bool connected = session_.Connect();
  if (connected || preparedGeneration_ != session_.Generation()) {
    PostgresStudyTable::UseSchema(session_, schema_);
    preparedGeneration_ = session_.Generation();
  }
  if (!schemaReady_) {
    PostgresStudyTable::CreateOrMigrate(session_, schema_);
    schemaReady_ = true;
  }
}

// Whether a write transaction whose COMMIT got no answer was applied: its
// transaction id tells, once the server answers again. Running it again
// without knowing would apply it twice: the claim-guarded writes (Update,
// Mark*, Remove and AddHistory of an attempt) would then find their claim
// gone and do nothing, but the all-time totals would count twice, a history
// entry would be doubled, an Enqueue would restart a cycle a claim may have
// started meanwhile, and a ClaimNext would claim a second study.
PostgresStudyStore::Outcome PostgresStudyStore::CommitOutcome(const std::string& transactionId,
                                                              const std::string& operation) {
  for (unsigned attempt = 1; attempt <= kAttempts; ++attempt) {
    std::this_thread::sleep_for(Backoff(attempt));
    try {
      EnsureReady();
      const PgResult status =
          session_.Exec("SELECT txid_status($1::bigint)", {transactionId}, operation);
      if (status.IsNull(0, 0)) return Outcome::Unknown;  // too old to tell
      const std::string text = status.Text(0, 0);
      if (text == "committed") return Outcome::Committed;
      if (text == "aborted") return Outcome::Aborted;
      // "in progress": the old connection's server process is still ending it.
    } catch (const PgConnectionLost&) {
      session_.Drop();
    }
  }
  return Outcome::Unknown;
}

void PostgresStudyStore::RollbackQuietly(const std::string& operation) {
  try {
    if (session_.InTransaction()) session_.Exec("ROLLBACK", operation);
  } catch (const PgConnectionLost&) {
    session_.Drop();  // the server ends the transaction with the session
  } catch (const DatabaseError&) {
    // The error that made the caller roll back says more.
  }
}

void PostgresStudyStore::Reachable() {
  health_.reachable = true;
  health_.lastError.clear();
}

void PostgresStudyStore::Unreachable(const std::string& error) {
  health_.reachable = false;
  health_.lastError = error;
}

void PostgresStudyStore::Transaction(const std::string& operation, Access access,
                                     const std::function<void(PgSession&)>& body) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (unsigned attempt = 1;; ++attempt) {
    std::this_thread::sleep_for(Backoff(attempt));
    std::string transactionId;  // set when COMMIT is sent
    try {
      EnsureReady();
      if (access == Access::Session) {
        body(session_);
        Reachable();
        return;
      }
      session_.Exec(
          access == Access::Read ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN",
          operation);
      body(session_);
      const std::string id = access == Access::Write
                                 ? session_.Exec("SELECT txid_current()", operation).Text(0, 0)
                                 : std::string("read");
      transactionId = id;
      session_.Exec("COMMIT", operation);
      Reachable();
      return;
    } catch (const PgConnectionLost& e) {
      session_.Drop();
      if (access == Access::Write && !transactionId.empty()) {
        const Outcome outcome = CommitOutcome(transactionId, operation);
        if (outcome == Outcome::Committed) {
          Reachable();
          return;
        }
        if (outcome == Outcome::Unknown) {
          Unreachable(e.what());
          throw DatabaseError(std::string(e.what()) + " (the change may or may not be applied)");
        }
      }
      if (attempt == kAttempts) {
        Unreachable(e.what());
        throw DatabaseError(e.what());
      }
    } catch (const PgConflict& e) {
      RollbackQuietly(operation);
      if (attempt == kAttempts) throw DatabaseError(e.what());
    } catch (...) {
      RollbackQuietly(operation);
      throw;
    }
  }
}

// ---- The state transitions, each one transaction

StudyRecord PostgresStudyStore::Enqueue(const EnqueueRequest& request, double now) {
  return Run("Enqueue", Access::Write, [&](PgSession& session) {
    Rows table(session, "Enqueue");
    return StudyTransitions::Enqueue(table, request, now);
  });
}

std::optional<StudyRecord> PostgresStudyStore::ClaimNext(double now) {
  return Run("ClaimNext", Access::Write, [&](PgSession& session) {
    Rows table(session, "ClaimNext");
    return StudyTransitions::ClaimNext(table, identity_, now);
  });
}

void PostgresStudyStore::Update(const StudyRecord& record, double now) {
  Run("Update", Access::Write, [&](PgSession& session) {
    Rows table(session, "Update");
    StudyTransitions::Update(table, record, now);
  });
}

void PostgresStudyStore::MarkSent(const StudyRecord& claimed, const std::string& signature,
                                  double now, bool newlySent) {
  Run("MarkSent", Access::Write, [&](PgSession& session) {
    Rows table(session, "MarkSent");
    StudyTransitions::MarkSent(table, claimed, signature, now, newlySent);
  });
}

void PostgresStudyStore::MarkRetry(const StudyRecord& claimed, const std::string& error,
                                   double nextAttemptAt, double now, RetryReason reason) {
  Run("MarkRetry", Access::Write, [&](PgSession& session) {
    Rows table(session, "MarkRetry");
    StudyTransitions::MarkRetry(table, claimed, error, nextAttemptAt, now, reason);
  });
}

void PostgresStudyStore::Postpone(const StudyRecord& claimed, double until,
                                  const std::string& reason, double now) {
  Run("Postpone", Access::Write, [&](PgSession& session) {
    Rows table(session, "Postpone");
    StudyTransitions::Postpone(table, claimed, until, reason, now);
  });
}

void PostgresStudyStore::MarkFailed(const StudyRecord& claimed, const std::string& error,
                                    double now) {
  Run("MarkFailed", Access::Write, [&](PgSession& session) {
    Rows table(session, "MarkFailed");
    StudyTransitions::MarkFailed(table, claimed, error, now);
  });
}

void PostgresStudyStore::AddHistory(const StudyRecord& claimed, const HistoryEntry& entry) {
  Run("AddHistory", Access::Write, [&](PgSession& session) {
    Rows table(session, "AddHistory");
    StudyTransitions::AddHistory(table, claimed, entry);
  });
}

void PostgresStudyStore::Remove(const StudyRecord& claimed) {
  Run("Remove", Access::Write, [&](PgSession& session) {
    Rows table(session, "Remove");
    StudyTransitions::Remove(table, claimed);
  });
}

CancelOutcome PostgresStudyStore::Cancel(const std::string& orthancId, double now) {
  return Run("Cancel", Access::Write, [&](PgSession& session) {
    Rows table(session, "Cancel");
    return StudyTransitions::Cancel(table, orthancId, now);
  });
}

unsigned PostgresStudyStore::RecoverInterrupted(double now) {
  return Run("RecoverInterrupted", Access::Write, [&](PgSession& session) {
    Rows table(session, "RecoverInterrupted");
    return StudyTransitions::RecoverInterrupted(table, identity_.node, now);
  });
}

void PostgresStudyStore::Remove(const std::string& orthancId) {
  Run("Remove", Access::Write,
      [&](PgSession& session) { Rows(session, "Remove").Delete(orthancId); });
}

void PostgresStudyStore::AddHistory(const std::string& orthancId, const HistoryEntry& entry) {
  Run("AddHistory", Access::Write,
      [&](PgSession& session) { Rows(session, "AddHistory").InsertHistory(orthancId, entry); });
}

void PostgresStudyStore::CountUpload(uint64_t bytes, unsigned instances) {
  Run("CountUpload", Access::Write, [&](PgSession& session) {
    session.Exec(
        "UPDATE totals SET instances_sent = instances_sent + $1, bytes_sent = bytes_sent + $2 "
        "WHERE id = 1",
        {PgText(int64_t{instances}), PgText(static_cast<int64_t>(bytes))}, "CountUpload");
  });
}

void PostgresStudyStore::SetChangesCursor(int64_t seq) {
  Run("SetChangesCursor", Access::Write, [&](PgSession& session) {
    session.Exec(
        "INSERT INTO settings(key, value) VALUES ('changes_cursor', $1) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        {PgText(seq)}, "SetChangesCursor");
  });
}

// ---- Reads

std::optional<double> PostgresStudyStore::NextDueTime() {
  return Run("NextDueTime", Access::Read, [&](PgSession& session) -> std::optional<double> {
    const PgResult result = session.Exec(
        "SELECT MIN(next_attempt_at) FROM studies WHERE state = 'queued'", "NextDueTime");
    if (result.IsNull(0, 0)) return std::nullopt;
    return result.Real(0, 0);
  });
}

bool PostgresStudyStore::IsCancelled(const std::string& orthancId) {
  return Run("IsCancelled", Access::Read, [&](PgSession& session) {
    const PgResult result =
        session.Exec("SELECT 1 FROM studies WHERE orthanc_id = $1 AND state = 'cancelled'",
                     {orthancId}, "IsCancelled");
    return result.Rows() > 0;
  });
}

std::optional<StudyRecord> PostgresStudyStore::Get(const std::string& orthancId) {
  return Run("Get", Access::Read, [&](PgSession& session) -> std::optional<StudyRecord> {
    const PgResult result =
        session.Exec(SelectColumns() + " WHERE orthanc_id = $1", {orthancId}, "Get");
    if (result.Rows() == 0) return std::nullopt;
    return ReadRow(result, 0, "Get").record;
  });
}

std::vector<StudyRecord> PostgresStudyStore::List(std::optional<StudyState> state, unsigned limit,
                                                  unsigned offset, double since) {
  // 0 means "as many as allowed".
  const unsigned effectiveLimit = limit == 0 ? kMaxListLimit : std::min(limit, kMaxListLimit);
  std::vector<std::string> parameters = {PgText(since), PgText(int64_t{effectiveLimit}),
                                         PgText(int64_t{offset})};
  std::string sql = SelectColumns() + " WHERE updated_at >= $1";
  if (state) {
    sql += " AND state = $4";
    parameters.push_back(ToString(*state));
  }
  sql += " ORDER BY updated_at DESC, orthanc_id LIMIT $2 OFFSET $3";
  return Run("List", Access::Read, [&](PgSession& session) {
    const PgResult result = session.Exec(sql, parameters, "List");
    std::vector<StudyRecord> studies;
    for (int i = 0; i < result.Rows(); ++i) studies.push_back(ReadRow(result, i, "List").record);
    return studies;
  });
}

QueueTotals PostgresStudyStore::Totals() {
  return Run("Totals", Access::Read, [&](PgSession& session) {
    QueueTotals totals;
    for (const StudyState state : {StudyState::Queued, StudyState::Sending, StudyState::Sent,
                                   StudyState::Failed, StudyState::Cancelled}) {
      totals.byState[state] = 0;
    }
    const PgResult states =
        session.Exec("SELECT state, COUNT(*) FROM studies GROUP BY state", "Totals");
    for (int i = 0; i < states.Rows(); ++i) {
      if (const auto state = ParseStudyState(states.Text(i, 0))) {
        totals.byState[*state] = static_cast<unsigned>(states.Int(i, 1));
      }
    }
    const PgResult all = session.Exec(
        "SELECT studies_sent, instances_sent, bytes_sent, failures, last_success FROM totals "
        "WHERE id = 1",
        "Totals");
    if (all.Rows() > 0) {
      totals.studiesSent = static_cast<uint64_t>(all.Int(0, 0));
      totals.instancesSent = static_cast<uint64_t>(all.Int(0, 1));
      totals.bytesSent = static_cast<uint64_t>(all.Int(0, 2));
      totals.failures = static_cast<uint64_t>(all.Int(0, 3));
      totals.lastSuccess = all.Real(0, 4);
    }
    return totals;
  });
}

std::vector<HistoryEntry> PostgresStudyStore::History(const std::string& orthancId,
                                                      unsigned limit) {
  // The most recent `limit` entries, oldest first (0 = all that are kept).
  const unsigned effectiveLimit = limit == 0 ? kHistoryPerStudy : std::min(limit, kHistoryPerStudy);
  return Run("History", Access::Read, [&](PgSession& session) {
    const PgResult result = session.Exec(
        "SELECT time, attempt, event, detail FROM (SELECT id, time, attempt, event, detail FROM "
        "history WHERE orthanc_id = $1 ORDER BY id DESC LIMIT $2) AS latest ORDER BY id",
        {orthancId, PgText(int64_t{effectiveLimit})}, "History");
    std::vector<HistoryEntry> entries;
    for (int i = 0; i < result.Rows(); ++i) {
      HistoryEntry entry;
      entry.time = result.Real(i, 0);
      entry.attempt = static_cast<unsigned>(result.Int(i, 1));
      entry.event = result.Text(i, 2);
      entry.detail = result.Text(i, 3);
      entries.push_back(std::move(entry));
    }
    return entries;
  });
}

int64_t PostgresStudyStore::GetChangesCursor() {
  return Run("GetChangesCursor", Access::Read, [&](PgSession& session) -> int64_t {
    const PgResult result =
        session.Exec("SELECT value FROM settings WHERE key = 'changes_cursor'", "GetChangesCursor");
    if (result.Rows() == 0 || result.IsNull(0, 0)) return -1;  // never scanned
    return result.Int(0, 0);
  });
}

// The pause switch, shared by the nodes like the rest of the queue.
QueueMode PostgresStudyStore::GetQueueMode() {
  return Run("GetQueueMode", Access::Read, [&](PgSession& session) {
    const PgResult result =
        session.Exec("SELECT value FROM settings WHERE key = 'queue_mode'", "GetQueueMode");
    const bool paused = result.Rows() > 0 && !result.IsNull(0, 0) && result.Text(0, 0) == "paused";
    return paused ? QueueMode::Paused : QueueMode::Running;
  });
}

void PostgresStudyStore::SetQueueMode(QueueMode mode) {
  Run("SetQueueMode", Access::Write, [&](PgSession& session) {
    session.Exec(
        "INSERT INTO settings(key, value) VALUES ('queue_mode', $1) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        {std::string(mode == QueueMode::Paused ? "paused" : "running")}, "SetQueueMode");
  });
}

}  // namespace CloudIngest
