#include "Core/Store/CancelRegistry.h"

namespace CloudIngest {

bool CancelRegistry::Cancel(const std::string& orthancId, double now) {
  // Held across the database write: a Forget of the attempt (which comes after
  // the attempt's last write) cannot slip in before the claim is registered
  // and leave it there for good.
  std::lock_guard<std::mutex> ordering(ordering_);
  const CancelOutcome outcome = queue_.Cancel(orthancId, now);
  if (outcome.wasSending) {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled_.emplace(orthancId, outcome.claim);
  }
  return outcome.cancelled;
}

bool CancelRegistry::IsCancelled(const std::string& orthancId, uint64_t claim) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cancelled_.count({orthancId, claim}) > 0) return true;
  return running_.count({orthancId, claim}) > 0 && monotonic_.Seconds() >= heldUntil_;
}

void CancelRegistry::Begin(const std::string& orthancId, uint64_t claim) {
  std::lock_guard<std::mutex> lock(mutex_);
  running_.emplace(orthancId, claim);
}

std::vector<HeldClaim> CancelRegistry::Running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<HeldClaim> claims;
  for (const auto& [id, claim] : running_) claims.push_back({id, claim});
  return claims;
}

bool CancelRegistry::Revoke(const std::string& orthancId, uint64_t claim) {
  std::lock_guard<std::mutex> ordering(ordering_);
  std::lock_guard<std::mutex> lock(mutex_);
  return running_.count({orthancId, claim}) > 0 && cancelled_.emplace(orthancId, claim).second;
}

void CancelRegistry::HoldUntil(double deadline) {
  std::lock_guard<std::mutex> lock(mutex_);
  heldUntil_ = deadline;
}

void CancelRegistry::Forget(const std::string& orthancId, uint64_t claim) {
  std::lock_guard<std::mutex> ordering(ordering_);
  std::lock_guard<std::mutex> lock(mutex_);
  cancelled_.erase({orthancId, claim});
  running_.erase({orthancId, claim});
}

}  // namespace CloudIngest
