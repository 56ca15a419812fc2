#pragma once
// The database file of the SQLite store: opening it, and moving a damaged one
// aside.
#include <memory>
#include <string>

#include "Core/Store/StoreErrors.h"

struct sqlite3;

namespace CloudIngest {

struct SqliteCloser {
  void operator()(sqlite3* db) const;
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteCloser>;

// Opens the file, creating it if needed, in WAL mode with foreign keys on,
// after a check of its structure. Throws DatabaseError (with a hint when the
// directory is missing), or CorruptDatabaseError when the file is damaged or
// not a database.
SqliteHandle OpenSqliteFile(const std::string& path);

// Renames the file with its -wal, -shm and -journal files to
// "<path>.corrupt-<UTC time YYYYMMDDTHHMMSSZ>" (a counter added if that name
// is taken) and returns the new name; throws DatabaseError if it cannot.
std::string MoveCorruptFileAside(const std::string& path, double now);

}  // namespace CloudIngest
