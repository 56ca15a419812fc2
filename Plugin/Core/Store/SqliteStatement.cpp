#include "Core/Store/SqliteStatement.h"

#include <sqlite3.h>

#include <utility>

namespace CloudIngest {

namespace {

[[noreturn]] void Throw(int code, const std::string& message) {
  // Primary code: the extended ones (e.g. SQLITE_CORRUPT_INDEX) share its low byte.
  const int primary = code & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) throw CorruptDatabaseError(message);
  throw DatabaseError(message);
}

}  // namespace

void ThrowSqliteError(sqlite3* db, const std::string& operation) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
  Throw(db != nullptr ? sqlite3_extended_errcode(db) : SQLITE_NOMEM,
        "plugin database, " + operation + ": " + message);
}

void ExecSql(sqlite3* db, const std::string& sql, const std::string& operation) {
  char* error = nullptr;
  if (const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error); rc != SQLITE_OK) {
    const std::string message = error != nullptr ? error : sqlite3_errmsg(db);
    sqlite3_free(error);
    Throw(rc, "plugin database, " + operation + ": " + message);
  }
}

SqliteStatement::SqliteStatement(sqlite3* db, const std::string& sql, std::string operation)
    : db_(db), operation_(std::move(operation)) {
  if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
      SQLITE_OK) {
    ThrowSqliteError(db_, operation_);
  }
}

SqliteStatement::~SqliteStatement() {
  sqlite3_finalize(stmt_);
}

int SqliteStatement::Index(const char* name) const {
  const int index = sqlite3_bind_parameter_index(stmt_, name);
  if (index == 0) {
    // A programming error, but report it like the others rather than crash.
    throw DatabaseError("plugin database, " + operation_ + ": no SQL parameter " + name);
  }
  return index;
}

SqliteStatement& SqliteStatement::Bind(const char* name, const std::string& value) {
  if (sqlite3_bind_text(stmt_, Index(name), value.data(), static_cast<int>(value.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK) {
    ThrowSqliteError(db_, operation_);
  }
  return *this;
}

SqliteStatement& SqliteStatement::Bind(const char* name, int64_t value) {
  if (sqlite3_bind_int64(stmt_, Index(name), value) != SQLITE_OK) {
    ThrowSqliteError(db_, operation_);
  }
  return *this;
}

SqliteStatement& SqliteStatement::Bind(const char* name, double value) {
  if (sqlite3_bind_double(stmt_, Index(name), value) != SQLITE_OK) {
    ThrowSqliteError(db_, operation_);
  }
  return *this;
}

bool SqliteStatement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  ThrowSqliteError(db_, operation_);
}

void SqliteStatement::Run() {
  while (Step()) {
  }
}

void SqliteStatement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string SqliteStatement::Text(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  return text != nullptr ? std::string(text, static_cast<size_t>(size)) : std::string();
}

int64_t SqliteStatement::Int(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

double SqliteStatement::Real(int column) const {
  return sqlite3_column_double(stmt_, column);
}

bool SqliteStatement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

SqliteTransaction::SqliteTransaction(sqlite3* db, bool write, std::string operation)
    : db_(db), operation_(std::move(operation)) {
  // IMMEDIATE takes the write lock up front, so two connections cannot both
  // read the same queued row and then both claim it.
  ExecSql(db_, write ? "BEGIN IMMEDIATE" : "BEGIN", operation_);
}

SqliteTransaction::~SqliteTransaction() {
  // SQLite may already have rolled back by itself (e.g. SQLITE_FULL).
  if (!done_ && sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

void SqliteTransaction::Commit() {
  ExecSql(db_, "COMMIT", operation_);
  done_ = true;
}

}  // namespace CloudIngest
