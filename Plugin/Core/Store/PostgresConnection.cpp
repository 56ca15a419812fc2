#include "Core/Store/PostgresConnection.h"

#include <libpq-fe.h>

#include <charconv>
#include <regex>
#include <utility>

namespace CloudIngest {

namespace {

// Seconds: an unreachable server fails a connection attempt in this time, and
// a connection whose server vanished without closing it is noticed (TCP
// keepalive) within about 25 s instead of hours. The connection string may
// set its own values: it comes after these.
const char* const kConnectTimeout = "5";
const char* const kKeepalivesIdle = "10";
const char* const kKeepalivesInterval = "5";
const char* const kKeepalivesCount = "3";

std::string TrimEnd(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// SQLSTATEs after which the session cannot go on: connection exceptions
// (class 08) and a server shutting down or starting up.
bool IsConnectionState(const std::string& state) {
  return state.rfind("08", 0) == 0 || state == "57P01" || state == "57P02" || state == "57P03";
}

// A column's text as a number, whatever the locale.
template <typename T>
T Parse(const std::string& text, const char* what) {
  T value{};
  if (std::from_chars(text.data(), text.data() + text.size(), value).ec != std::errc()) {
    throw DatabaseError("plugin database: not " + std::string(what) + ": '" + text + "'");
  }
  return value;
}

struct ConninfoOptionsCloser {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

}  // namespace

void PgConnCloser::operator()(pg_conn* conn) const {
  PQfinish(conn);
}

void PgResultCloser::operator()(pg_result* result) const {
  PQclear(result);
}

int PgResult::Rows() const {
  return PQntuples(result_.get());
}

bool PgResult::IsNull(int row, int column) const {
  return PQgetisnull(result_.get(), row, column) != 0;
}

std::string PgResult::Text(int row, int column) const {
  return std::string(PQgetvalue(result_.get(), row, column),
                     static_cast<size_t>(PQgetlength(result_.get(), row, column)));
}

double PgResult::Real(int row, int column) const {
  return Parse<double>(Text(row, column), "a number");
}

int64_t PgResult::Int(int row, int column) const {
  return Parse<int64_t>(Text(row, column), "an integer");
}

std::string PgText(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);  // shortest exact
  return std::string(buffer, result.ptr);
}

std::string PgText(int64_t value) {
  return std::to_string(value);
}

PgSession::PgSession(std::string conninfo, std::string applicationName)
    : conninfo_(std::move(conninfo)), applicationName_(std::move(applicationName)) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoOptionsCloser> options(
      PQconninfoParse(conninfo_.c_str(), &error));
  PQfreemem(error);  // its text may quote the string; Connect reports the failure again
  std::string host, port, database;
  for (PQconninfoOption* o = options.get(); o != nullptr && o->keyword != nullptr; ++o) {
    const std::string keyword = o->keyword;
    const std::string value = o->val != nullptr ? o->val : "";
    if (keyword == "password" && !value.empty()) passwords_.push_back(value);
    if (keyword == "host" || (keyword == "hostaddr" && host.empty())) host = value;
    if (keyword == "port") port = value;
    if (keyword == "dbname") database = value;
  }
  // As written in a URI: what libpq quotes when it cannot read the URI at all.
  static const std::regex uriPassword(R"(^postgres(?:ql)?://[^:@/]*:([^@]+)@)", std::regex::icase);
  std::smatch written;
  if (std::regex_search(conninfo_, written, uriPassword)) passwords_.push_back(written[1]);
  server_ = (host.empty() ? "local socket" : host) + (port.empty() ? "" : ":" + port) +
            (database.empty() ? "" : "/" + database);
}

bool PgSession::Connect() {
  if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) {
    return false;
  }
  const char* const keywords[] = {"connect_timeout",
                                  "keepalives_idle",
                                  "keepalives_interval",
                                  "keepalives_count",
                                  "application_name",
                                  "dbname",
                                  nullptr};
  const char* const values[] = {kConnectTimeout,  kKeepalivesIdle,          kKeepalivesInterval,
                                kKeepalivesCount, applicationName_.c_str(), conninfo_.c_str(),
                                nullptr};
  conn_.reset(PQconnectdbParams(keywords, values, 1 /* expand the URI in dbname */));
  if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
    const std::string message =
        conn_ ? TrimEnd(PQerrorMessage(conn_.get())) : std::string("out of memory");
    conn_.reset();
    throw PgConnectionLost("plugin database (PostgreSQL " + server_ +
                           "): cannot connect: " + Redact(message));
  }
  // Notices (e.g. "there is no transaction in progress") would go to stderr.
  PQsetNoticeProcessor(
      conn_.get(), [](void*, const char*) {}, nullptr);
  ++generation_;
  return true;
}

void PgSession::Drop() {
  conn_.reset();
}

PgResult PgSession::Exec(const std::string& sql, const std::vector<std::string>& parameters,
                         const std::string& operation) {
  if (!conn_) {
    throw PgConnectionLost("plugin database (PostgreSQL " + server_ + "), " + operation +
                           ": not connected");
  }
  std::vector<const char*> values;
  values.reserve(parameters.size());
  for (const std::string& parameter : parameters) values.push_back(parameter.c_str());
  pg_result* const raw =
      PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                   values.data(), nullptr, nullptr, 0 /* text results */);
  const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Throw(raw, operation);  // frees raw
  }
  return PgResult(raw);
}

void PgSession::ExecScript(const std::string& sql, const std::string& operation) {
  if (!conn_) {
    throw PgConnectionLost("plugin database (PostgreSQL " + server_ + "), " + operation +
                           ": not connected");
  }
  pg_result* const raw = PQexec(conn_.get(), sql.c_str());
  if (raw == nullptr || PQresultStatus(raw) != PGRES_COMMAND_OK) {
    Throw(raw, operation);
  }
  PQclear(raw);
}

bool PgSession::InTransaction() const {
  if (!conn_) return false;
  const PGTransactionStatusType status = PQtransactionStatus(conn_.get());
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
}

std::string PgSession::QuoteIdentifier(const std::string& name, const std::string& operation) {
  if (!conn_) {
    throw PgConnectionLost("plugin database (PostgreSQL " + server_ + "), " + operation +
                           ": not connected");
  }
  char* quoted = PQescapeIdentifier(conn_.get(), name.c_str(), name.size());
  if (quoted == nullptr) {
    throw DatabaseError("plugin database, " + operation +
                        ": not an identifier: " + Redact(TrimEnd(PQerrorMessage(conn_.get()))));
  }
  std::string result = quoted;
  PQfreemem(quoted);
  return result;
}

void PgSession::Throw(pg_result* raw, const std::string& operation) {
  const PgResult result(raw);  // freed whatever is thrown
  const char* const field = raw != nullptr ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  const std::string state = field != nullptr ? field : "";
  std::string message = raw != nullptr ? PQresultErrorMessage(raw) : "";
  if (message.empty()) message = PQerrorMessage(conn_.get());
  const std::string text = "plugin database (PostgreSQL " + server_ + "), " + operation + ": " +
                           Redact(TrimEnd(message));
  if (PQstatus(conn_.get()) != CONNECTION_OK || IsConnectionState(state)) {
    throw PgConnectionLost(text);
  }
  if (state == "40001" || state == "40P01") {
    throw PgConflict(text);
  }
  throw DatabaseError(text);
}

std::string PgSession::Redact(const std::string& text) const {
  static const std::regex uriPassword(R"((postgres(?:ql)?://[^:@/\s]*):[^@\s]*@)",
                                      std::regex::icase);
  static const std::regex setting(R"((password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+))", std::regex::icase);
  std::string result = std::regex_replace(text, uriPassword, "$1:***@");
  result = std::regex_replace(result, setting, "$1***");
  for (const std::string& password : passwords_) {
    for (size_t at = result.find(password); at != std::string::npos;
         at = result.find(password, at + 3)) {
      result.replace(at, password.size(), "***");
    }
  }
  return result;
}

}  // namespace CloudIngest
