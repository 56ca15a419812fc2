#pragma once
// A job engine that behaves as Orthanc's (measured on 1.10.1): a job runs its
// step when submitted or resumed; a "park" answer leaves it paused; a
// cancelled paused job fails with no callback to the plugin. A busy engine
// (every worker taken) leaves resumed jobs waiting until it is free again.
#include <json/json.h>

#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "Core/Sending/SendJobs.h"

namespace CloudIngest::Testing {

class FakeJobsEngine : public JobsEngine {
 public:
  struct Job {
    std::shared_ptr<SendJob> job;
    State state = State::Waiting;
    unsigned steps = 0;
    std::string content;  // as of the last step, as Orthanc shows it
  };

  std::string Submit(std::shared_ptr<SendJob> job) override {
    const std::string id = "job-" + std::to_string(++submitted);
    jobs[id].job = std::move(job);
    RunStep(id);
    return id;
  }
  State GetState(const std::string& id) override {
    const auto it = jobs.find(id);
    return it == jobs.end() ? State::Gone : it->second.state;
  }
  void Resume(const std::string& id) override {
    resumes++;
    Job& j = jobs.at(id);
    if (j.state != State::Parked) return;
    if (busy) {
      j.state = State::Waiting;
    } else {
      RunStep(id);
    }
  }
  State AwaitStep(const std::string& id, double) override { return GetState(id); }
  void Delete(const std::string& id) override {
    if (refuseDeletes) throw std::runtime_error("Bad request");
    const auto it = jobs.find(id);
    if (it == jobs.end() || it->second.state == State::Waiting ||
        it->second.state == State::Parked) {
      throw std::runtime_error("Inexistent item");  // as Orthanc: only an ended job
    }
    jobs.erase(it);
    deleted.push_back(id);
  }
  void CancelInJobList(const std::string& id) { jobs.at(id).state = State::Failed; }
  // Every worker free again: the waiting jobs take their step.
  void Free() {
    busy = false;
    for (auto& [id, j] : jobs) {
      if (j.state == State::Waiting) RunStep(id);
    }
  }
  // The ended jobs in the history (Orthanc counts them against JobsHistorySize).
  size_t EndedInHistory() const {
    size_t n = 0;
    for (const auto& [id, j] : jobs) {
      n += j.state == State::Succeeded || j.state == State::Failed;
    }
    return n;
  }

  Json::Value Content(const std::string& id) const {
    Json::Value v;
    std::istringstream(jobs.at(id).content) >> v;
    return v;
  }

  std::map<std::string, Job> jobs;
  unsigned resumes = 0;
  unsigned submitted = 0;
  bool busy = false;
  bool refuseDeletes = false;
  std::vector<std::string> deleted;

 private:
  void RunStep(const std::string& id) {
    Job& j = jobs.at(id);
    j.steps++;
    j.content = j.job->Content();
    switch (j.job->NextStep()) {
      case SendJob::Step::Park:
        j.state = State::Parked;
        break;
      case SendJob::Step::Success:
        j.state = State::Succeeded;
        break;
      case SendJob::Step::Failure:
        j.state = State::Failed;
        break;
    }
  }
};

}  // namespace CloudIngest::Testing
