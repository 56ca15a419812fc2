#include "UploadQueue.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <type_traits>

#include "SqliteStatement.h"

namespace CloudIngest {

namespace {

constexpr int kSchemaVersion = 2;
constexpr unsigned kHistoryPerStudy = 200;
constexpr unsigned kMaxListLimit = 1000;
constexpr int kBusyTimeoutMs = 10000;
const char* const kCursorKey = "changes_cursor";

const char* const kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS studies (
  orthanc_id TEXT PRIMARY KEY NOT NULL,
  study_instance_uid TEXT NOT NULL DEFAULT '',
  order_id TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  instances_sent INTEGER NOT NULL DEFAULT 0,
  instances_total INTEGER NOT NULL DEFAULT 0,
  bytes_sent INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  send_trigger TEXT NOT NULL DEFAULT '',
  mode TEXT NOT NULL DEFAULT '',
  extra_metadata TEXT NOT NULL DEFAULT '',
  requested_by TEXT NOT NULL DEFAULT '',
  sent_signature TEXT NOT NULL DEFAULT '',
  resend_requested INTEGER NOT NULL DEFAULT 0,
  patient_name TEXT NOT NULL DEFAULT '',
  patient_id TEXT NOT NULL DEFAULT '',
  study_date TEXT NOT NULL DEFAULT '',
  study_description TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL DEFAULT 0,
  updated_at REAL NOT NULL DEFAULT 0,
  next_attempt_at REAL NOT NULL DEFAULT 0,
  sent_at REAL NOT NULL DEFAULT 0,
  forced INTEGER NOT NULL DEFAULT 0,
  pending_trigger TEXT NOT NULL DEFAULT '',
  pending_mode TEXT NOT NULL DEFAULT '',
  pending_extra_metadata TEXT NOT NULL DEFAULT '',
  pending_requested_by TEXT NOT NULL DEFAULT '',
  pending_force INTEGER NOT NULL DEFAULT 0,
  sent_order_id TEXT NOT NULL DEFAULT '',
  sent_instances INTEGER NOT NULL DEFAULT 0,
  sent_bytes INTEGER NOT NULL DEFAULT 0,
  sent_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS studies_due ON studies(state, next_attempt_at);
CREATE INDEX IF NOT EXISTS studies_updated ON studies(updated_at);
CREATE TABLE IF NOT EXISTS history (
  id INTEGER PRIMARY KEY,
  orthanc_id TEXT NOT NULL REFERENCES studies(orthanc_id) ON DELETE CASCADE,
  time REAL NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  event TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS history_study ON history(orthanc_id, id);
CREATE TABLE IF NOT EXISTS totals (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  studies_sent INTEGER NOT NULL DEFAULT 0,
  instances_sent INTEGER NOT NULL DEFAULT 0,
  bytes_sent INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  last_success REAL NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO totals(id) VALUES (1);
CREATE TABLE IF NOT EXISTS settings (
  key TEXT PRIMARY KEY NOT NULL,
  value
);
)SQL";

// Version 1 -> 2: the outcome of the last real send, restored when a study is
// taken up again and found unchanged.
const char* const kMigrationTo2 = R"SQL(
ALTER TABLE studies ADD COLUMN sent_order_id TEXT NOT NULL DEFAULT '';
ALTER TABLE studies ADD COLUMN sent_instances INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN sent_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN sent_attempts INTEGER NOT NULL DEFAULT 0;
)SQL";

// A study row: the public record plus what only the queue needs. `forced`
// marks a queued manual "send even if unchanged" request; the pending_*
// fields hold a request that arrived while the study was being sent.
struct Row {
  StudyRecord record;
  bool forced = false;
  std::string pendingTrigger, pendingMode, pendingExtraMetadata, pendingRequestedBy;
  bool pendingForce = false;
  // The last send that reached the service (what an "unchanged" outcome restores).
  std::string sentOrderId;
  int64_t sentInstances = 0, sentBytes = 0, sentAttempts = 0;
};

// The studies table's columns, each mapped once to its field: reading,
// writing and the column lists all come from this one table.
struct Column {
  const char* name;
  void (*load)(Row& row, const SqliteStatement& s, int index, const std::string& operation);
  void (*save)(const Row& row, SqliteStatement& s, const std::string& parameter);
};

template <typename Owner, typename T>
Owner OwnerOf(T Owner::*);  // only named in decltype: the struct a member belongs to

template <typename Owner>
Owner& Part(Row& row) {
  if constexpr (std::is_same_v<Owner, Row>) {
    return row;
  } else {
    return row.record;
  }
}

template <typename Owner>
const Owner& Part(const Row& row) {
  if constexpr (std::is_same_v<Owner, Row>) {
    return row;
  } else {
    return row.record;
  }
}

// A column stored as its field's natural SQLite type (text, real or integer).
template <auto Member>
struct Field {
  using Owner = decltype(OwnerOf(Member));

  static void Load(Row& row, const SqliteStatement& s, int index, const std::string&) {
    auto& field = Part<Owner>(row).*Member;
    using T = std::remove_reference_t<decltype(field)>;
    if constexpr (std::is_same_v<T, std::string>) {
      field = s.Text(index);
    } else if constexpr (std::is_floating_point_v<T>) {
      field = s.Real(index);
    } else if constexpr (std::is_same_v<T, bool>) {
      field = s.Int(index) != 0;
    } else {
      field = static_cast<T>(s.Int(index));
    }
  }

  static void Save(const Row& row, SqliteStatement& s, const std::string& parameter) {
    const auto& field = Part<Owner>(row).*Member;
    using T = std::remove_cv_t<std::remove_reference_t<decltype(field)>>;
    if constexpr (std::is_same_v<T, std::string>) {
      s.Bind(parameter.c_str(), field);
    } else if constexpr (std::is_floating_point_v<T>) {
      s.Bind(parameter.c_str(), static_cast<double>(field));
    } else {
      s.Bind(parameter.c_str(), static_cast<int64_t>(field));
    }
  }
};

void LoadState(Row& row, const SqliteStatement& s, int index, const std::string& operation) {
  const std::string state = s.Text(index);
  const auto parsed = ParseStudyState(state);
  if (!parsed) {
    // orthanc_id is column 0, read first.
    throw DatabaseError("plugin database, " + operation + ": unknown state '" + state +
                        "' for study " + row.record.orthancId);
  }
  row.record.state = *parsed;
}

void SaveState(const Row& row, SqliteStatement& s, const std::string& parameter) {
  s.Bind(parameter.c_str(), ToString(row.record.state));
}

template <auto Member>
constexpr Column Map(const char* name) {
  return {name, &Field<Member>::Load, &Field<Member>::Save};
}

const Column kStudyColumns[] = {
    Map<&StudyRecord::orthancId>("orthanc_id"),
    Map<&StudyRecord::studyInstanceUid>("study_instance_uid"),
    Map<&StudyRecord::orderId>("order_id"),
    {"state", &LoadState, &SaveState},
    Map<&StudyRecord::instancesSent>("instances_sent"),
    Map<&StudyRecord::instancesTotal>("instances_total"),
    Map<&StudyRecord::bytesSent>("bytes_sent"),
    Map<&StudyRecord::attempts>("attempts"),
    Map<&StudyRecord::lastError>("last_error"),
    Map<&StudyRecord::trigger>("send_trigger"),
    Map<&StudyRecord::mode>("mode"),
    Map<&StudyRecord::extraMetadata>("extra_metadata"),
    Map<&StudyRecord::requestedBy>("requested_by"),
    Map<&StudyRecord::sentSignature>("sent_signature"),
    Map<&StudyRecord::resendRequested>("resend_requested"),
    Map<&StudyRecord::patientName>("patient_name"),
    Map<&StudyRecord::patientId>("patient_id"),
    Map<&StudyRecord::studyDate>("study_date"),
    Map<&StudyRecord::studyDescription>("study_description"),
    Map<&StudyRecord::createdAt>("created_at"),
    Map<&StudyRecord::updatedAt>("updated_at"),
    Map<&StudyRecord::nextAttemptAt>("next_attempt_at"),
    Map<&StudyRecord::sentAt>("sent_at"),
    Map<&Row::forced>("forced"),
    Map<&Row::pendingTrigger>("pending_trigger"),
    Map<&Row::pendingMode>("pending_mode"),
    Map<&Row::pendingExtraMetadata>("pending_extra_metadata"),
    Map<&Row::pendingRequestedBy>("pending_requested_by"),
    Map<&Row::pendingForce>("pending_force"),
    Map<&Row::sentOrderId>("sent_order_id"),
    Map<&Row::sentInstances>("sent_instances"),
    Map<&Row::sentBytes>("sent_bytes"),
    Map<&Row::sentAttempts>("sent_attempts"),
};

// "a, b, c" with each name wrapped as prefix + name + suffix.
std::string ColumnList(const std::string& prefix = "", const std::string& suffix = "") {
  std::string list;
  for (const Column& column : kStudyColumns) {
    list += (list.empty() ? "" : ", ") + prefix + column.name + suffix;
  }
  return list;
}

const std::string& SelectColumns() {
  static const std::string sql = "SELECT " + ColumnList() + " FROM studies";
  return sql;
}

Row ReadRow(const SqliteStatement& s, const std::string& operation) {
  Row row;
  int index = 0;
  for (const Column& column : kStudyColumns) {
    column.load(row, s, index++, operation);
  }
  return row;
}

std::optional<Row> LoadRow(sqlite3* db, const std::string& orthancId,
                           const std::string& operation) {
  SqliteStatement s(db, SelectColumns() + " WHERE orthanc_id = :id", operation);
  s.Bind(":id", orthancId);
  if (!s.Step()) {
    return std::nullopt;
  }
  return ReadRow(s, operation);
}

void SaveRow(sqlite3* db, const Row& row, const std::string& operation) {
  // An upsert, not INSERT OR REPLACE: a replace deletes the row first, which
  // would cascade to the study's history.
  static const std::string sql = [] {
    std::string updates;
    for (const Column& column : kStudyColumns) {
      if (std::string(column.name) != "orthanc_id") {
        updates +=
            (updates.empty() ? "" : ", ") + std::string(column.name) + " = excluded." + column.name;
      }
    }
    return "INSERT INTO studies(" + ColumnList() + ") VALUES (" + ColumnList(":") +
           ") ON CONFLICT(orthanc_id) DO UPDATE SET " + updates;
  }();
  SqliteStatement s(db, sql, operation);
  for (const Column& column : kStudyColumns) {
    column.save(row, s, std::string(":") + column.name);
  }
  s.Run();
}

void InsertHistory(sqlite3* db, const std::string& orthancId, const HistoryEntry& entry,
                   const std::string& operation) {
  // Silently nothing for an unknown study (e.g. removed while being sent).
  SqliteStatement insert(db,
                         "INSERT INTO history(orthanc_id, time, attempt, event, detail) "
                         "SELECT :id, :time, :attempt, :event, :detail "
                         "WHERE EXISTS (SELECT 1 FROM studies WHERE orthanc_id = :id)",
                         operation);
  insert.Bind(":id", orthancId)
      .Bind(":time", entry.time)
      .Bind(":attempt", static_cast<int64_t>(entry.attempt))
      .Bind(":event", entry.event)
      .Bind(":detail", entry.detail)
      .Run();
  SqliteStatement prune(db,
                        "DELETE FROM history WHERE orthanc_id = :id AND id <= "
                        "(SELECT id FROM history WHERE orthanc_id = :id "
                        "ORDER BY id DESC LIMIT 1 OFFSET :keep)",
                        operation);
  prune.Bind(":id", orthancId).Bind(":keep", static_cast<int64_t>(kHistoryPerStudy)).Run();
}

void AddEvent(sqlite3* db, const StudyRecord& record, const std::string& event,
              const std::string& detail, double now, const std::string& operation) {
  HistoryEntry entry;
  entry.time = now;
  entry.attempt = record.attempts;
  entry.event = event;
  entry.detail = detail;
  InsertHistory(db, record.orthancId, entry, operation);
}

std::string DescribeRequest(const std::string& trigger, const std::string& user, bool force) {
  std::string text = trigger.empty() ? "auto" : trigger;
  if (!user.empty()) {
    text += " by " + user;
  }
  if (force) {
    text += " (forced)";
  }
  return text;
}

// A new send cycle: what Enqueue does to a study that is not being sent.
void StartNewCycle(StudyRecord& r, double now) {
  r.state = StudyState::Queued;
  r.nextAttemptAt = now;
  r.updatedAt = now;
  r.attempts = 0;
  r.lastError.clear();
  r.orderId.clear();  // a new cycle gets a new order
  r.instancesSent = 0;
  r.bytesSent = 0;
  r.resendRequested = false;
}

void ClearPending(Row& row) {
  row.record.resendRequested = false;
  row.pendingTrigger.clear();
  row.pendingMode.clear();
  row.pendingExtraMetadata.clear();
  row.pendingRequestedBy.clear();
  row.pendingForce = false;
}

// The request stored while sending becomes the study's current request.
void ApplyPending(Row& row) {
  StudyRecord& r = row.record;
  r.trigger = row.pendingTrigger;
  r.mode = row.pendingMode;
  r.extraMetadata = row.pendingExtraMetadata;
  r.requestedBy = row.pendingRequestedBy;
  row.forced = row.pendingForce;
  if (row.pendingForce) {
    r.sentSignature.clear();
  }
  ClearPending(row);
}

// A send ended while a new event was waiting: queue it again, due now.
void RequeueForPending(sqlite3* db, Row& row, double now, const std::string& operation) {
  ApplyPending(row);
  StartNewCycle(row.record, now);
  AddEvent(db, row.record, "queued", row.record.trigger + ": changed while sending", now,
           operation);
}

void BumpTotals(sqlite3* db, const char* assignments, double now, const std::string& operation) {
  SqliteStatement s(db, std::string("UPDATE totals SET ") + assignments + " WHERE id = 1",
                    operation);
  if (std::string(assignments).find(":now") != std::string::npos) {
    s.Bind(":now", now);
  }
  s.Run();
}

std::string ParentDirectory(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

UploadQueue::UploadQueue(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "cannot open the plugin database '" + path +
                          "': " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    struct stat info {};
    const std::string parent = ParentDirectory(path);
    if (stat(parent.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
      message += " (directory '" + parent + "' does not exist; create it or change \"Database\")";
    }
    throw DatabaseError(message);
  }
  try {
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    // WAL + synchronous=NORMAL: a commit survives the process being killed
    // (not necessarily a power cut), without an fsync per transaction.
    ExecSql(db, "PRAGMA journal_mode=WAL", "open '" + path + "'");
    ExecSql(db, "PRAGMA synchronous=NORMAL", "open '" + path + "'");
    ExecSql(db, "PRAGMA foreign_keys=ON", "open '" + path + "'");

    const std::string operation = "create schema in '" + path + "'";
    SqliteTransaction transaction(db, true, operation);
    SqliteStatement version(db, "PRAGMA user_version", operation);
    version.Step();
    const int64_t current = version.Int(0);
    if (current > kSchemaVersion) {
      throw DatabaseError("plugin database '" + path + "' has schema version " +
                          std::to_string(current) + ", newer than this plugin's (" +
                          std::to_string(kSchemaVersion) + ")");
    }
    if (current == 1) ExecSql(db, kMigrationTo2, operation);
    if (current < kSchemaVersion) {
      ExecSql(db, kSchema, operation);
      ExecSql(db, "PRAGMA user_version=" + std::to_string(kSchemaVersion), operation);
    }
    transaction.Commit();
  } catch (...) {
    sqlite3_close_v2(db);
    throw;
  }
  db_ = db;
}

UploadQueue::~UploadQueue() {
  sqlite3_close_v2(db_);
}

StudyRecord UploadQueue::Enqueue(const EnqueueRequest& request, double now) {
  static const std::string op = "Enqueue";
  if (request.orthancId.empty()) {
    throw DatabaseError("plugin database, Enqueue: empty study id");
  }
  // A forced send is a manual one, whatever the caller wrote.
  const std::string trigger = request.force ? "manual" : request.trigger;
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, op);
  std::optional<Row> existing = LoadRow(db_, request.orthancId, op);
  Row row;
  std::string detail = DescribeRequest(trigger, request.requestedBy, request.force);
  if (!existing) {
    StudyRecord& r = row.record;
    r.orthancId = request.orthancId;
    r.state = StudyState::Queued;
    r.createdAt = r.updatedAt = r.nextAttemptAt = now;
    r.trigger = trigger;
    r.mode = request.mode;
    r.extraMetadata = request.extraMetadata;
    r.requestedBy = request.requestedBy;
    row.forced = request.force;
  } else if (existing->record.state == StudyState::Sending) {
    row = std::move(*existing);
    row.record.resendRequested = true;
    row.record.updatedAt = now;
    // A forced manual request already waiting is not downgraded by an automatic one.
    if (request.force || !row.pendingForce) {
      row.pendingTrigger = trigger;
      row.pendingMode = request.mode;
      row.pendingExtraMetadata = request.extraMetadata;
      row.pendingRequestedBy = request.requestedBy;
      row.pendingForce = request.force;
    }
    detail += ": resend requested while sending";
  } else {
    row = std::move(*existing);
    // Same rule for a forced request still waiting in the queue.
    const bool keepForced = row.record.state == StudyState::Queued && row.forced && !request.force;
    StartNewCycle(row.record, now);
    if (!keepForced) {
      row.record.trigger = trigger;
      row.record.mode = request.mode;
      row.record.extraMetadata = request.extraMetadata;
      row.record.requestedBy = request.requestedBy;
      row.forced = request.force;
    }
    if (request.force) {
      row.record.sentSignature.clear();  // so the sender does not skip it as unchanged
    }
  }
  SaveRow(db_, row, op);
  AddEvent(db_, row.record, "queued", detail, now, op);
  transaction.Commit();
  return row.record;
}

std::optional<StudyRecord> UploadQueue::ClaimNext(double now) {
  static const std::string op = "ClaimNext";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, op);
  std::string id;
  {
    SqliteStatement s(db_,
                      "SELECT orthanc_id FROM studies WHERE state = 'queued' AND "
                      "next_attempt_at <= :now ORDER BY next_attempt_at, created_at, orthanc_id "
                      "LIMIT 1",
                      op);
    s.Bind(":now", now);
    if (!s.Step()) {
      transaction.Commit();
      return std::nullopt;
    }
    id = s.Text(0);
  }
  std::optional<Row> row = LoadRow(db_, id, op);
  if (!row) {
    throw DatabaseError("plugin database, ClaimNext: study vanished: " + id);
  }
  StudyRecord& r = row->record;
  r.state = StudyState::Sending;
  r.attempts += 1;
  r.updatedAt = now;
  SaveRow(db_, *row, op);
  AddEvent(db_, r, "started", DescribeRequest(r.trigger, r.requestedBy, row->forced), now, op);
  transaction.Commit();
  return r;
}

std::optional<double> UploadQueue::NextDueTime() {
  static const std::string op = "NextDueTime";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_, "SELECT MIN(next_attempt_at) FROM studies WHERE state = 'queued'", op);
  if (!s.Step() || s.IsNull(0)) {
    return std::nullopt;
  }
  return s.Real(0);
}

void UploadQueue::Update(const StudyRecord& record, double now) {
  static const std::string op = "Update";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, op);
  std::optional<Row> row = LoadRow(db_, record.orthancId, op);
  if (!row) {
    transaction.Commit();  // removed meanwhile: progress is not a reason to recreate it
    return;
  }
  // Progress and identity only: states move through Claim/Mark*/Cancel.
  StudyRecord& r = row->record;
  r.studyInstanceUid = record.studyInstanceUid;
  r.orderId = record.orderId;
  r.instancesSent = record.instancesSent;
  r.instancesTotal = record.instancesTotal;
  r.bytesSent = record.bytesSent;
  r.patientName = record.patientName;
  r.patientId = record.patientId;
  r.studyDate = record.studyDate;
  r.studyDescription = record.studyDescription;
  r.lastError = record.lastError;
  r.updatedAt = now;
  SaveRow(db_, *row, op);
  transaction.Commit();
}

void UploadQueue::MarkSent(const std::string& orthancId, const std::string& signature, double now,
                           bool newlySent) {
  static const std::string op = "MarkSent";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, op);
  // The study did reach the service, whatever happened to its row meanwhile.
  if (newlySent) BumpTotals(db_, "studies_sent = studies_sent + 1, last_success = :now", now, op);
  std::optional<Row> row = LoadRow(db_, orthancId, op);
  // Cancelled too: a cancel that came too late to stop the last upload must
  // not hide that the study was sent.
  if (row &&
      (row->record.state == StudyState::Sending || row->record.state == StudyState::Cancelled)) {
    StudyRecord& r = row->record;
    r.state = StudyState::Sent;
    if (newlySent) {
      r.sentAt = now;
      row->sentOrderId = r.orderId;
      row->sentInstances = r.instancesSent;
      row->sentBytes = static_cast<int64_t>(r.bytesSent);
      row->sentAttempts = r.attempts;
    } else {
      // Found unchanged: the entry shows the send that really happened.
      r.orderId = row->sentOrderId;
      r.instancesSent = static_cast<unsigned>(row->sentInstances);
      r.bytesSent = static_cast<uint64_t>(row->sentBytes);
      r.attempts = static_cast<unsigned>(row->sentAttempts);
    }
    r.sentSignature = signature;
    r.lastError.clear();
    r.updatedAt = now;
    row->forced = false;
    if (newlySent) {
      AddEvent(
          db_, r, "sent",
          std::to_string(r.instancesSent) + " instances, " + std::to_string(r.bytesSent) + " bytes",
          now, op);
    }
    if (r.resendRequested) {
      RequeueForPending(db_, *row, now, op);
    }
    SaveRow(db_, *row, op);
  }
  transaction.Commit();
}

void UploadQueue::MarkRetry(const std::string& orthancId, const std::string& error,
                            double nextAttemptAt, double now, bool isFailure) {
  static const std::string op = "MarkRetry";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, op);
  if (isFailure) BumpTotals(db_, "failures = failures + 1", now, op);
  std::optional<Row> row = LoadRow(db_, orthancId, op);
  if (row && row->record.state == StudyState::Sending) {
    StudyRecord& r = row->record;
    r.state = StudyState::Queued;
    r.nextAttemptAt = nextAttemptAt;
    r.lastError = error;
    r.updatedAt = now;
    if (r.resendRequested) {
      // It is going to be sent again anyway; keep what the new request asked for.
      ApplyPending(*row);
    }
    AddEvent(db_, r, "retry", error, now, op);
    SaveRow(db_, *row, op);
  } else if (row && row->record.state == StudyState::Cancelled) {
    row->record.lastError = error;
    row->record.updatedAt = now;
    AddEvent(db_, row->record, "failed", error + " (cancelled: not retried)", now, op);
    SaveRow(db_, *row, op);
  }
  transaction.Commit();
}

void UploadQueue::MarkFailed(const std::string& orthancId, const std::string& error, double now) {
  static const std::string op = "MarkFailed";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, op);
  BumpTotals(db_, "failures = failures + 1", now, op);
  std::optional<Row> row = LoadRow(db_, orthancId, op);
  if (row && row->record.state == StudyState::Sending) {
    StudyRecord& r = row->record;
    r.state = StudyState::Failed;
    r.lastError = error;
    r.updatedAt = now;
    AddEvent(db_, r, "failed", error, now, op);
    if (r.resendRequested) {
      RequeueForPending(db_, *row, now, op);  // a new event arrived: try again
    }
    SaveRow(db_, *row, op);
  } else if (row && row->record.state == StudyState::Cancelled) {
    row->record.lastError = error;
    row->record.updatedAt = now;
    AddEvent(db_, row->record, "failed", error + " (cancelled)", now, op);
    SaveRow(db_, *row, op);
  }
  transaction.Commit();
}

bool UploadQueue::Cancel(const std::string& orthancId, double now) {
  static const std::string op = "Cancel";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, op);
  std::optional<Row> row = LoadRow(db_, orthancId, op);
  if (!row ||
      (row->record.state != StudyState::Queued && row->record.state != StudyState::Sending)) {
    transaction.Commit();
    return false;
  }
  const bool wasSending = row->record.state == StudyState::Sending;
  row->record.state = StudyState::Cancelled;
  row->record.updatedAt = now;
  row->forced = false;
  ClearPending(*row);
  SaveRow(db_, *row, op);
  AddEvent(db_, row->record, "cancelled", wasSending ? "while sending" : "while queued", now, op);
  transaction.Commit();
  return true;
}

bool UploadQueue::IsCancelled(const std::string& orthancId) {
  static const std::string op = "IsCancelled";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_, "SELECT state FROM studies WHERE orthanc_id = :id", op);
  s.Bind(":id", orthancId);
  return s.Step() && s.Text(0) == ToString(StudyState::Cancelled);
}

void UploadQueue::Remove(const std::string& orthancId) {
  static const std::string op = "Remove";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, op);
  SqliteStatement s(db_, "DELETE FROM studies WHERE orthanc_id = :id", op);  // cascades
  s.Bind(":id", orthancId).Run();
  transaction.Commit();
}

unsigned UploadQueue::RecoverInterrupted(double now) {
  static const std::string op = "RecoverInterrupted";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, op);
  std::vector<std::string> ids;
  {
    SqliteStatement s(db_, "SELECT orthanc_id FROM studies WHERE state = 'sending'", op);
    while (s.Step()) {
      ids.push_back(s.Text(0));
    }
  }
  for (const std::string& id : ids) {
    std::optional<Row> row = LoadRow(db_, id, op);
    if (!row) {
      continue;
    }
    if (row->record.resendRequested) {
      ApplyPending(*row);
      StartNewCycle(row->record, now);
    } else {
      // Same cycle: the interrupted attempt still counts.
      row->record.state = StudyState::Queued;
      row->record.nextAttemptAt = now;
      row->record.updatedAt = now;
    }
    SaveRow(db_, *row, op);
    AddEvent(db_, row->record, "recovered after restart", "", now, op);
  }
  transaction.Commit();
  return static_cast<unsigned>(ids.size());
}

std::optional<StudyRecord> UploadQueue::Get(const std::string& orthancId) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::optional<Row> row = LoadRow(db_, orthancId, "Get");
  if (!row) {
    return std::nullopt;
  }
  return row->record;
}

std::vector<StudyRecord> UploadQueue::List(std::optional<StudyState> state, unsigned limit,
                                           unsigned offset, double since) {
  static const std::string op = "List";
  // 0 means "as many as allowed".
  const unsigned effectiveLimit = limit == 0 ? kMaxListLimit : std::min(limit, kMaxListLimit);
  std::string sql = SelectColumns() + " WHERE updated_at >= :since";
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
    result.push_back(ReadRow(s, op).record);
  }
  return result;
}

QueueTotals UploadQueue::Totals() {
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

void UploadQueue::AddHistory(const std::string& orthancId, const HistoryEntry& entry) {
  static const std::string op = "AddHistory";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteTransaction transaction(db_, true, op);
  InsertHistory(db_, orthancId, entry, op);
  transaction.Commit();
}

std::vector<HistoryEntry> UploadQueue::History(const std::string& orthancId, unsigned limit) {
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

void UploadQueue::CountUpload(uint64_t bytes, unsigned instances) {
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

int64_t UploadQueue::GetChangesCursor() {
  static const std::string op = "GetChangesCursor";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_, "SELECT value FROM settings WHERE key = :key", op);
  s.Bind(":key", std::string(kCursorKey));
  if (!s.Step() || s.IsNull(0)) {
    return -1;  // never scanned
  }
  return s.Int(0);
}

void UploadQueue::SetChangesCursor(int64_t seq) {
  static const std::string op = "SetChangesCursor";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_,
                    "INSERT INTO settings(key, value) VALUES (:key, :value) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    op);
  s.Bind(":key", std::string(kCursorKey)).Bind(":value", seq).Run();
}

}  // namespace CloudIngest
