#pragma once
// Sends mirrored in the host's job list (Orthanc's /jobs) while they run,
// without holding one of its job workers: a job's step answers at once, and
// a running send's job parks itself (Orthanc: pauses) after each step. A
// refresh wakes a parked job when its send moved on, so that one more step
// publishes the new progress, and ends it when the send ends. A job cancelled
// in the job list cancels its send.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "Core/Logger.h"
#include "Core/Sending/SendObserver.h"

namespace CloudIngest {

// One send as a job: its content, progress, and what its next step answers.
class SendJob {
 public:
  enum class Step { Park, Success, Failure };

  explicit SendJob(const StudyRecord& study);
  std::string Content() const;  // a JSON object (SendJobContent)
  float Progress() const;       // 0..1
  Step NextStep() const;
  const std::string& OrthancStudyId() const { return orthancStudyId_; }

  void Update(const StudyRecord& study);
  void End(const SendEnd& end);
  bool Ended() const;
  // Whether the content changed since the last call.
  bool TakeChanged();

 private:
  const std::string orthancStudyId_;
  mutable std::mutex mutex_;
  SendEnd state_;
  bool ended_ = false;
  bool changed_ = false;
};

// The host's job list, as SendJobs uses it.
class JobsEngine {
 public:
  enum class State { Waiting, Parked, Succeeded, Failed, Gone };
  virtual ~JobsEngine() = default;
  // Submits `job`, whose steps the engine runs on its workers; returns its id.
  // Throws when the engine refuses.
  virtual std::string Submit(std::shared_ptr<SendJob> job) = 0;
  virtual State GetState(const std::string& id) = 0;
  // Lets a parked job take one more step.
  virtual void Resume(const std::string& id) = 0;
};

// A running send's job found cancelled in the job list.
struct JobCancelled {
  std::string orthancStudyId;
  std::string jobId;
  std::string user;  // who asked for it through Orthanc's HTTP API; empty when unknown
};

class SendJobs : public SendObserver {
 public:
  // How many of the latest jobs StudyOfJob knows, ended ones included (Orthanc
  // keeps JobsHistorySize ended jobs, default 10).
  static constexpr size_t kKnownJobs = 4096;

  using CancelSend = std::function<void(const JobCancelled& cancelled)>;
  SendJobs(JobsEngine& engine, CancelSend cancel, ILogger& log)
      : engine_(engine), cancel_(std::move(cancel)), log_(log) {}

  // Nothing yet: an attempt that finds the study unchanged or outside
  // Filters is no send; the job starts with the first progress record.
  void SendStarted(const StudyRecord&) override {}
  void SendProgress(const StudyRecord& study) override;
  // A send that failed before its first progress record still gets a job.
  void SendEnded(const SendEnd& end) override;

  // One pass over the live jobs (called every second or so).
  void Refresh();
  size_t LiveJobs() const;

  // The Orthanc study of job `jobId` when it is one of these sends' jobs
  // (running, or among the last kKnownJobs submitted).
  std::optional<std::string> StudyOfJob(const std::string& jobId) const;
  // `user` asked to cancel job `jobId` (Orthanc's HTTP filter, before Orthanc
  // cancels it): the refresh pass that finds the job cancelled names them.
  void NoteCancelRequest(const std::string& jobId, const std::string& user);

 private:
  using Key = std::pair<std::string, uint64_t>;  // study, claim
  struct Live {
    std::string id;
    std::shared_ptr<SendJob> job;
    bool cancelRequested = false;
  };
  struct Known {
    std::string orthancStudyId;
    std::string cancelBy;  // NoteCancelRequest's user
  };
  std::optional<Live> Submit(const StudyRecord& study, const SendEnd* ended);
  void Remember(const std::string& jobId, const std::string& orthancStudyId);

  JobsEngine& engine_;
  CancelSend cancel_;
  ILogger& log_;
  mutable std::mutex mutex_;
  std::map<Key, Live> live_;
  std::map<std::string, Known> known_;  // by job id
  std::deque<std::string> knownOrder_;  // job ids, oldest first
};

}  // namespace CloudIngest
