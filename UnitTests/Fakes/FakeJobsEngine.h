#pragma once
// A job engine that behaves as Orthanc's (measured on 1.10.1): a job runs its
// step when submitted or resumed; a "park" answer leaves it paused; a
// cancelled paused job fails with no callback to the plugin.
#include <json/json.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>

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
    const std::string id = "job-" + std::to_string(jobs.size() + 1);
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
    if (jobs.at(id).state == State::Parked) RunStep(id);
  }
  void CancelInJobList(const std::string& id) { jobs.at(id).state = State::Failed; }

  Json::Value Content(const std::string& id) const {
    Json::Value v;
    std::istringstream(jobs.at(id).content) >> v;
    return v;
  }

  std::map<std::string, Job> jobs;
  unsigned resumes = 0;

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
