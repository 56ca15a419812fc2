#include "Core/Sending/SendJobs.h"

#include <json/json.h>

#include <vector>

#include "Core/Sending/StudySender.h"

namespace CloudIngest {

SendJob::SendJob(const StudyRecord& study, Ending ending)
    : orthancStudyId_(study.orthancId), ending_(ending), state_{study, SendOutcome::Retry, {}} {}

std::string SendJob::Content() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Json::Value content = SendJobContent(state_);
  if (!ended_) content["outcome"] = "sending";
  Json::StreamWriterBuilder builder;
  builder["indentation"] = "";
  builder["emitUTF8"] = true;
  return Json::writeString(builder, content);
}

float SendJob::Progress() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (ended_) return 1.0f;
  const StudyRecord& s = state_.study;
  return s.instancesTotal == 0
             ? 0.0f
             : static_cast<float>(s.instancesSent) / static_cast<float>(s.instancesTotal);
}

SendJob::Step SendJob::NextStep() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!ended_ || (ending_ == Ending::WhenReleased && !released_)) return Step::Park;
  return SendSucceeded(state_) ? Step::Success : Step::Failure;
}

void SendJob::Release() {
  std::lock_guard<std::mutex> lock(mutex_);
  released_ = true;
}

void SendJob::Update(const StudyRecord& study) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (ended_) return;
  state_.study = study;
  changed_ = true;
}

void SendJob::End(const SendEnd& end) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = end;
  ended_ = true;
  changed_ = true;
}

bool SendJob::Ended() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ended_;
}

bool SendJob::TakeChanged() {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool changed = changed_;
  changed_ = false;
  return changed;
}

namespace {

SendJobs::Mirrored MirroredFor(SendJobsPolicy policy, JobHistory history) {
  switch (policy) {
    case SendJobsPolicy::Auto:
      return history == JobHistory::Deletable ? SendJobs::Mirrored::EverySend
                                              : SendJobs::Mirrored::RequestedSends;
    case SendJobsPolicy::All:
      return SendJobs::Mirrored::EverySend;
    case SendJobsPolicy::Requested:
      return SendJobs::Mirrored::RequestedSends;
    case SendJobsPolicy::None:
      break;
  }
  return SendJobs::Mirrored::NoSend;
}

SendJobs::EndedJobs EndedFor(SendJobsPolicy policy, JobHistory history) {
  return policy == SendJobsPolicy::Auto && history == JobHistory::Deletable
             ? SendJobs::EndedJobs::Deleted
             : SendJobs::EndedJobs::Kept;
}

}  // namespace

SendJobs::SendJobs(JobsEngine& engine, SendJobsPolicy policy, JobHistory history, CancelSend cancel,
                   ILogger& log)
    : engine_(engine),
      cancel_(std::move(cancel)),
      log_(log),
      mirrored_(MirroredFor(policy, history)),
      ended_(EndedFor(policy, history)) {
  if (policy == SendJobsPolicy::All) {
    log_.Warning(
        "CloudIngest: Jobs is \"All\": the ended job of every send stays in Orthanc's job "
        "history, which keeps only the last JobsHistorySize (default 10) ended jobs, so the "
        "sends push users' own jobs (an archive to download) out of it; \"Auto\" (the "
        "default) deletes them where Orthanc can (1.12.2), else gives a job only to the sends "
        "a person asked for");
  }
}

std::string SendJobs::Describe() const {
  switch (mirrored_) {
    case Mirrored::EverySend:
      return ended_ == EndedJobs::Deleted ? "a job per send, deleted once ended"
                                          : "a job per send, kept once ended";
    case Mirrored::RequestedSends:
      return "a job per send a person asked for";
    case Mirrored::NoSend:
      break;
  }
  return "no jobs";
}

bool SendJobs::GetsAJob(const StudyRecord& study) const {
  switch (mirrored_) {
    case Mirrored::EverySend:
      return true;
    case Mirrored::RequestedSends:
      return study.trigger == "manual";  // the REST API's send, resend and bulk resend
    case Mirrored::NoSend:
      break;
  }
  return false;
}

std::optional<SendJobs::Live> SendJobs::Submit(const StudyRecord& study, const SendEnd* ended) {
  auto job =
      std::make_shared<SendJob>(study, ended_ == EndedJobs::Deleted ? SendJob::Ending::WhenReleased
                                                                    : SendJob::Ending::AtNextStep);
  if (ended != nullptr) job->End(*ended);
  try {
    Live live{engine_.Submit(job), job, false};
    Remember(live.id, study.orthancId);
    return live;
  } catch (const std::exception& e) {
    log_.Warning("CloudIngest: no job-list entry for study " + study.orthancId + ": " + e.what());
    return std::nullopt;
  }
}

void SendJobs::SendProgress(const StudyRecord& study) {
  if (!GetsAJob(study)) return;
  const Key key{study.orthancId, study.claim};
  std::shared_ptr<SendJob> job;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = live_.find(key);
    if (it != live_.end()) job = it->second.job;
  }
  if (job) {
    job->Update(study);
    return;
  }
  // The send's first record: submitted outside the lock (the engine may be slow).
  if (auto live = Submit(study, nullptr)) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.emplace(key, std::move(*live));
  }
}

void SendJobs::SendEnded(const SendEnd& end) {
  const Key key{end.study.orthancId, end.study.claim};
  std::shared_ptr<SendJob> job;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = live_.find(key);
    if (it != live_.end()) job = it->second.job;
  }
  if (job) {
    job->End(end);  // the next refresh lets it take its last step
    return;
  }
  switch (end.outcome) {
    case SendOutcome::Unchanged:
    case SendOutcome::Skipped:
    case SendOutcome::Interrupted:
      return;  // no send took place
    default:
      break;
  }
  // Such a job would end at once, by itself: where ended jobs are deleted,
  // a burst of them would crowd the history before the next pass.
  if (!GetsAJob(end.study) || ended_ == EndedJobs::Deleted) return;
  if (auto live = Submit(end.study, &end)) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.emplace(key, std::move(*live));
  }
}

void SendJobs::Refresh() {
  std::vector<std::pair<Key, Live>> jobs;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs.assign(live_.begin(), live_.end());
  }
  std::vector<Key> done;
  for (auto& [key, live] : jobs) {
    try {
      if (RefreshOne(key, live)) done.push_back(key);
    } catch (const std::exception& e) {
      log_.Warning("CloudIngest: job " + live.id + ": " + e.what());
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Key& key : done) live_.erase(key);
}

bool SendJobs::RefreshOne(const Key& key, const Live& live) {
  switch (engine_.GetState(live.id)) {
    case JobsEngine::State::Failed:
      if (live.job->Ended()) return Finished(live.id);
      // Only a cancel in the job list fails a job whose send still runs. The
      // entry stays until the send ends, so that its end adds no second job.
      if (!live.cancelRequested) Cancelled(key, live.id);
      return false;
    case JobsEngine::State::Succeeded:
      return Finished(live.id);
    case JobsEngine::State::Gone:
      if (finishing_ == live.id) finishing_.clear();
      return true;
    case JobsEngine::State::Parked:
      if (live.job->Ended()) return LastStep(live);
      if (live.job->TakeChanged()) engine_.Resume(live.id);
      return false;
    case JobsEngine::State::Waiting:
      break;  // waits for a worker or is taking its step
  }
  return false;
}

void SendJobs::Cancelled(const Key& key, const std::string& jobId) {
  JobCancelled cancelled{key.first, jobId, {}};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = live_.find(key); it != live_.end()) it->second.cancelRequested = true;
    if (auto it = known_.find(jobId); it != known_.end()) cancelled.user = it->second.cancelBy;
  }
  log_.Warning("CloudIngest: job " + jobId + " was cancelled in Orthanc's job list" +
               (cancelled.user.empty() ? std::string() : " by " + cancelled.user) +
               "; cancelling the send of study " + key.first);
  cancel_(cancelled);
}

bool SendJobs::LastStep(const Live& live) {
  const std::string& id = live.id;
  if (ended_ == EndedJobs::Kept) {
    engine_.Resume(id);  // the next pass finds it ended
    return false;
  }
  // One at a time, each deleted as soon as it ended: at most one of ours is
  // ever ended and in the history (where it counts against JobsHistorySize).
  if (!finishing_.empty() && finishing_ != id) return false;
  live.job->Release();
  engine_.Resume(id);
  switch (engine_.AwaitStep(id, kLastStepWait)) {
    case JobsEngine::State::Succeeded:
    case JobsEngine::State::Failed:
      return Finished(id);
    case JobsEngine::State::Gone:
      finishing_.clear();
      return true;
    case JobsEngine::State::Parked:
    case JobsEngine::State::Waiting:
      break;
  }
  finishing_ = id;  // no worker took it yet: a later pass deletes it
  return false;
}

bool SendJobs::Finished(const std::string& id) {
  if (ended_ == EndedJobs::Deleted) {
    if (finishing_ == id) finishing_.clear();
    try {
      engine_.Delete(id);
    } catch (const std::exception& e) {
      if (!deleteFailureLogged_) {
        deleteFailureLogged_ = true;
        log_.Warning("CloudIngest: cannot delete the ended job " + id +
                     " from Orthanc's job history (" + e.what() +
                     "); such jobs stay until newer ones push them out (logged once)");
      }
    }
  }
  return true;
}

size_t SendJobs::LiveJobs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return live_.size();
}

void SendJobs::Remember(const std::string& jobId, const std::string& orthancStudyId) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!known_.emplace(jobId, Known{orthancStudyId, {}}).second) return;
  knownOrder_.push_back(jobId);
  if (knownOrder_.size() > kKnownJobs) {
    known_.erase(knownOrder_.front());
    knownOrder_.pop_front();
  }
}

std::optional<std::string> SendJobs::StudyOfJob(const std::string& jobId) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = known_.find(jobId);
  if (it == known_.end()) return std::nullopt;
  return it->second.orthancStudyId;
}

void SendJobs::NoteCancelRequest(const std::string& jobId, const std::string& user) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = known_.find(jobId); it != known_.end()) it->second.cancelBy = user;
}

}  // namespace CloudIngest
