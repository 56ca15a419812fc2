#include "Core/Sending/LeaseKeeper.h"

#include <set>
#include <string>
#include <utility>

namespace CloudIngest {

namespace {
// Of a lease: how long renewals may fail before the node stops its own
// attempts (the rest leaves them time to stop before the lease lapses).
constexpr double kSelfFenceShare = 0.6;

std::string Seconds(double seconds) {
  return std::to_string(static_cast<long>(seconds)) + " s";
}
}  // namespace

LeaseKeeper::LeaseKeeper(StudyStore& queue, CancelRegistry& cancels, const IClock& clock,
                         ILogger& log, double leaseSeconds)
    : queue_(queue),
      cancels_(cancels),
      clock_(clock),
      monotonic_(cancels.Monotonic()),
      log_(log),
      leaseSeconds_(leaseSeconds),
      lastRenewed_(monotonic_.Seconds()) {
  HeldFrom(lastRenewed_);
}

void LeaseKeeper::HeldFrom(double start) {
  lastRenewed_ = start;
  cancels_.HoldUntil(start + leaseSeconds_ * kSelfFenceShare);
}

size_t LeaseKeeper::Renew() {
  // Taken before the renewal: an attempt that begins meanwhile holds a claim
  // the answer may not show yet, and must not be stopped for that.
  const std::vector<HeldClaim> running = cancels_.Running();
  const double start = monotonic_.Seconds();
  std::vector<HeldClaim> held;
  try {
    held = queue_.RenewLeases(clock_.Now(), running);
  } catch (const std::exception& e) {
    if (!failing_) {
      log_.Warning(std::string("CloudIngest: cannot renew this node's claims: ") + e.what() +
                   "; retrying every second");
      failing_ = true;
    }
    const double unrenewed = monotonic_.Seconds() - lastRenewed_;
    if (unrenewed < leaseSeconds_ * kSelfFenceShare) return 0;
    return StopAll(running, "its claim could not be renewed for " + Seconds(unrenewed) +
                                " (another node may take the study over)");
  }
  if (failing_) {
    log_.Warning("CloudIngest: the plugin database answers again; claims renewed");
    failing_ = false;
  }
  HeldFrom(start);
  const double took = monotonic_.Seconds() - start;
  if (took >= leaseSeconds_ * kSelfFenceShare) {
    // Held, but perhaps only since the call began: too little of the lease
    // may be left to finish safely.
    return StopAll(running, "renewing its claim took " + Seconds(took) +
                                " (another node may take the study over)");
  }
  std::set<std::pair<std::string, uint64_t>> kept;
  for (const auto& claim : held) kept.emplace(claim.orthancId, claim.claim);
  std::vector<HeldClaim> lost;
  for (const auto& claim : running) {
    if (kept.count({claim.orthancId, claim.claim}) == 0) lost.push_back(claim);
  }
  return StopAll(lost, "its claim was cancelled or taken over by another node");
}

size_t LeaseKeeper::StopAll(const std::vector<HeldClaim>& claims, const std::string& why) {
  size_t stopped = 0;
  for (const auto& claim : claims) {
    if (!cancels_.Revoke(claim.orthancId, claim.claim)) continue;  // ended, or stopping already
    log_.Warning("CloudIngest: study " + claim.orthancId + ": stopping its attempt here: " + why);
    stopped++;
  }
  return stopped;
}

}  // namespace CloudIngest
