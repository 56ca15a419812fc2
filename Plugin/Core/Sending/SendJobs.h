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

#include "Core/Configuration/Configuration.h"  // SendJobsPolicy
#include "Core/Logger.h"
#include "Core/Sending/SendObserver.h"

namespace CloudIngest {

// One send as a job: its content, progress, and what its next step answers.
class SendJob {
 public:
  enum class Step { Park, Success, Failure };
  // When the job of an ended send ends: at its next step, or only at a step
  // taken after Release (so that a step that happens to follow the send's end
  // does not end it out of turn).
  enum class Ending { AtNextStep, WhenReleased };

  SendJob(const StudyRecord& study, Ending ending);
  std::string Content() const;  // a JSON object (SendJobContent)
  float Progress() const;       // 0..1
  Step NextStep() const;
  const std::string& OrthancStudyId() const { return orthancStudyId_; }

  void Update(const StudyRecord& study);
  void End(const SendEnd& end);
  bool Ended() const;
  void Release();  // Ending::WhenReleased: the next step may end the job
  // Whether the content changed since the last call.
  bool TakeChanged();

 private:
  const std::string orthancStudyId_;
  const Ending ending_;
  mutable std::mutex mutex_;
  SendEnd state_;
  bool ended_ = false;
  bool released_ = false;
  bool changed_ = false;
};

// What the host's job history can do with an ended job.
enum class JobHistory {
  Deletable,  // delete it (Orthanc 1.12.2: DELETE /jobs/{id})
  Fifo        // nothing: it goes when JobsHistorySize newer ones ended (Orthanc 1.10)
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
  // The job's state once it is no longer Waiting (its step taken), or after
  // `seconds` (then Waiting: no worker took it yet).
  virtual State AwaitStep(const std::string& id, double seconds) = 0;
  // Removes ended job `id` from the history (JobHistory::Deletable only).
  // Throws when the engine refuses.
  virtual void Delete(const std::string& id) = 0;
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

  // How long a pass waits for a worker to take an ended job's last step
  // before it leaves the job to the next pass.
  static constexpr double kLastStepWait = 2.0;  // seconds

  using CancelSend = std::function<void(const JobCancelled& cancelled)>;
  // Resolves `policy` against what `history` can do (Auto: every send with
  // each ended job deleted, or Requested); All logs a warning (its ended jobs
  // push users' jobs out of the history).
  SendJobs(JobsEngine& engine, SendJobsPolicy policy, JobHistory history, CancelSend cancel,
           ILogger& log);

  // Nothing yet: an attempt that finds the study unchanged or outside
  // Filters is no send; the job starts with the first progress record.
  void SendStarted(const StudyRecord&) override {}
  void SendProgress(const StudyRecord& study) override;
  // A send that failed before its first progress record still gets a job,
  // unless ended jobs are deleted (it would be gone within the second).
  void SendEnded(const SendEnd& end) override;

  // One pass over the live jobs (called every second or so, by one thread).
  // Under EndedJobs::Deleted it may wait up to kLastStepWait for a worker.
  void Refresh();
  size_t LiveJobs() const;

  // Which sends get a job, and what becomes of an ended one, as resolved.
  enum class Mirrored { EverySend, RequestedSends, NoSend };
  enum class EndedJobs { Kept, Deleted };
  Mirrored MirroredSends() const { return mirrored_; }
  EndedJobs EndedJobsFate() const { return ended_; }
  std::string Describe() const;  // for the start-up log line

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
  bool GetsAJob(const StudyRecord& study) const;
  std::optional<Live> Submit(const StudyRecord& study, const SendEnd* ended);
  void Remember(const std::string& jobId, const std::string& orthancStudyId);
  // Each returns true when the job is done with (its entry may go).
  bool RefreshOne(const Key& key, const Live& live);
  bool LastStep(const Live& live);       // a parked job whose send ended
  bool Finished(const std::string& id);  // an ended job: deleted when so resolved
  void Cancelled(const Key& key, const std::string& jobId);  // in the job list

  JobsEngine& engine_;
  CancelSend cancel_;
  ILogger& log_;
  const Mirrored mirrored_;
  const EndedJobs ended_;
  // The refresh pass's alone. EndedJobs::Deleted: the job resumed for its
  // last step that no worker took within kLastStepWait; no other ended job is
  // resumed until it is done with.
  std::string finishing_;
  bool deleteFailureLogged_ = false;
  mutable std::mutex mutex_;
  std::map<Key, Live> live_;
  std::map<std::string, Known> known_;  // by job id
  std::deque<std::string> knownOrder_;  // job ids, oldest first
};

}  // namespace CloudIngest
