#include "Core/Store/SqliteFile.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <system_error>

#include "Core/Store/SqliteStatement.h"

namespace CloudIngest {

namespace {

constexpr int kBusyTimeoutMs = 10000;

std::string ParentDirectory(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

// "<path>.corrupt-20240102T030405Z", with a counter if that name is taken.
std::string CorruptName(const std::string& path, double now) {
  const auto seconds = static_cast<std::time_t>(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  const std::string base = path + ".corrupt-" + stamp;
  std::string name = base;
  for (unsigned n = 2; std::filesystem::exists(name) && n < 1000; n++) {
    name = base + "-" + std::to_string(n);
  }
  return name;
}

}  // namespace

void SqliteCloser::operator()(sqlite3* db) const {
  sqlite3_close_v2(db);
}

SqliteHandle OpenSqliteFile(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  SqliteHandle db(raw);  // sqlite3_open_v2 may hand out a handle even when it fails
  if (rc != SQLITE_OK) {
    std::string message = "cannot open the plugin database '" + path +
                          "': " + (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
    db.reset();
    struct stat info {};
    const std::string parent = ParentDirectory(path);
    if (stat(parent.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
      message += " (directory '" + parent + "' does not exist; create it or change \"Database\")";
    }
    throw DatabaseError(message);
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  // WAL + synchronous=NORMAL: a commit survives the process being killed
  // (not necessarily a power cut), without an fsync per transaction.
  ExecSql(raw, "PRAGMA journal_mode=WAL", "open '" + path + "'");
  ExecSql(raw, "PRAGMA synchronous=NORMAL", "open '" + path + "'");
  ExecSql(raw, "PRAGMA foreign_keys=ON", "open '" + path + "'");
  // A damaged file may open and even answer a query or two: check its
  // structure once here (quick_check skips only the index contents).
  SqliteStatement check(raw, "PRAGMA quick_check(1)", "check '" + path + "'");
  if (check.Step() && check.Text(0) != "ok") {
    throw CorruptDatabaseError("plugin database, check '" + path + "': " + check.Text(0));
  }
  return db;
}

std::string MoveCorruptFileAside(const std::string& path, double now) {
  const std::string target = CorruptName(path, now);
  // The side files first: a WAL left next to the new, empty database would be
  // replayed into it.
  for (const char* suffix : {"-wal", "-shm", "-journal", ""}) {
    std::error_code error;
    if (!std::filesystem::exists(path + suffix, error)) continue;
    std::filesystem::rename(path + suffix, target + suffix, error);
    if (error) {
      throw DatabaseError("plugin database '" + path + "' is corrupt and cannot be moved to '" +
                          target + suffix + "': " + error.message());
    }
  }
  return target;
}

}  // namespace CloudIngest
