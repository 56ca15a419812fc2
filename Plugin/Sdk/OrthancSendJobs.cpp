#include "Sdk/OrthancSendJobs.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>

#include "Sdk/OrthancHandles.h"
#include "Sdk/ThreadNames.h"
#include "Sdk/VersionedCalls.h"

namespace CloudIngest::Sdk {

namespace {

constexpr double kRefreshInterval = 1.0;  // seconds
constexpr double kStepPoll = 0.005;       // seconds between reads of a resumed job's state

// The job's id, known only once OrthancPluginSubmitJob returns, possibly
// after the job's first step has started.
class JobId {
 public:
  void Set(std::string id) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      id_ = std::move(id);
    }
    known_.notify_all();
  }
  // Empty when not known within `seconds`.
  std::string Wait(double seconds) {
    std::unique_lock<std::mutex> lock(mutex_);
    known_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return !id_.empty(); });
    return id_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable known_;
  std::string id_;
};

// What Orthanc's job engine owns from OrthancPluginCreateJob on, and frees
// through Finalize; Orthanc calls the callbacks of one job one at a time.
struct JobHandle {
  OrthancPluginContext* context;
  std::shared_ptr<SendJob> job;
  std::shared_ptr<JobId> id;
  std::string content;  // what Content last answered, valid until its next call
};

JobHandle& Of(void* job) {
  return *static_cast<JobHandle*>(job);
}

void Finalize(void* job) {
  std::unique_ptr<JobHandle> owned(&Of(job));
}

float Progress(void* job) {
  return Of(job).job->Progress();
}

const char* Content(void* job) {
  JobHandle& handle = Of(job);
  handle.content = handle.job->Content();
  return handle.content.c_str();
}

// Returns at once: Success or Failure once the send ended; otherwise the job
// pauses itself, which Orthanc applies as soon as this step returns.
OrthancPluginJobStepStatus Step(void* job) {
  JobHandle& handle = Of(job);
  switch (handle.job->NextStep()) {
    case SendJob::Step::Success:
      return OrthancPluginJobStepStatus_Success;
    case SendJob::Step::Failure:
      return OrthancPluginJobStepStatus_Failure;
    case SendJob::Step::Park:
      break;
  }
  const std::string id = handle.id->Wait(10);
  if (id.empty()) return OrthancPluginJobStepStatus_Failure;  // cannot pause an unknown job
  MemoryBuffer answer(handle.context);
  OrthancPluginRestApiPost(handle.context, answer.Target(), ("/jobs/" + id + "/pause").c_str(), "",
                           0);
  return OrthancPluginJobStepStatus_Continue;
}

OrthancPluginErrorCode StopJob(void*, OrthancPluginJobStopReason) {
  return OrthancPluginErrorCode_Success;
}

OrthancPluginErrorCode Reset(void*) {
  return OrthancPluginErrorCode_Success;
}

}  // namespace

OrthancSendJobs::OrthancSendJobs(OrthancPluginContext* context, const RunningOrthanc& orthanc,
                                 SendJobsPolicy policy, ILogger& log, SendJobs::CancelSend cancel)
    : context_(context),
      orthanc_(orthanc),
      rest_(context),
      log_(log),
      jobs_(*this, policy, orthanc.HasDeleteJob() ? JobHistory::Deletable : JobHistory::Fifo,
            std::move(cancel), log) {}

OrthancSendJobs::~OrthancSendJobs() {
  Stop();
}

void OrthancSendJobs::Start() {
  if (refresher_.joinable()) return;
  stop_.Reset();
  try {
    refresher_ = std::thread([this] {
      NameServiceThread(context_, orthanc_, "ci-jobs");
      while (stop_.WaitFor(kRefreshInterval)) jobs_.Refresh();
    });
  } catch (const std::system_error& e) {
    log_.Error(std::string("CloudIngest: no thread for Orthanc's job list (") + e.what() +
               "); the jobs of running sends stay paused until Orthanc restarts");
  }
}

void OrthancSendJobs::Stop() {
  stop_.Stop();
  if (refresher_.joinable()) refresher_.join();
}

std::string OrthancSendJobs::Submit(std::shared_ptr<SendJob> job) {
  auto handle = std::make_unique<JobHandle>();
  handle->context = context_;
  handle->job = std::move(job);
  handle->id = std::make_shared<JobId>();
  const std::shared_ptr<JobId> id = handle->id;
  const JobCallbacks callbacks{Finalize, Progress, Content, Step, StopJob, Reset};
  OrthancPluginJob* created =
      CreateUnsavedJob(context_, orthanc_, handle.get(), kJobType, callbacks);
  if (created == nullptr) throw std::runtime_error("Orthanc refused to create the job");
  handle.release();  // Orthanc owns it now, and frees it through Finalize
  const OrthancString submitted(context_, OrthancPluginSubmitJob(context_, created, 0));
  if (submitted.IsNull()) throw std::runtime_error("Orthanc refused to submit the job");
  const std::string value = submitted.ToString();
  id->Set(value);
  return value;
}

JobsEngine::State OrthancSendJobs::GetState(const std::string& id) {
  Json::Value job;
  if (!rest_.TryGetJson("/jobs/" + id, job)) return State::Gone;
  const std::string state = job["State"].asString();
  if (state == "Paused") return State::Parked;
  if (state == "Success") return State::Succeeded;
  if (state == "Failure") return State::Failed;
  return State::Waiting;  // Pending, Running, Retry
}

void OrthancSendJobs::Resume(const std::string& id) {
  MemoryBuffer answer(context_);
  // Refused when the job is no longer paused: the next pass sees its new state.
  OrthancPluginRestApiPost(context_, answer.Target(), ("/jobs/" + id + "/resume").c_str(), "", 0);
}

JobsEngine::State OrthancSendJobs::AwaitStep(const std::string& id, double seconds) {
  // A resumed job is Pending until a worker takes it, which Orthanc signals
  // to its workers at once; its step then returns at once too.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  State state = GetState(id);
  while (state == State::Waiting && std::chrono::steady_clock::now() < deadline &&
         stop_.WaitFor(kStepPoll)) {
    state = GetState(id);
  }
  return state;
}

void OrthancSendJobs::Delete(const std::string& id) {
  rest_.Delete("/jobs/" + id);
}

}  // namespace CloudIngest::Sdk
