#include "Core/Store/SqliteStudyTable.h"

#include <sqlite3.h>

#include <variant>

#include "Core/Store/SqliteStatement.h"

namespace CloudIngest::SqliteStudyTable {

namespace {

constexpr int kSchemaVersion = 5;

// The studies table is created from StudyColumns(); everything else here.
const char* const kOtherTables = R"SQL(
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
CREATE TABLE IF NOT EXISTS nodes (
  name TEXT PRIMARY KEY NOT NULL,
  last_heartbeat REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS receipts (
  orthanc_id TEXT PRIMARY KEY NOT NULL,
  receipt TEXT NOT NULL
);
)SQL";

std::string Schema() {
  std::string columns;
  for (const StudyColumn& column : StudyColumns()) {
    columns += std::string(columns.empty() ? "" : ",\n  ") + column.name + " " +
               ColumnDefinition(column, "REAL", "INTEGER");
  }
  return "CREATE TABLE IF NOT EXISTS studies (\n  " + columns + "\n);" + kOtherTables;
}

}  // namespace

void CreateOrMigrate(sqlite3* db, const std::string& path) {
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
  // 0 is a new file: the schema creates every column.
  for (const StudyColumn& column : StudyColumns()) {
    if (current >= 1 && column.sqliteSince > current) {
      ExecSql(db,
              std::string("ALTER TABLE studies ADD COLUMN ") + column.name + " " +
                  ColumnDefinition(column, "REAL", "INTEGER"),
              operation);
    }
  }
  if (current < kSchemaVersion) {
    ExecSql(db, Schema(), operation);
    ExecSql(db, "PRAGMA user_version=" + std::to_string(kSchemaVersion), operation);
  }
  transaction.Commit();
}

const std::string& SelectColumns() {
  static const std::string sql = "SELECT " + StudyColumnList() + " FROM studies";
  return sql;
}

Row ReadRow(const SqliteStatement& s, const std::string& operation) {
  return ReadStudyRow(
      [&s](int index, ColumnType type) -> ColumnValue {
        switch (type) {
          case ColumnType::Text:
            return s.Text(index);
          case ColumnType::Real:
            return s.Real(index);
          case ColumnType::Integer:
            break;
        }
        return s.Int(index);
      },
      operation);
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

void Rows::Save(const StudyRow& row) {
  sqlite3* const db = db_;
  const std::string& operation = operation_;
  // An upsert, not INSERT OR REPLACE: a replace deletes the row first, which
  // would cascade to the study's history.
  static const std::string sql = [] {
    std::string updates;
    for (const StudyColumn& column : StudyColumns()) {
      if (std::string(column.name) != "orthanc_id") {
        updates +=
            (updates.empty() ? "" : ", ") + std::string(column.name) + " = excluded." + column.name;
      }
    }
    return "INSERT INTO studies(" + StudyColumnList() + ") VALUES (" + StudyColumnList(":") +
           ") ON CONFLICT(orthanc_id) DO UPDATE SET " + updates;
  }();
  SqliteStatement s(db, sql, operation);
  for (const StudyColumn& column : StudyColumns()) {
    const std::string parameter = std::string(":") + column.name;
    std::visit([&](const auto& value) { s.Bind(parameter.c_str(), value); }, column.get(row));
  }
  s.Run();
}

void Rows::InsertHistory(const std::string& orthancId, const HistoryEntry& entry) {
  sqlite3* const db = db_;
  const std::string& operation = operation_;
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

std::optional<StudyRow> Rows::Load(const std::string& orthancId) {
  return LoadRow(db_, orthancId, operation_);
}

void Rows::Delete(const std::string& orthancId) {
  SqliteStatement s(db_, "DELETE FROM studies WHERE orthanc_id = :id", operation_);  // cascades
  s.Bind(":id", orthancId).Run();
}

void Rows::Count(Tally tally, double now) {
  const char* const sql =
      tally == Tally::StudySent
          ? "UPDATE totals SET studies_sent = studies_sent + 1, last_success = :now WHERE id = 1"
          : "UPDATE totals SET failures = failures + 1 WHERE id = 1";
  SqliteStatement s(db_, sql, operation_);
  if (tally == Tally::StudySent) s.Bind(":now", now);
  s.Run();
}

std::optional<std::string> Rows::NextClaimable(double dueBy, double leaseNow) {
  SqliteStatement s(db_,
                    "SELECT orthanc_id FROM studies WHERE (state = 'queued' AND next_attempt_at "
                    "<= :due) OR (state = 'sending' AND lease_expires_at < :lease) ORDER BY CASE "
                    "state WHEN 'queued' THEN next_attempt_at ELSE lease_expires_at END, "
                    "created_at, orthanc_id LIMIT 1",
                    operation_);
  s.Bind(":due", dueBy);
  s.Bind(":lease", leaseNow);
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

std::vector<std::string> Rows::SendingFor(const std::string& node) {
  SqliteStatement s(
      db_, "SELECT orthanc_id FROM studies WHERE state = 'sending' AND node IN (:node, '')",
      operation_);
  s.Bind(":node", node);
  std::vector<std::string> ids;
  while (s.Step()) ids.push_back(s.Text(0));
  return ids;
}

}  // namespace CloudIngest::SqliteStudyTable
