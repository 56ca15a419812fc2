#pragma once
// What a study store throws, whatever its database.
#include <stdexcept>
#include <string>

namespace CloudIngest {

class DatabaseError : public std::runtime_error {
 public:
  explicit DatabaseError(const std::string& what) : std::runtime_error(what) {}
};

// The database is damaged or not a database at all (for SQLite: SQLITE_CORRUPT,
// SQLITE_NOTADB, a failed quick_check), as opposed to one it cannot reach.
class CorruptDatabaseError : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

}  // namespace CloudIngest
