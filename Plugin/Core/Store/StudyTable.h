#pragma once
// What the state transitions (StudyTransitions.h) need from a database, inside
// one of its transactions: each store implements it over its own connection,
// and the transitions are written once for all of them.
#include <optional>
#include <string>
#include <vector>

#include "Core/Store/StudyRow.h"
#include "Core/Store/StudyStore.h"

namespace CloudIngest {

class StudyTable {
 public:
  virtual ~StudyTable() = default;

  // The row, locked for the rest of the transaction where the database can.
  virtual std::optional<StudyRow> Load(const std::string& orthancId) = 0;
  // Inserts or updates (never deletes first, which would drop the history).
  virtual void Save(const StudyRow& row) = 0;
  // The study and its history.
  virtual void Delete(const std::string& orthancId) = 0;
  // Appends to the study's history, keeping the latest kHistoryPerStudy
  // entries; nothing for an unknown study (e.g. removed while being sent).
  virtual void InsertHistory(const std::string& orthancId, const HistoryEntry& entry) = 0;

  enum class Tally { StudySent, Failure };
  virtual void Count(Tally tally, double now) = 0;

  // The time leases are reckoned in (seconds since the epoch): the database
  // server's clock where several nodes share the store, since their own
  // clocks may differ or be stepped; else the node's `nodeNow`.
  virtual double LeaseNow(double nodeNow) = 0;
  // The study ClaimNext takes (queued and due by `dueBy`, the node's time, or
  // Sending with a lease that ran out before `leaseNow`, the earliest first),
  // locked so that no concurrent transaction gets it; nullopt when none.
  virtual std::optional<std::string> NextClaimable(double dueBy, double leaseNow) = 0;
  // The studies Sending for `node`, and those Sending for no node (left by a
  // version without leases).
  virtual std::vector<std::string> SendingFor(const std::string& node) = 0;
};

constexpr unsigned kHistoryPerStudy = 200;

}  // namespace CloudIngest
