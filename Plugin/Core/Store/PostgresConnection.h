#pragma once
// libpq under RAII for PostgresStudyStore: one connection (PgSession), made
// when first needed and made again after it broke, statements with $n
// parameters, and their results. Every failure throws DatabaseError with
// libpq's message, credentials removed; a lost connection throws
// PgConnectionLost so that the caller can run its transaction again.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "Core/Store/StoreErrors.h"

struct pg_conn;
struct pg_result;

namespace CloudIngest {

// The connection broke or the server is going away (SQLSTATE class 08,
// 57P01-57P03) or cannot be reached: what was not committed did not happen.
class PgConnectionLost : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

// A serialization failure or deadlock: the transaction was rolled back and
// may be run again on the same connection.
class PgConflict : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

struct PgConnCloser {
  void operator()(pg_conn* conn) const;
};
struct PgResultCloser {
  void operator()(pg_result* result) const;
};

// The rows of a statement, as text (libpq's text format).
class PgResult {
 public:
  explicit PgResult(pg_result* result) : result_(result) {}
  int Rows() const;
  bool IsNull(int row, int column) const;
  std::string Text(int row, int column) const;
  double Real(int row, int column) const;
  int64_t Int(int row, int column) const;

 private:
  std::unique_ptr<pg_result, PgResultCloser> result_;
};

// Parameters as libpq's text format wants them, whatever the locale.
std::string PgText(double value);
std::string PgText(int64_t value);

class PgSession {
 public:
  // `conninfo`: a postgresql:// URI or key=value string, as libpq takes it.
  // Kept, never shown: messages name the server as host:port/database.
  PgSession(std::string conninfo, std::string applicationName);
  PgSession(const PgSession&) = delete;
  PgSession& operator=(const PgSession&) = delete;

  // Connects unless connected: true when a new connection was made (session
  // settings and session-level locks are then to be set up again).
  bool Connect();
  // Closes the connection (after a failure: the next Connect makes a new one).
  void Drop();
  // Counts the connections made: a session-level lock lives as long as its one.
  uint64_t Generation() const { return generation_; }

  PgResult Exec(const std::string& sql, const std::vector<std::string>& parameters,
                const std::string& operation);
  PgResult Exec(const std::string& sql, const std::string& operation) {
    return Exec(sql, {}, operation);
  }
  // Several statements without parameters (a schema).
  void ExecScript(const std::string& sql, const std::string& operation);
  // Inside a transaction block (possibly a failed one).
  bool InTransaction() const;
  // `name` quoted as an SQL identifier (connected).
  std::string QuoteIdentifier(const std::string& name, const std::string& operation);

  // Removes credentials: a URI's password, the password of the connection
  // string wherever it is repeated, `password=` settings.
  std::string Redact(const std::string& text) const;

 private:
  [[noreturn]] void Throw(pg_result* result, const std::string& operation);

  std::string conninfo_;
  std::string applicationName_;
  // The connection string's password as parsed and as written (percent-encoded
  // in a URI), only to remove them from messages.
  std::vector<std::string> passwords_;
  std::string server_;  // host:port/database, for messages
  std::unique_ptr<pg_conn, PgConnCloser> conn_;
  uint64_t generation_ = 0;
};

}  // namespace CloudIngest
