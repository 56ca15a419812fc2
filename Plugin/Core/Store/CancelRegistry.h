#pragma once
// The cancels of running attempts, one registry for the whole plugin: the REST
// route cancels through it, the sender polls it between two instances (a
// lookup under a mutex, no database read), the scheduler drops an entry when
// its attempt ends. Entries are keyed by the attempt's claim generation, so a
// cancel stops only the attempt that was running: a resend claimed afterwards
// is not affected, and that new claim does not clear the cancel the old
// attempt has still to see.
//
// It is also where the lease keeper's self-fence acts: past the deadline of
// HoldUntil, every running attempt reads as cancelled at its next step, even
// while the keeper's renewal call is still blocked in the database.
#include <cstdint>
#include <limits>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "Core/Clock.h"
#include "Core/Store/StudyStore.h"

namespace CloudIngest {

class CancelRegistry {
 public:
  explicit CancelRegistry(StudyStore& queue) : CancelRegistry(queue, steady_) {}
  // `monotonic`: the clock of HoldUntil's deadline, which the lease keeper reads too.
  CancelRegistry(StudyStore& queue, const IMonotonicClock& monotonic)
      : queue_(queue), monotonic_(monotonic) {}
  CancelRegistry(const CancelRegistry&) = delete;
  CancelRegistry& operator=(const CancelRegistry&) = delete;

  // Queued or Sending -> Cancelled in the database first (the durable record,
  // read in the same transaction as the claim it cancels), then the running
  // attempt's claim, if any, is registered. false: not queued or sending.
  bool Cancel(const std::string& orthancId, double now);
  bool IsCancelled(const std::string& orthancId, uint64_t claim) const;
  // The attempt holding `claim` has started on this node.
  void Begin(const std::string& orthancId, uint64_t claim);
  // The attempts begun and not yet forgotten.
  std::vector<HeldClaim> Running() const;
  // Stops the attempt holding `claim` without a database write: the claim is
  // no longer this node's (cancelled on another node, or taken over). false:
  // that attempt is not running, or was stopped already.
  bool Revoke(const std::string& orthancId, uint64_t claim);
  // The running attempts' claims are known to be held until `deadline` (the
  // monotonic clock's seconds); from then on they read as cancelled, until a
  // later deadline. Without a call, never.
  void HoldUntil(double deadline);
  const IMonotonicClock& Monotonic() const { return monotonic_; }
  // The attempt holding `claim` has ended (called after its last write).
  void Forget(const std::string& orthancId, uint64_t claim);

 private:
  StudyStore& queue_;
  const SteadyClock steady_;  // the clock unless one is given
  const IMonotonicClock& monotonic_;
  std::mutex ordering_;       // Cancel against Forget; never taken by IsCancelled
  mutable std::mutex mutex_;  // the sets and the deadline
  std::set<std::pair<std::string, uint64_t>> cancelled_;
  std::set<std::pair<std::string, uint64_t>> running_;
  double heldUntil_ = std::numeric_limits<double>::infinity();
};

}  // namespace CloudIngest
