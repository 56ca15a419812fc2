#pragma once
// Minimal RAII helpers over the SQLite C API, used by SqliteStudyStore. Every
// failure throws DatabaseError carrying SQLite's message and the operation.
#include <cstdint>
#include <string>

#include "Core/Store/StoreErrors.h"

struct sqlite3;
struct sqlite3_stmt;

namespace CloudIngest {

// Throws DatabaseError "<operation>: <sqlite message>" for the connection's last error.
[[noreturn]] void ThrowSqliteError(sqlite3* db, const std::string& operation);

// Runs SQL without results (pragmas, DDL, BEGIN/COMMIT).
void ExecSql(sqlite3* db, const std::string& sql, const std::string& operation);

// One prepared statement; parameters are bound by name (":name").
class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, const std::string& sql, std::string operation);
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  SqliteStatement& Bind(const char* name, const std::string& value);
  SqliteStatement& Bind(const char* name, int64_t value);
  SqliteStatement& Bind(const char* name, double value);

  // True when a row is available; false when done.
  bool Step();
  // Steps to completion (for INSERT/UPDATE/DELETE).
  void Run();
  void Reset();

  std::string Text(int column) const;
  int64_t Int(int column) const;
  double Real(int column) const;
  bool IsNull(int column) const;

 private:
  int Index(const char* name) const;

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string operation_;
};

// BEGIN IMMEDIATE (writers) or BEGIN (readers); rolls back unless committed.
class SqliteTransaction {
 public:
  SqliteTransaction(sqlite3* db, bool write, std::string operation);
  ~SqliteTransaction();
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;
  void Commit();

 private:
  sqlite3* db_;
  std::string operation_;
  bool done_ = false;
};

}  // namespace CloudIngest
