#include "Scheduler.h"

#include <algorithm>

namespace CloudIngest {

namespace {
constexpr double kIdlePoll = 5.0;  // seconds; bounds the delay of a retry that came due
}

Scheduler::Scheduler(UploadQueue& queue, RunStudy run, unsigned workers, const IClock& clock,
                     ILogger& log)
    : queue_(queue),
      run_(std::move(run)),
      workers_(std::max(1u, workers)),
      clock_(clock),
      log_(log) {}

Scheduler::~Scheduler() {
  Stop();
}

void Scheduler::Start() {
  if (!threads_.empty()) return;
  stop_.Reset();
  idle_.Reset();
  for (unsigned i = 0; i < workers_; i++) threads_.emplace_back([this] { Work(); });
}

void Scheduler::Stop() {
  stop_.Stop();
  idle_.Stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Scheduler::RequestCancel(const std::string& orthancId) {
  std::lock_guard<std::mutex> lock(cancelMutex_);
  cancelled_.insert(orthancId);
}

bool Scheduler::IsCancelRequested(const std::string& orthancId) const {
  std::lock_guard<std::mutex> lock(cancelMutex_);
  return cancelled_.count(orthancId) > 0;
}

void Scheduler::Work() {
  while (!stop_.Stopped()) {
    double wait = kIdlePoll;
    try {
      if (auto study = queue_.ClaimNext(clock_.Now())) {
        {
          // A new claim supersedes an older cancel request.
          std::lock_guard<std::mutex> lock(cancelMutex_);
          cancelled_.erase(study->orthancId);
        }
        run_(*study);
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
