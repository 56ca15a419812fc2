#pragma once
// Worker threads that take due studies from the durable queue and send them.
// Started on OrthancStarted, stopped (and joined) on OrthancStopped.
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "Clock.h"
#include "Logger.h"
#include "StopSignal.h"
#include "UploadQueue.h"

namespace CloudIngest {

class Scheduler {
 public:
  using RunStudy = std::function<void(const StudyRecord&)>;
  Scheduler(UploadQueue& queue, RunStudy run, unsigned workers, const IClock& clock, ILogger& log);
  ~Scheduler();

  void Start();
  void Stop();  // wakes every wait, joins the workers
  // New work is due: wake idle workers now rather than at their next poll.
  void Wake() { idle_.Wake(); }
  StopSignal& Signal() { return stop_; }

  // A cancelled study stops between two instances.
  void RequestCancel(const std::string& orthancId);
  bool IsCancelRequested(const std::string& orthancId) const;

 private:
  void Work();
  UploadQueue& queue_;
  RunStudy run_;
  unsigned workers_;
  const IClock& clock_;
  ILogger& log_;
  StopSignal stop_;  // shared with the senders' backoff waits
  StopSignal idle_;  // only for idle polling, so Wake() does not cut a backoff short
  std::vector<std::thread> threads_;
  mutable std::mutex cancelMutex_;
  std::set<std::string> cancelled_;
};

}  // namespace CloudIngest
