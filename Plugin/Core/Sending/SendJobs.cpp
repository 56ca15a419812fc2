#include "Core/Sending/SendJobs.h"

#include <json/json.h>

#include <vector>

#include "Core/Sending/StudySender.h"

namespace CloudIngest {

SendJob::SendJob(const StudyRecord& study)
    : orthancStudyId_(study.orthancId), state_{study, SendOutcome::Retry, {}} {}

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
  if (!ended_) return Step::Park;
  return SendSucceeded(state_) ? Step::Success : Step::Failure;
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

std::optional<SendJobs::Live> SendJobs::Submit(const StudyRecord& study, const SendEnd* ended) {
  auto job = std::make_shared<SendJob>(study);
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
      const JobsEngine::State state = engine_.GetState(live.id);
      switch (state) {
        case JobsEngine::State::Failed:
          if (live.job->Ended()) {
            done.push_back(key);
          } else if (!live.cancelRequested) {
            // Only a cancel in the job list fails a job whose send still runs. The
            // entry stays until the send ends, so that its end adds no second job.
            JobCancelled cancelled{key.first, live.id, {}};
            {
              std::lock_guard<std::mutex> lock(mutex_);
              if (auto it = live_.find(key); it != live_.end()) it->second.cancelRequested = true;
              if (auto it = known_.find(live.id); it != known_.end()) {
                cancelled.user = it->second.cancelBy;
              }
            }
            log_.Warning("CloudIngest: job " + live.id + " was cancelled in Orthanc's job list" +
                         (cancelled.user.empty() ? std::string() : " by " + cancelled.user) +
                         "; cancelling the send of study " + key.first);
            cancel_(cancelled);
          }
          break;
        case JobsEngine::State::Succeeded:
        case JobsEngine::State::Gone:
          done.push_back(key);
          break;
        case JobsEngine::State::Parked:
          if (live.job->TakeChanged() || live.job->Ended()) engine_.Resume(live.id);
          break;
        case JobsEngine::State::Waiting:
          break;  // waits for a worker or is taking its step
      }
    } catch (const std::exception& e) {
      log_.Warning("CloudIngest: job " + live.id + ": " + e.what());
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Key& key : done) live_.erase(key);
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
