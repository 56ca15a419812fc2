#pragma once
// The SQLite store's tables: the schema and its migrations, and the row
// operations the shared transitions use (StudyTable.h).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "Core/Store/StudyTable.h"

struct sqlite3;

namespace CloudIngest {

class SqliteStatement;

namespace SqliteStudyTable {

using Row = StudyRow;

// Creates the tables in a new file, or migrates an older one; throws
// DatabaseError for a schema newer than this plugin's.
void CreateOrMigrate(sqlite3* db, const std::string& path);

// "SELECT <every column> FROM studies", for a WHERE clause to follow.
const std::string& SelectColumns();
Row ReadRow(const SqliteStatement& s, const std::string& operation);
std::optional<Row> LoadRow(sqlite3* db, const std::string& orthancId, const std::string& operation);

// StudyTable inside a write transaction of the connection (BEGIN IMMEDIATE:
// SQLite has no row locks, the whole file is the lock).
class Rows final : public StudyTable {
 public:
  Rows(sqlite3* db, std::string operation) : db_(db), operation_(std::move(operation)) {}

  std::optional<StudyRow> Load(const std::string& orthancId) override;
  void Save(const StudyRow& row) override;
  void Delete(const std::string& orthancId) override;
  void InsertHistory(const std::string& orthancId, const HistoryEntry& entry) override;
  void Count(Tally tally, double now) override;
  // One node, one clock: the node's.
  double LeaseNow(double nodeNow) override { return nodeNow; }
  std::optional<std::string> NextClaimable(double dueBy, double leaseNow) override;
  std::vector<std::string> SendingFor(const std::string& node) override;

 private:
  sqlite3* db_;
  std::string operation_;
};

}  // namespace SqliteStudyTable
}  // namespace CloudIngest
