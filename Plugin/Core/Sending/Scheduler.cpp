#include "Core/Sending/Scheduler.h"

#include <algorithm>

namespace CloudIngest {

namespace {
constexpr double kIdlePoll = 5.0;  // seconds; bounds the delay of a retry that came due
}

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
        // A cancel is per claim: this one leaves any other attempt's alone.
        cancels_.Begin(study->orthancId, study->claim);
        run_(*study);
        cancels_.Forget(study->orthancId, study->claim);
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

}  // namespace CloudIngest
