#pragma once
// The PostgreSQL store's tables, in the plugin's own schema: the schema and
// its migrations, and the row operations the shared transitions use
// (StudyTable.h). The session's search_path is the plugin's schema.
#include <optional>
#include <string>
#include <vector>

#include "Core/Store/PostgresConnection.h"
#include "Core/Store/StudyTable.h"

namespace CloudIngest::PostgresStudyTable {

// Creates the schema and its tables, or migrates older ones, in one
// transaction under an advisory lock (nodes starting together wait for each
// other), the session's search_path being set already (UseSchema). Throws
// DatabaseError for a schema newer than this plugin's.
void CreateOrMigrate(PgSession& session, const std::string& schema);
// The search_path of a new connection: the plugin's schema only, so that
// its table names never meet Orthanc's.
void UseSchema(PgSession& session, const std::string& schema);

// The keys of the advisory locks on (class, hashtext(schema)).
constexpr int kSchemaLockClass = 0x43490001;    // "CI" 1: creating the schema
constexpr int kScanLockClass = 0x43490002;      // "CI" 2: scanning /changes
constexpr int kNewStudyLockClass = 0x43490003;  // "CI" 3: on hashtext(orthanc id), a new study

// The server's clock in seconds since the epoch, as an SQL expression: the
// clock of the leases (StudyTable::LeaseNow).
const std::string& ServerEpochSql();
// "SELECT <every column> FROM studies", for a WHERE clause to follow.
const std::string& SelectColumns();
StudyRow ReadRow(const PgResult& result, int row, const std::string& operation);

// StudyTable inside a transaction of the session: rows are locked FOR UPDATE.
class Rows final : public StudyTable {
 public:
  Rows(PgSession& session, std::string operation)
      : session_(session), operation_(std::move(operation)) {}

  std::optional<StudyRow> Load(const std::string& orthancId) override;
  void Save(const StudyRow& row) override;
  void Delete(const std::string& orthancId) override;
  void InsertHistory(const std::string& orthancId, const HistoryEntry& entry) override;
  void Count(Tally tally, double now) override;
  double LeaseNow(double nodeNow) override;
  std::optional<std::string> NextClaimable(double dueBy, double leaseNow) override;
  std::vector<std::string> SendingFor(const std::string& node) override;

 private:
  PgSession& session_;
  std::string operation_;
};

}  // namespace CloudIngest::PostgresStudyTable
