#pragma once
// The plugin's durable state in SQLite (WAL): tracked studies, their history,
// and the /changes cursor. Every method is one transaction; thread-safe.
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "StudyRecord.h"

struct sqlite3;

namespace CloudIngest {

class DatabaseError : public std::runtime_error {
 public:
  explicit DatabaseError(const std::string& what) : std::runtime_error(what) {}
};

struct QueueTotals {
  std::map<StudyState, unsigned> byState;
  uint64_t studiesSent = 0;
  uint64_t instancesSent = 0;
  uint64_t bytesSent = 0;
  uint64_t failures = 0;  // failed study attempts, all time
  double lastSuccess = 0;
};

struct EnqueueRequest {
  std::string orthancId;
  std::string trigger = "auto";
  std::string mode;
  std::string extraMetadata;
  std::string requestedBy;
  bool force = false;  // manual send: resend even if unchanged
};

class UploadQueue {
 public:
  // Creates the file and schema if needed. Throws DatabaseError.
  explicit UploadQueue(const std::string& path);
  ~UploadQueue();
  UploadQueue(const UploadQueue&) = delete;
  UploadQueue& operator=(const UploadQueue&) = delete;

  // Queued (or re-queued) and due now. A study being sent gets
  // resendRequested=true instead, and is queued again when that send ends.
  StudyRecord Enqueue(const EnqueueRequest& request, double now);
  // The due queued study with the oldest nextAttemptAt, now Sending with
  // attempts+1; nullopt when nothing is due.
  std::optional<StudyRecord> ClaimNext(double now);
  // Earliest nextAttemptAt among queued studies (for the scheduler's sleep).
  std::optional<double> NextDueTime();
  // Progress and identity while sending (orderId, uid, counts, patient fields).
  void Update(const StudyRecord& record, double now);
  // `newlySent` false: the study was found already sent (unchanged), so the
  // totals and the last-success time are left alone.
  void MarkSent(const std::string& orthancId, const std::string& signature, double now,
                bool newlySent = true);
  // Back to Queued, due at `nextAttemptAt`, with the error kept.
  // `isFailure` false: interrupted by a shutdown, not counted as a failure.
  void MarkRetry(const std::string& orthancId, const std::string& error, double nextAttemptAt,
                 double now, bool isFailure = true);
  void MarkFailed(const std::string& orthancId, const std::string& error, double now);
  // Queued or Sending -> Cancelled; false if the study is in another state or unknown.
  bool Cancel(const std::string& orthancId, double now);
  bool IsCancelled(const std::string& orthancId);
  void Remove(const std::string& orthancId);
  // At start-up: studies left Sending by a crash go back to Queued, due now.
  unsigned RecoverInterrupted(double now);

  std::optional<StudyRecord> Get(const std::string& orthancId);
  // Newest first (updatedAt); state filter optional; since = updatedAt >= since.
  std::vector<StudyRecord> List(std::optional<StudyState> state, unsigned limit, unsigned offset,
                                double since);
  QueueTotals Totals();

  void AddHistory(const std::string& orthancId, const HistoryEntry& entry);
  std::vector<HistoryEntry> History(const std::string& orthancId, unsigned limit = 200);
  // Adds instances/bytes to the all-time totals when an upload succeeds.
  void CountUpload(uint64_t bytes, unsigned instances = 1);

  // Sequence number of the last Orthanc change processed.
  int64_t GetChangesCursor();
  void SetChangesCursor(int64_t seq);

 private:
  std::mutex mutex_;
  sqlite3* db_ = nullptr;
};

}  // namespace CloudIngest
