#pragma once
// Orthanc's job engine behind Core's JobsEngine: every send in /jobs (and
// Orthanc Explorer's Jobs page) as a CloudIngestSend job, live while it runs.
//
// Orthanc 1.10's job workers (ConcurrentJobs, default 2, shared with C-MOVE,
// archives, anonymization) run a job's steps back to back for as long as it
// answers "continue", and a plugin's step cannot answer "retry later" (no such
// status in the 1.10 SDK): a job that followed its send step by step would
// hold a worker for the whole send (measured: a user's archive waited until
// such a job ended). So the plugin's own workers send, and a running send's
// job pauses itself at the end of each step, which returns at once: it holds
// no worker between steps and shows as "Paused" with the last progress. Every
// second, a job whose send moved on is resumed for one step (the new progress)
// and an ended send's job for its last (Success or Failure). Orthanc calls no
// plugin callback when a paused job is cancelled, so the same pass reads each
// job's state and cancels the send of a job cancelled in /jobs.
//
// Which sends get a job follows CloudIngest.Jobs (SendJobs); from Orthanc
// 1.12.2 on (DELETE /jobs/{id}), Auto deletes each ended job right after its
// last step, so that the sends do not push users' jobs out of the history.
#include <orthanc/OrthancCPlugin.h>

#include <memory>
#include <string>
#include <thread>

#include "Core/Logger.h"
#include "Core/Sending/SendJobs.h"
#include "Core/Sending/StopSignal.h"
#include "Sdk/OrthancRest.h"
#include "Sdk/RunningOrthanc.h"

namespace CloudIngest::Sdk {

class OrthancSendJobs : public JobsEngine {
 public:
  static constexpr const char* kJobType = "CloudIngestSend";

  // Jobs are not kept in Orthanc's database (SaveJobs): none outlives a
  // restart; the plugin's own database keeps every send.
  OrthancSendJobs(OrthancPluginContext* context, const RunningOrthanc& orthanc,
                  SendJobsPolicy policy, ILogger& log, SendJobs::CancelSend cancel);
  ~OrthancSendJobs() override;
  OrthancSendJobs(const OrthancSendJobs&) = delete;
  OrthancSendJobs& operator=(const OrthancSendJobs&) = delete;

  SendJobs& Jobs() { return jobs_; }  // also the service's SendObserver
  void Start();                       // the refresh thread (OrthancStarted)
  void Stop();  // OrthancStopped; jobs still parked then are not saved, so none outlives a restart

  std::string Submit(std::shared_ptr<SendJob> job) override;
  State GetState(const std::string& id) override;
  void Resume(const std::string& id) override;
  State AwaitStep(const std::string& id, double seconds) override;
  void Delete(const std::string& id) override;

 private:
  OrthancPluginContext* context_;
  const RunningOrthanc& orthanc_;
  OrthancRest rest_;
  ILogger& log_;
  SendJobs jobs_;
  StopSignal stop_;
  std::thread refresher_;
};

}  // namespace CloudIngest::Sdk
