// The state transitions of every study store: how a study moves between
// queued, sending, sent, failed and cancelled, and what each move records.
#include "Core/Store/StudyTransitions.h"

#include <string>
#include <vector>

namespace CloudIngest::StudyTransitions {

namespace {

using Row = StudyRow;

void AddEvent(StudyTable& table, const StudyRecord& record, const std::string& event,
              const std::string& detail, double now) {
  HistoryEntry entry;
  entry.time = now;
  entry.attempt = record.attempts;
  entry.event = event;
  entry.detail = detail;
  table.InsertHistory(record.orthancId, entry);
}

// Only a Sending study belongs to a node and has a lease.
void MoveTo(StudyRecord& r, StudyState state) {
  r.state = state;
  if (state != StudyState::Sending) {
    r.node.clear();
    r.leaseExpiresAt = 0;
  }
}

std::string DescribeRequest(const std::string& trigger, const std::string& user, bool force) {
  std::string text = trigger.empty() ? "auto" : trigger;
  if (!user.empty()) {
    text += " by " + user;
  }
  if (force) {
    text += " (forced)";
  }
  return text;
}

// A new send cycle: what Enqueue does to a study that is not being sent.
void StartNewCycle(StudyRecord& r, double now) {
  MoveTo(r, StudyState::Queued);
  r.nextAttemptAt = now;
  r.updatedAt = now;
  r.attempts = 0;
  r.lastError.clear();
  r.orderId.clear();  // a new cycle gets a new order
  r.instancesSent = 0;
  r.bytesSent = 0;
  r.resendRequested = false;
}

void ClearPending(Row& row) {
  row.record.resendRequested = false;
  row.pendingTrigger.clear();
  row.pendingMode.clear();
  row.pendingExtraMetadata.clear();
  row.pendingRequestedBy.clear();
  row.pendingForce = false;
  row.pendingRespectWindows = false;
}

// The request stored while sending becomes the study's current request.
void ApplyPending(Row& row) {
  StudyRecord& r = row.record;
  r.trigger = row.pendingTrigger;
  r.mode = row.pendingMode;
  r.extraMetadata = row.pendingExtraMetadata;
  r.requestedBy = row.pendingRequestedBy;
  r.respectWindows = row.pendingRespectWindows;
  row.forced = row.pendingForce;
  if (row.pendingForce) {
    r.sentSignature.clear();
  }
  ClearPending(row);
}

// A send ended while a new event was waiting: queue it again, due now.
void RequeueForPending(StudyTable& table, Row& row, double now) {
  ApplyPending(row);
  StartNewCycle(row.record, now);
  AddEvent(table, row.record, "queued", row.record.trigger + ": changed while sending", now);
}

// The study's row if the attempt that made `claimed` still owns it: same
// claim generation, and the row is Sending for it, or Cancelled during it (its
// outcome is still recorded). Once the study is queued or claimed again (by
// this node or, after its lease ran out, by another), writes of the old
// attempt would overwrite the new cycle's order id and state.
std::optional<Row> LoadClaimed(StudyTable& table, const StudyRecord& claimed) {
  std::optional<Row> row = table.Load(claimed.orthancId);
  if (row && row->record.claim == claimed.claim &&
      (row->record.state == StudyState::Sending || row->record.state == StudyState::Cancelled)) {
    return row;
  }
  return std::nullopt;
}

// The row of an attempt that ended in `error`, with the error kept, while it
// is still Sending under the attempt's claim. nullopt when the claim is gone,
// or when the study was cancelled during the attempt: the error is then
// recorded (with `cancelledNote`), not acted upon.
std::optional<Row> LoadFailedAttempt(StudyTable& table, const StudyRecord& claimed,
                                     const std::string& error, const char* cancelledNote,
                                     double now) {
  std::optional<Row> row = LoadClaimed(table, claimed);
  if (!row) {
    return std::nullopt;
  }
  row->record.lastError = error;
  row->record.updatedAt = now;
  if (row->record.state == StudyState::Cancelled) {
    AddEvent(table, row->record, "failed", error + cancelledNote, now);
    table.Save(*row);
    return std::nullopt;
  }
  return row;
}

bool Claimable(const StudyRecord& r, double now, double leaseNow) {
  return (r.state == StudyState::Queued && r.nextAttemptAt <= now) ||
         (r.state == StudyState::Sending && r.leaseExpiresAt < leaseNow);
}

}  // namespace

StudyRecord Enqueue(StudyTable& table, const EnqueueRequest& request, double now) {
  if (request.orthancId.empty()) {
    throw DatabaseError("plugin database, Enqueue: empty study id");
  }
  // A forced send is a manual one, whatever the caller wrote.
  const std::string trigger = request.force ? "manual" : request.trigger;
  std::optional<Row> existing = table.Load(request.orthancId);
  Row row;
  std::string detail = DescribeRequest(trigger, request.requestedBy, request.force);
  if (!existing) {
    StudyRecord& r = row.record;
    r.orthancId = request.orthancId;
    r.state = StudyState::Queued;
    r.createdAt = r.updatedAt = r.nextAttemptAt = now;
    r.trigger = trigger;
    r.mode = request.mode;
    r.extraMetadata = request.extraMetadata;
    r.requestedBy = request.requestedBy;
    r.respectWindows = request.respectWindows;
    row.forced = request.force;
  } else if (existing->record.state == StudyState::Sending) {
    row = std::move(*existing);
    row.record.resendRequested = true;
    row.record.updatedAt = now;
    // A forced manual request already waiting is not downgraded by an automatic one.
    if (request.force || !row.pendingForce) {
      row.pendingTrigger = trigger;
      row.pendingMode = request.mode;
      row.pendingExtraMetadata = request.extraMetadata;
      row.pendingRequestedBy = request.requestedBy;
      row.pendingForce = request.force;
      row.pendingRespectWindows = request.respectWindows;
    }
    detail += ": resend requested while sending";
  } else {
    row = std::move(*existing);
    // Same rule for a forced request still waiting in the queue.
    const bool keepForced = row.record.state == StudyState::Queued && row.forced && !request.force;
    StartNewCycle(row.record, now);
    if (!keepForced) {
      row.record.trigger = trigger;
      row.record.mode = request.mode;
      row.record.extraMetadata = request.extraMetadata;
      row.record.requestedBy = request.requestedBy;
      row.record.respectWindows = request.respectWindows;
      row.forced = request.force;
    }
    if (request.force) {
      row.record.sentSignature.clear();  // so the sender does not skip it as unchanged
    }
  }
  table.Save(row);
  AddEvent(table, row.record, "queued", detail, now);
  return row.record;
}

std::optional<StudyRecord> ClaimNext(StudyTable& table, const StoreIdentity& identity, double now) {
  // Due times are the node's (retry delays, send windows); leases are the
  // table's, so that no node's clock decides when another's claim ran out.
  const double leaseNow = table.LeaseNow(now);
  const std::optional<std::string> id = table.NextClaimable(now, leaseNow);
  if (!id) {
    return std::nullopt;
  }
  std::optional<Row> row = table.Load(*id);
  if (!row || !Claimable(row->record, now, leaseNow)) {
    return std::nullopt;  // changed between the two reads: the next call looks again
  }
  StudyRecord& r = row->record;
  if (r.state == StudyState::Sending) {
    // Its node stopped renewing (killed, cut off): the order id and progress
    // are kept; the attempt that node may still run can no longer write.
    AddEvent(table, r, "taken-over",
             "from " + (r.node.empty() ? std::string("a node without a lease") : r.node) +
                 ": its lease ran out",
             now);
  }
  MoveTo(r, StudyState::Sending);
  r.attempts += 1;
  r.claim += 1;
  r.node = identity.node;
  r.leaseExpiresAt = leaseNow + identity.leaseSeconds;
  r.updatedAt = now;
  table.Save(*row);
  AddEvent(table, r, "started", DescribeRequest(r.trigger, r.requestedBy, row->forced), now);
  return r;
}

void Update(StudyTable& table, const StudyRecord& record, double now) {
  std::optional<Row> row = LoadClaimed(table, record);
  if (!row) {
    return;  // removed (progress is not a reason to recreate it) or taken up again
  }
  // Progress and identity only: states move through Claim/Mark*/Cancel.
  StudyRecord& r = row->record;
  r.studyInstanceUid = record.studyInstanceUid;
  r.orderId = record.orderId;
  r.instancesSent = record.instancesSent;
  r.instancesTotal = record.instancesTotal;
  r.bytesSent = record.bytesSent;
  r.patientName = record.patientName;
  r.patientId = record.patientId;
  r.studyDate = record.studyDate;
  r.studyDescription = record.studyDescription;
  r.lastError = record.lastError;
  r.updatedAt = now;
  table.Save(*row);
}

void MarkSent(StudyTable& table, const StudyRecord& claimed, const std::string& signature,
              double now, bool newlySent) {
  // The study did reach the service, whatever happened to its row meanwhile.
  if (newlySent) table.Count(StudyTable::Tally::StudySent, now);
  // Cancelled too: a cancel that came too late to stop the last upload must
  // not hide that the study was sent.
  std::optional<Row> row = LoadClaimed(table, claimed);
  if (!row) {
    return;
  }
  StudyRecord& r = row->record;
  MoveTo(r, StudyState::Sent);
  if (newlySent) {
    r.sentAt = now;
    row->sentOrderId = r.orderId;
    row->sentInstances = r.instancesSent;
    row->sentBytes = static_cast<int64_t>(r.bytesSent);
    row->sentAttempts = r.attempts;
  } else {
    // Found unchanged: the entry shows the send that really happened.
    r.orderId = row->sentOrderId;
    r.instancesSent = static_cast<unsigned>(row->sentInstances);
    r.bytesSent = static_cast<uint64_t>(row->sentBytes);
    r.attempts = static_cast<unsigned>(row->sentAttempts);
  }
  r.sentSignature = signature;
  r.lastError.clear();
  r.updatedAt = now;
  row->forced = false;
  if (newlySent) {
    AddEvent(
        table, r, "sent",
        std::to_string(r.instancesSent) + " instances, " + std::to_string(r.bytesSent) + " bytes",
        now);
  }
  if (r.resendRequested) {
    RequeueForPending(table, *row, now);
  }
  table.Save(*row);
}

void MarkRetry(StudyTable& table, const StudyRecord& claimed, const std::string& error,
               double nextAttemptAt, double now, RetryReason reason) {
  if (reason == RetryReason::Failure) table.Count(StudyTable::Tally::Failure, now);
  std::optional<Row> row =
      LoadFailedAttempt(table, claimed, error, " (cancelled: not retried)", now);
  if (!row) {
    return;
  }
  StudyRecord& r = row->record;
  MoveTo(r, StudyState::Queued);
  r.nextAttemptAt = nextAttemptAt;
  if (r.resendRequested) {
    // It is going to be sent again anyway; keep what the new request asked for.
    ApplyPending(*row);
  }
  AddEvent(table, r, "retry", error, now);
  table.Save(*row);
}

void Postpone(StudyTable& table, const StudyRecord& claimed, double until,
              const std::string& reason, double now) {
  std::optional<Row> row = LoadClaimed(table, claimed);
  if (!row || row->record.state != StudyState::Sending) return;
  StudyRecord& r = row->record;
  MoveTo(r, StudyState::Queued);
  r.attempts = claimed.attempts > 0 ? claimed.attempts - 1 : 0;  // it did not start
  r.nextAttemptAt = until;
  r.updatedAt = now;
  AddEvent(table, r, "waiting", reason, now);
  if (r.resendRequested) {
    RequeueForPending(table, *row, now);  // the new request decides for itself, now
  }
  table.Save(*row);
}

void MarkFailed(StudyTable& table, const StudyRecord& claimed, const std::string& error,
                double now) {
  table.Count(StudyTable::Tally::Failure, now);
  std::optional<Row> row = LoadFailedAttempt(table, claimed, error, " (cancelled)", now);
  if (!row) {
    return;
  }
  StudyRecord& r = row->record;
  MoveTo(r, StudyState::Failed);
  AddEvent(table, r, "failed", error, now);
  if (r.resendRequested) {
    RequeueForPending(table, *row, now);  // a new event arrived: try again
  }
  table.Save(*row);
}

CancelOutcome Cancel(StudyTable& table, const std::string& orthancId, double now) {
  std::optional<Row> row = table.Load(orthancId);
  if (!row ||
      (row->record.state != StudyState::Queued && row->record.state != StudyState::Sending)) {
    return {};
  }
  const bool wasSending = row->record.state == StudyState::Sending;
  MoveTo(row->record, StudyState::Cancelled);
  row->record.updatedAt = now;
  row->forced = false;
  ClearPending(*row);
  table.Save(*row);
  AddEvent(table, row->record, "cancelled", wasSending ? "while sending" : "while queued", now);
  return {true, wasSending, row->record.claim};
}

void Remove(StudyTable& table, const StudyRecord& claimed) {
  if (LoadClaimed(table, claimed)) {
    table.Delete(claimed.orthancId);
  }
}

unsigned RecoverInterrupted(StudyTable& table, const std::string& node, double now) {
  const std::vector<std::string> ids = table.SendingFor(node);
  for (const std::string& id : ids) {
    std::optional<Row> row = table.Load(id);
    if (!row) {
      continue;
    }
    if (row->record.resendRequested) {
      ApplyPending(*row);
      StartNewCycle(row->record, now);
    } else {
      // Same cycle: the interrupted attempt still counts.
      MoveTo(row->record, StudyState::Queued);
      row->record.nextAttemptAt = now;
      row->record.updatedAt = now;
    }
    table.Save(*row);
    AddEvent(table, row->record, "recovered after restart", "", now);
  }
  return static_cast<unsigned>(ids.size());
}

void AddHistory(StudyTable& table, const StudyRecord& claimed, const HistoryEntry& entry) {
  if (LoadClaimed(table, claimed)) {
    table.InsertHistory(claimed.orthancId, entry);
  }
}

}  // namespace CloudIngest::StudyTransitions
