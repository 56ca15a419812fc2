#include "Core/Store/PostgresStudyTable.h"

#include <variant>

namespace CloudIngest::PostgresStudyTable {

namespace {

constexpr int64_t kSchemaVersion = 1;

// The studies table is created from StudyColumns(); everything else here.
const char* const kOtherTables = R"SQL(
CREATE INDEX IF NOT EXISTS studies_due ON studies(state, next_attempt_at);
CREATE INDEX IF NOT EXISTS studies_updated ON studies(updated_at);
CREATE INDEX IF NOT EXISTS studies_node ON studies(node) WHERE state = 'sending';
CREATE TABLE IF NOT EXISTS history (
  id BIGSERIAL PRIMARY KEY,
  orthanc_id TEXT NOT NULL REFERENCES studies(orthanc_id) ON DELETE CASCADE,
  time DOUBLE PRECISION NOT NULL,
  attempt BIGINT NOT NULL DEFAULT 0,
  event TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS history_study ON history(orthanc_id, id);
CREATE TABLE IF NOT EXISTS totals (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  studies_sent BIGINT NOT NULL DEFAULT 0,
  instances_sent BIGINT NOT NULL DEFAULT 0,
  bytes_sent BIGINT NOT NULL DEFAULT 0,
  failures BIGINT NOT NULL DEFAULT 0,
  last_success DOUBLE PRECISION NOT NULL DEFAULT 0
);
INSERT INTO totals(id) VALUES (1) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS nodes (
  name TEXT PRIMARY KEY NOT NULL,
  last_heartbeat DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS receipts (
  orthanc_id TEXT PRIMARY KEY NOT NULL,
  receipt TEXT NOT NULL
);
)SQL";

std::string StudiesTable() {
  std::string columns;
  for (const StudyColumn& column : StudyColumns()) {
    columns += std::string(columns.empty() ? "" : ",\n  ") + column.name + " " +
               ColumnDefinition(column, "DOUBLE PRECISION", "BIGINT");
  }
  return "CREATE TABLE IF NOT EXISTS studies (\n  " + columns + "\n);";
}

std::string Text(const ColumnValue& value) {
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  if (const auto* real = std::get_if<double>(&value)) return PgText(*real);
  return PgText(std::get<int64_t>(value));
}

std::vector<std::string> Ids(const PgResult& result) {
  std::vector<std::string> ids;
  for (int i = 0; i < result.Rows(); ++i) ids.push_back(result.Text(i, 0));
  return ids;
}

}  // namespace

void UseSchema(PgSession& session, const std::string& schema) {
  const std::string op = "use schema";
  session.Exec("SET search_path TO " + session.QuoteIdentifier(schema, op), op);
}

void CreateOrMigrate(PgSession& session, const std::string& schema) {
  const std::string op = "create schema";
  const std::string quoted = session.QuoteIdentifier(schema, op);
  session.Exec("BEGIN", op);
  try {
    session.Exec("SELECT pg_advisory_xact_lock($1, hashtext($2))",
                 {PgText(int64_t{kSchemaLockClass}), schema}, op);
    session.Exec("CREATE SCHEMA IF NOT EXISTS " + quoted, op);
    session.Exec("CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY NOT NULL, value TEXT)",
                 op);
    const PgResult version =
        session.Exec("SELECT value FROM settings WHERE key = 'schema_version'", op);
    const int64_t current = version.Rows() > 0 ? std::stoll(version.Text(0, 0)) : 0;
    if (current > kSchemaVersion) {
      throw DatabaseError("plugin database: schema " + quoted + " has version " +
                          std::to_string(current) + ", newer than this plugin's (" +
                          std::to_string(kSchemaVersion) + ")");
    }
    if (current < kSchemaVersion) {
      // Version 1 is the first: later versions add their steps here, as the
      // SQLite store's do.
      session.ExecScript(StudiesTable() + kOtherTables, op);
      session.Exec(
          "INSERT INTO settings(key, value) VALUES ('schema_version', $1) "
          "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          {PgText(kSchemaVersion)}, op);
    }
    session.Exec("COMMIT", op);
  } catch (const PgConnectionLost&) {
    throw;  // the session is dropped by the caller
  } catch (...) {
    try {
      if (session.InTransaction()) session.Exec("ROLLBACK", op);
    } catch (const DatabaseError&) {  // the original error says more
    }
    throw;
  }
}

const std::string& SelectColumns() {
  static const std::string sql = "SELECT " + StudyColumnList() + " FROM studies";
  return sql;
}

StudyRow ReadRow(const PgResult& result, int row, const std::string& operation) {
  return ReadStudyRow(
      [&result, row](int index, ColumnType type) -> ColumnValue {
        switch (type) {
          case ColumnType::Text:
            return result.Text(row, index);
          case ColumnType::Real:
            return result.Real(row, index);
          case ColumnType::Integer:
            break;
        }
        return result.Int(row, index);
      },
      operation);
}

std::optional<StudyRow> Rows::Load(const std::string& orthancId) {
  const std::string sql = SelectColumns() + " WHERE orthanc_id = $1 FOR UPDATE";
  PgResult result = session_.Exec(sql, {orthancId}, operation_);
  if (result.Rows() == 0) {
    // No row to lock yet: two nodes enqueueing the same new study would both
    // insert it, the second overwriting the first (and a claim made between
    // the two). A lock on the id until the end of the transaction makes the
    // second wait, then find the first's row.
    session_.Exec("SELECT pg_advisory_xact_lock($1, hashtext($2))",
                  {PgText(int64_t{kNewStudyLockClass}), orthancId}, operation_);
    result = session_.Exec(sql, {orthancId}, operation_);
  }
  if (result.Rows() == 0) return std::nullopt;
  return ReadRow(result, 0, operation_);
}

void Rows::Save(const StudyRow& row) {
  // An upsert, not a delete and insert, which would cascade to the history.
  static const std::string sql = [] {
    std::string names, values, updates;
    int index = 0;
    for (const StudyColumn& column : StudyColumns()) {
      const std::string name = column.name;
      names += (names.empty() ? "" : ", ") + name;
      values += (values.empty() ? "$" : ", $") + std::to_string(++index);
      if (name != "orthanc_id") {
        updates += (updates.empty() ? "" : ", ") + name + " = excluded." + name;
      }
    }
    return "INSERT INTO studies(" + names + ") VALUES (" + values +
           ") ON CONFLICT (orthanc_id) DO UPDATE SET " + updates;
  }();
  std::vector<std::string> parameters;
  for (const StudyColumn& column : StudyColumns()) parameters.push_back(Text(column.get(row)));
  session_.Exec(sql, parameters, operation_);
}

void Rows::Delete(const std::string& orthancId) {
  session_.Exec("DELETE FROM studies WHERE orthanc_id = $1", {orthancId}, operation_);  // cascades
}

void Rows::InsertHistory(const std::string& orthancId, const HistoryEntry& entry) {
  session_.Exec(
      "INSERT INTO history(orthanc_id, time, attempt, event, detail) "
      "SELECT $1::text, $2::double precision, $3::bigint, $4::text, $5::text "
      "WHERE EXISTS (SELECT 1 FROM studies WHERE orthanc_id = $1::text)",
      {orthancId, PgText(entry.time), PgText(int64_t{entry.attempt}), entry.event, entry.detail},
      operation_);
  session_.Exec(
      "DELETE FROM history WHERE orthanc_id = $1 AND id <= (SELECT id FROM history WHERE "
      "orthanc_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)",
      {orthancId, PgText(int64_t{kHistoryPerStudy})}, operation_);
}

void Rows::Count(Tally tally, double now) {
  if (tally == Tally::StudySent) {
    session_.Exec(
        "UPDATE totals SET studies_sent = studies_sent + 1, last_success = $1 WHERE id = 1",
        {PgText(now)}, operation_);
  } else {
    session_.Exec("UPDATE totals SET failures = failures + 1 WHERE id = 1", operation_);
  }
}

const std::string& ServerEpochSql() {
  // clock_timestamp(), not now(): now() is when the transaction began, and a
  // lease written later would run short of its length by the difference.
  static const std::string sql = "extract(epoch from clock_timestamp())::double precision";
  return sql;
}

double Rows::LeaseNow(double) {
  return session_.Exec("SELECT " + ServerEpochSql(), operation_).Real(0, 0);
}

std::optional<std::string> Rows::NextClaimable(double dueBy, double leaseNow) {
  // SKIP LOCKED: a study another node is claiming right now is passed over,
  // not waited for, and never handed out twice.
  const PgResult result = session_.Exec(
      "SELECT orthanc_id FROM studies WHERE (state = 'queued' AND next_attempt_at <= $1) OR "
      "(state = 'sending' AND lease_expires_at < $2) ORDER BY CASE state WHEN 'queued' THEN "
      "next_attempt_at ELSE lease_expires_at END, created_at, orthanc_id LIMIT 1 "
      "FOR UPDATE SKIP LOCKED",
      {PgText(dueBy), PgText(leaseNow)}, operation_);
  if (result.Rows() == 0) return std::nullopt;
  return result.Text(0, 0);
}

std::vector<std::string> Rows::SendingFor(const std::string& node) {
  return Ids(session_.Exec(
      "SELECT orthanc_id FROM studies WHERE state = 'sending' AND node IN ($1, '') FOR UPDATE",
      {node}, operation_));
}

}  // namespace CloudIngest::PostgresStudyTable
