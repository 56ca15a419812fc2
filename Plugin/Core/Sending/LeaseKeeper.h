#pragma once
// Keeps this node's claims alive and stops the attempts whose claim is gone.
// Every second the node renews the leases of the studies it is sending (and
// its heartbeat) in one store call. A claim missing from the answer was
// cancelled on another node or taken over after a lapse: its attempt stops
// at its next step, as after a local cancel. A node that cannot renew for
// most of a lease stops its own attempts first, so that the node taking its
// studies over is the only one uploading them.
//
// That self-fence is timed on the monotonic clock, never the wall clock (a
// step of it would fence a live node, or never fence a cut-off one), from the
// start of the last renewal that succeeded: the call may block for several
// connect timeouts, and the server may have written the lease at any moment
// of it. The deadline is also the cancel registry's (HoldUntil), on its
// monotonic clock, so the attempts stop at it even while a renewal call is
// still blocked.
#include <cstddef>

#include "Core/Clock.h"
#include "Core/Logger.h"
#include "Core/Store/CancelRegistry.h"
#include "Core/Store/StudyStore.h"

namespace CloudIngest {

class LeaseKeeper {
 public:
  // `clock`: the node's wall clock, for the store's `now`.
  LeaseKeeper(StudyStore& queue, CancelRegistry& cancels, const IClock& clock, ILogger& log,
              double leaseSeconds);

  // One renewal. Returns how many attempts were stopped. Never throws: a
  // failed renewal is logged (once per outage) and retried next time.
  size_t Renew();

 private:
  size_t StopAll(const std::vector<HeldClaim>& running, const std::string& why);
  // The claims are known held from a renewal that began at `start`.
  void HeldFrom(double start);

  StudyStore& queue_;
  CancelRegistry& cancels_;
  const IClock& clock_;
  const IMonotonicClock& monotonic_;
  ILogger& log_;
  const double leaseSeconds_;
  double lastRenewed_;  // the monotonic start of the last renewal that succeeded
  bool failing_ = false;
};

}  // namespace CloudIngest
