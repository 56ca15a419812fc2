#pragma once
// The plugin's durable state: tracked studies, their history, the all-time
// totals and the /changes cursor. Every method is one transaction and
// thread-safe; failures throw DatabaseError (Core/Store/StoreErrors.h).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "Core/Store/StoreErrors.h"
#include "Core/Store/StudyRecord.h"

namespace CloudIngest {

// A corrupt database moved aside at start-up (OpenOrRecover).
struct DatabaseRecovery {
  std::string movedTo;  // the damaged file's new name
  double at = 0;        // when (seconds since the epoch)
  std::string reason;   // the database's diagnosis
};

struct QueueTotals {
  std::map<StudyState, unsigned> byState;
  uint64_t studiesSent = 0;
  uint64_t instancesSent = 0;
  uint64_t bytesSent = 0;
  uint64_t failures = 0;  // failed study attempts, all time
  double lastSuccess = 0;
};

// The node claiming studies through a store, and how long a claim lasts
// without renewal. One node per store object; several share a PostgreSQL store.
//
// Leases run on the store's lease clock: the PostgreSQL server's, since the
// nodes' clocks may differ or be stepped by more than a lease; for SQLite
// (one node) the `now` of the calls. Every other time (history, due times,
// heartbeats) is the `now` the node passes.
struct StoreIdentity {
  std::string node = "local";
  double leaseSeconds = 30;
};

// A claim this node still holds (RenewLeases).
struct HeldClaim {
  std::string orthancId;
  uint64_t claim = 0;
};

// A node of the cluster as the shared store knows it.
struct NodeStatus {
  std::string name;
  double lastHeartbeat = 0;
  std::vector<std::string> sending;  // Orthanc ids of the studies it holds
};

// Whether the store answers (a network database may be down for a while).
struct StoreHealth {
  std::string kind;  // "sqlite" or "postgresql"
  bool reachable = true;
  std::string lastError;  // empty while reachable
};

// Held while one node scans Orthanc's shared /changes; released on destruction.
class ScanLock {
 public:
  virtual ~ScanLock() = default;
};

// Why an attempt goes back to the queue.
enum class RetryReason {
  Failure,      // counted in the all-time failures
  Interrupted,  // not a failure: Orthanc is stopping, or the attempt's bookkeeping failed
};

struct EnqueueRequest {
  std::string orthancId;
  std::string trigger = "auto";
  std::string mode;
  std::string extraMetadata;
  std::string requestedBy;
  bool force = false;           // manual send: resend even if unchanged
  bool respectWindows = false;  // manual send: still wait for SendWindows
};

// What Cancel did. `claim` is the generation of the attempt that was running
// (wasSending) and must stop.
struct CancelOutcome {
  bool cancelled = false;
  bool wasSending = false;
  uint64_t claim = 0;
  explicit operator bool() const { return cancelled; }
};

// Whether workers start new sends (POST /queue/pause and /resume); durable.
enum class QueueMode { Running, Paused };

class StudyStore {
 public:
  virtual ~StudyStore() = default;

  // Queued (or re-queued) and due now. A study being sent gets
  // resendRequested=true instead, and is queued again when that send ends.
  virtual StudyRecord Enqueue(const EnqueueRequest& request, double now) = 0;
  // The due queued study with the oldest nextAttemptAt, or a Sending study
  // whose lease expired (taken over from its node, history "taken-over"), now
  // Sending for this node with attempts+1, a new claim generation and a lease
  // of leaseSeconds; nullopt when nothing is due. Concurrent callers
  // (threads or nodes) never get the same study.
  virtual std::optional<StudyRecord> ClaimNext(double now) = 0;
  // Extends the leases of the `running` claims (the attempts under way on this
  // node) that the node still holds, records its heartbeat, and returns those
  // claims: one missing from the answer was cancelled or taken over, and its
  // attempt must stop. A Sending study of this node with no running attempt
  // (its attempt ended without its last write, e.g. the database was down) is
  // not renewed: its lease lapses and any node takes it over.
  virtual std::vector<HeldClaim> RenewLeases(double now, const std::vector<HeldClaim>& running) = 0;
  // The nodes that sent a heartbeat since `since`, by name.
  virtual std::vector<NodeStatus> Nodes(double since) = 0;
  // Earliest nextAttemptAt among queued studies (for the scheduler's sleep).
  virtual std::optional<double> NextDueTime() = 0;

  // The writes of one attempt, given the record ClaimNext returned (or a copy
  // with progress). Each is a no-op on the row once the attempt's claim is
  // gone: the study was queued, claimed again or removed meanwhile (e.g. a
  // cancel then a resend), so a stale attempt never touches the new cycle.
  // The all-time totals still count what really happened.
  //
  // Progress and identity while sending (orderId, uid, counts, patient fields).
  virtual void Update(const StudyRecord& record, double now) = 0;
  // `newlySent` false: the study was found already sent (unchanged), so the
  // totals and the last-success time are left alone.
  virtual void MarkSent(const StudyRecord& claimed, const std::string& signature, double now,
                        bool newlySent = true) = 0;
  // Back to Queued, due at `nextAttemptAt`, with the error kept.
  virtual void MarkRetry(const StudyRecord& claimed, const std::string& error, double nextAttemptAt,
                         double now, RetryReason reason = RetryReason::Failure) = 0;
  virtual void MarkFailed(const StudyRecord& claimed, const std::string& error, double now) = 0;
  // Not started after all (outside SendWindows, or instances still arriving
  // on another node): back to Queued, due at `until`, as if never claimed
  // (attempts as before the claim, no failure, last error kept), with a
  // "waiting" history entry giving `reason`.
  virtual void Postpone(const StudyRecord& claimed, double until, const std::string& reason,
                        double now) = 0;
  virtual void AddHistory(const StudyRecord& claimed, const HistoryEntry& entry) = 0;
  virtual void Remove(const StudyRecord& claimed) = 0;

  // Queued or Sending -> Cancelled; false if the study is in another state or unknown.
  virtual CancelOutcome Cancel(const std::string& orthancId, double now) = 0;
  virtual bool IsCancelled(const std::string& orthancId) = 0;
  // Whatever the claim (not for an attempt's own writes).
  virtual void Remove(const std::string& orthancId) = 0;
  // At start-up: studies this node left Sending (a crash) go back to Queued,
  // due now. Other nodes' claims are left to their leases.
  virtual unsigned RecoverInterrupted(double now) = 0;

  virtual std::optional<StudyRecord> Get(const std::string& orthancId) = 0;
  // Newest first (updatedAt); state filter optional; since = updatedAt >= since.
  virtual std::vector<StudyRecord> List(std::optional<StudyState> state, unsigned limit,
                                        unsigned offset, double since) = 0;
  virtual QueueTotals Totals() = 0;
  // Running until set otherwise, and kept across restarts.
  virtual QueueMode GetQueueMode() = 0;
  virtual void SetQueueMode(QueueMode mode) = 0;

  // Whatever the claim (not for an attempt's own writes).
  virtual void AddHistory(const std::string& orthancId, const HistoryEntry& entry) = 0;
  // The most recent `limit` entries (at most 200 are kept), oldest first; 0 = all kept.
  virtual std::vector<HistoryEntry> History(const std::string& orthancId, unsigned limit = 200) = 0;
  // Adds instances/bytes to the all-time totals when an upload succeeds.
  virtual void CountUpload(uint64_t bytes, unsigned instances = 1) = 0;

  // Sequence number of the last Orthanc change processed; -1 before the first.
  virtual int64_t GetChangesCursor() = 0;
  virtual void SetChangesCursor(int64_t seq) = 0;
  // The right to scan /changes for missed studies (one node at a time);
  // nullptr while another node holds it.
  virtual std::unique_ptr<ScanLock> TryLockChangesScan() = 0;

  virtual StoreHealth Health() = 0;

  // The audit chain's head of node `node` (AuditHead's text), written after
  // every audit record; nullopt before the first.
  virtual std::optional<std::string> GetAuditHead(const std::string& node) = 0;
  virtual void SetAuditHead(const std::string& node, const std::string& head) = 0;
  // The delivery receipt (JSON text) of a study's last successful send.
  virtual void SaveReceipt(const std::string& orthancId, const std::string& receipt) = 0;
  virtual std::optional<std::string> GetReceipt(const std::string& orthancId) = 0;
};

}  // namespace CloudIngest
