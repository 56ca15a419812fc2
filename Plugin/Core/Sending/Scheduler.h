#pragma once
// Worker threads that take due studies from the durable queue and send them.
// Started on OrthancStarted, stopped (and joined) on OrthancStopped.
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "Core/Clock.h"
#include "Core/Logger.h"
#include "Core/Sending/StopSignal.h"
#include "Core/Store/CancelRegistry.h"
#include "Core/Store/StudyStore.h"
#include "Core/ThreadStarter.h"

namespace CloudIngest {

class Scheduler {
 public:
  using RunStudy = std::function<void(const StudyRecord&)>;
  // `cancels`: the attempts' cancels, dropped here when an attempt ends.
  Scheduler(StudyStore& queue, CancelRegistry& cancels, RunStudy run, unsigned workers,
            const IClock& clock, ILogger& log, ThreadStarter& threads);
  ~Scheduler();

  // Starts the workers the system allows (at least one is needed to send).
  void Start();
  void Stop();  // wakes every wait, joins the workers
  // New work is due: wake idle workers now rather than at their next poll.
  void Wake() { idle_.Wake(); }
  StopSignal& Signal() { return stop_; }
  // Paused: no worker claims a study (running attempts go on); Running wakes them.
  void SetMode(QueueMode mode) {
    paused_ = mode == QueueMode::Paused;
    if (!paused_) Wake();
  }
  QueueMode Mode() const { return paused_ ? QueueMode::Paused : QueueMode::Running; }

 private:
  void Work();
  // Runs one claimed study, its claim registered as running from start to end.
  void RunClaimed(const StudyRecord& study);
  void Release(const StudyRecord& study, const std::string& error);
  StudyStore& queue_;
  CancelRegistry& cancels_;
  RunStudy run_;
  unsigned workers_;
  const IClock& clock_;
  ILogger& log_;
  ThreadStarter& starter_;
  StopSignal stop_;  // shared with the senders' backoff waits
  StopSignal idle_;  // only for idle polling, so Wake() does not cut a backoff short
  std::vector<std::thread> threads_;
  std::atomic<bool> paused_{false};
};

}  // namespace CloudIngest
