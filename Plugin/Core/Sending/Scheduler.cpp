#include "Core/Sending/Scheduler.h"

#include <algorithm>

namespace CloudIngest {

namespace {
constexpr double kIdlePoll = 5.0;  // seconds; bounds the delay of a retry that came due
// Seconds before a study whose attempt stopped on an error is due again.
constexpr double kRetryAfterError = 5.0;

// An attempt under way on this node, from its claim to its end however it
// ends: the lease keeper renews only these claims, and a cancel is per claim
// (this one leaves any other attempt's alone).
class RunningClaim {
 public:
  RunningClaim(CancelRegistry& cancels, const StudyRecord& study)
      : cancels_(cancels), orthancId_(study.orthancId), claim_(study.claim) {
    cancels_.Begin(orthancId_, claim_);
  }
  ~RunningClaim() { cancels_.Forget(orthancId_, claim_); }
  RunningClaim(const RunningClaim&) = delete;
  RunningClaim& operator=(const RunningClaim&) = delete;

 private:
  CancelRegistry& cancels_;
  const std::string orthancId_;
  const uint64_t claim_;
};
}  // namespace

Scheduler::Scheduler(StudyStore& queue, CancelRegistry& cancels, RunStudy run, unsigned workers,
                     const IClock& clock, ILogger& log, ThreadStarter& threads)
    : queue_(queue),
      cancels_(cancels),
      run_(std::move(run)),
      workers_(std::max(1u, workers)),
      clock_(clock),
      log_(log),
      starter_(threads) {}

Scheduler::~Scheduler() {
  Stop();
}

void Scheduler::Start() {
  if (!threads_.empty()) return;
  stop_.Reset();
  idle_.Reset();
  threads_ = starter_.Start(workers_, [this] { Work(); }, "the study workers", {"ci-send"});
  if (threads_.empty()) {
    log_.Error(
        "CloudIngest: no study worker could be started; studies stay queued until the "
        "next start of Orthanc");
  }
}

void Scheduler::Stop() {
  stop_.Stop();
  idle_.Stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Scheduler::Work() {
  while (!stop_.Stopped()) {
    double wait = kIdlePoll;
    try {
      if (paused_) {
        idle_.WaitFor(kIdlePoll, true);  // SetMode(Running) wakes it
        continue;
      }
      if (auto study = queue_.ClaimNext(clock_.Now())) {
        RunClaimed(*study);
        continue;
      }
      if (auto due = queue_.NextDueTime()) {
        wait = std::clamp(*due - clock_.Now(), 0.05, kIdlePoll);
      }
    } catch (const std::exception& e) {
      log_.Error(std::string("CloudIngest: scheduler: ") + e.what());
    }
    idle_.WaitFor(wait, true);
  }
}

void Scheduler::RunClaimed(const StudyRecord& study) {
  const RunningClaim running(cancels_, study);  // forgotten after the release below
  try {
    run_(study);
  } catch (const std::exception& e) {
    Release(study, e.what());
  }
}

// The attempt threw before recording how it ended (e.g. its Postpone failed):
// the study goes back to the queue, due shortly, instead of staying Sending
// for this node. The write is claim-guarded (nothing if the attempt did record
// its end) and counts no failure: what failed is the bookkeeping, not a send.
// Should it fail too, the claim, no longer running here, is not renewed: its
// lease lapses and the study is taken over, on this node or another.
void Scheduler::Release(const StudyRecord& study, const std::string& error) {
  log_.Error("CloudIngest: study " + study.orthancId +
             ": the attempt stopped on an error: " + error + "; queued again");
  try {
    const double now = clock_.Now();
    queue_.MarkRetry(study, error, now + kRetryAfterError, now, RetryReason::Interrupted);
  } catch (const std::exception& again) {
    log_.Error("CloudIngest: study " + study.orthancId + ": cannot queue it again (" +
               again.what() + "); it is taken over once its lease lapses");
  }
}

}  // namespace CloudIngest
