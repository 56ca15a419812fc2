#pragma once
// A study row as every store keeps it, and its columns: each field mapped once
// to a column name and type, from which each database builds its schema, its
// reads and its writes.
#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "Core/Store/StudyRecord.h"

namespace CloudIngest {

// The public record plus what only the store needs. `forced` marks a queued
// manual "send even if unchanged" request; the pending_* fields hold a request
// that arrived while the study was being sent.
struct StudyRow {
  StudyRecord record;
  bool forced = false;
  std::string pendingTrigger, pendingMode, pendingExtraMetadata, pendingRequestedBy;
  bool pendingForce = false;
  bool pendingRespectWindows = false;
  // The last send that reached the service (what an "unchanged" outcome restores).
  std::string sentOrderId;
  int64_t sentInstances = 0, sentBytes = 0, sentAttempts = 0;
};

enum class ColumnType { Text, Real, Integer };
using ColumnValue = std::variant<std::string, double, int64_t>;  // in ColumnType's order

struct StudyColumn {
  const char* name;
  ColumnType type;
  int sqliteSince;  // the SQLite schema version that added it
  ColumnValue (*get)(const StudyRow& row);
  // Throws DatabaseError for a value the field cannot hold (an unknown state).
  void (*set)(StudyRow& row, const ColumnValue& value);
};

// orthanc_id (the key) first, then state, then the others.
const std::vector<StudyColumn>& StudyColumns();

// The column's SQL type and constraints, given the database's names for a
// real and a 64-bit integer type.
std::string ColumnDefinition(const StudyColumn& column, const char* realType,
                             const char* integerType);
// "a, b, c": the column names, each written as prefix + name.
std::string StudyColumnList(const std::string& prefix = "");
// A row from a result row, `read(index, type)` giving the column's value.
// Throws DatabaseError for a value the row cannot hold (an unknown state).
StudyRow ReadStudyRow(const std::function<ColumnValue(int index, ColumnType type)>& read,
                      const std::string& operation);

}  // namespace CloudIngest
