#pragma once
// How a study moves between queued, sending, sent, failed and cancelled, and
// what each move records: the StudyStore methods of the same names, written
// once over StudyTable. The caller runs each inside one write transaction.
#include <optional>
#include <string>

#include "Core/Store/StudyStore.h"
#include "Core/Store/StudyTable.h"

namespace CloudIngest::StudyTransitions {

StudyRecord Enqueue(StudyTable& table, const EnqueueRequest& request, double now);
std::optional<StudyRecord> ClaimNext(StudyTable& table, const StoreIdentity& identity, double now);
void Update(StudyTable& table, const StudyRecord& record, double now);
void MarkSent(StudyTable& table, const StudyRecord& claimed, const std::string& signature,
              double now, bool newlySent);
void MarkRetry(StudyTable& table, const StudyRecord& claimed, const std::string& error,
               double nextAttemptAt, double now, RetryReason reason);
void MarkFailed(StudyTable& table, const StudyRecord& claimed, const std::string& error,
                double now);
void Postpone(StudyTable& table, const StudyRecord& claimed, double until,
              const std::string& reason, double now);
void AddHistory(StudyTable& table, const StudyRecord& claimed, const HistoryEntry& entry);
void Remove(StudyTable& table, const StudyRecord& claimed);
CancelOutcome Cancel(StudyTable& table, const std::string& orthancId, double now);
unsigned RecoverInterrupted(StudyTable& table, const std::string& node, double now);

}  // namespace CloudIngest::StudyTransitions
