#pragma once
// A StudyStore that passes every call to another store: a test derives from
// it and overrides the calls it makes fail, block or misbehave.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "Core/Store/StudyStore.h"

namespace CloudIngest::Testing {

class ForwardingStore : public StudyStore {
 public:
  explicit ForwardingStore(StudyStore& inner) : inner_(inner) {}

  StudyRecord Enqueue(const EnqueueRequest& request, double now) override {
    return inner_.Enqueue(request, now);
  }
  std::optional<StudyRecord> ClaimNext(double now) override { return inner_.ClaimNext(now); }
  std::vector<HeldClaim> RenewLeases(double now, const std::vector<HeldClaim>& running) override {
    return inner_.RenewLeases(now, running);
  }
  std::vector<NodeStatus> Nodes(double since) override { return inner_.Nodes(since); }
  std::optional<double> NextDueTime() override { return inner_.NextDueTime(); }
  void Update(const StudyRecord& record, double now) override { inner_.Update(record, now); }
  void MarkSent(const StudyRecord& claimed, const std::string& signature, double now,
                bool newlySent) override {
    inner_.MarkSent(claimed, signature, now, newlySent);
  }
  void MarkRetry(const StudyRecord& claimed, const std::string& error, double nextAttemptAt,
                 double now, RetryReason reason) override {
    inner_.MarkRetry(claimed, error, nextAttemptAt, now, reason);
  }
  void MarkFailed(const StudyRecord& claimed, const std::string& error, double now) override {
    inner_.MarkFailed(claimed, error, now);
  }
  void Postpone(const StudyRecord& claimed, double until, const std::string& reason,
                double now) override {
    inner_.Postpone(claimed, until, reason, now);
  }
  void AddHistory(const StudyRecord& claimed, const HistoryEntry& entry) override {
    inner_.AddHistory(claimed, entry);
  }
  void Remove(const StudyRecord& claimed) override { inner_.Remove(claimed); }
  CancelOutcome Cancel(const std::string& orthancId, double now) override {
    return inner_.Cancel(orthancId, now);
  }
  bool IsCancelled(const std::string& orthancId) override { return inner_.IsCancelled(orthancId); }
  void Remove(const std::string& orthancId) override { inner_.Remove(orthancId); }
  unsigned RecoverInterrupted(double now) override { return inner_.RecoverInterrupted(now); }
  std::optional<StudyRecord> Get(const std::string& orthancId) override {
    return inner_.Get(orthancId);
  }
  std::vector<StudyRecord> List(std::optional<StudyState> state, unsigned limit, unsigned offset,
                                double since) override {
    return inner_.List(state, limit, offset, since);
  }
  QueueTotals Totals() override { return inner_.Totals(); }
  QueueMode GetQueueMode() override { return inner_.GetQueueMode(); }
  void SetQueueMode(QueueMode mode) override { inner_.SetQueueMode(mode); }
  void AddHistory(const std::string& orthancId, const HistoryEntry& entry) override {
    inner_.AddHistory(orthancId, entry);
  }
  std::vector<HistoryEntry> History(const std::string& orthancId, unsigned limit) override {
    return inner_.History(orthancId, limit);
  }
  void CountUpload(uint64_t bytes, unsigned instances) override {
    inner_.CountUpload(bytes, instances);
  }
  int64_t GetChangesCursor() override { return inner_.GetChangesCursor(); }
  void SetChangesCursor(int64_t seq) override { inner_.SetChangesCursor(seq); }
  std::unique_ptr<ScanLock> TryLockChangesScan() override { return inner_.TryLockChangesScan(); }
  StoreHealth Health() override { return inner_.Health(); }
  std::optional<std::string> GetAuditHead(const std::string& node) override {
    return inner_.GetAuditHead(node);
  }
  void SetAuditHead(const std::string& node, const std::string& head) override {
    inner_.SetAuditHead(node, head);
  }
  void SaveReceipt(const std::string& orthancId, const std::string& receipt) override {
    inner_.SaveReceipt(orthancId, receipt);
  }
  std::optional<std::string> GetReceipt(const std::string& orthancId) override {
    return inner_.GetReceipt(orthancId);
  }

 private:
  StudyStore& inner_;
};

}  // namespace CloudIngest::Testing
