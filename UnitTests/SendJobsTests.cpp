// Sends mirrored as jobs over a fake job engine that behaves as Orthanc's
// (measured on 1.10.1): a job runs its step when submitted or resumed; a
// "park" answer leaves it paused; a cancelled paused job fails with no
// callback to the plugin.
#include <gtest/gtest.h>
#include <json/json.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "Core/Sending/SendJobs.h"
#include "Core/Sending/StudySender.h"
#include "Fakes/RecordingLogger.h"

using namespace CloudIngest;

namespace {

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

StudyRecord Study(const std::string& id, unsigned sent, unsigned total, uint64_t claim = 1) {
  StudyRecord r;
  r.orthancId = id;
  r.studyInstanceUid = "1.2.840." + id;
  r.orderId = "order-" + id;
  r.instancesSent = sent;
  r.instancesTotal = total;
  r.claim = claim;
  r.state = StudyState::Sending;
  return r;
}

class SendJobsTest : public ::testing::Test {
 protected:
  FakeJobsEngine engine_;
  std::vector<std::string> cancelled_;
  Testing::RecordingLogger log_;
  SendJobs jobs_{engine_, [this](const std::string& id) { cancelled_.push_back(id); }, log_};
};

}  // namespace

TEST_F(SendJobsTest, ARunningSendIsAParkedJobWhoseProgressFollowsItThenEndsInSuccess) {
  jobs_.SendStarted(Study("s1", 0, 4));
  EXPECT_TRUE(engine_.jobs.empty());  // not before the send really starts
  jobs_.SendProgress(Study("s1", 0, 4));
  ASSERT_EQ(1u, engine_.jobs.size());
  const std::string id = engine_.jobs.begin()->first;
  EXPECT_EQ(JobsEngine::State::Parked, engine_.GetState(id));
  Json::Value content = engine_.Content(id);
  EXPECT_EQ("s1", content["orthanc_study_id"].asString());
  EXPECT_EQ("1.2.840.s1", content["study_instance_uid"].asString());
  EXPECT_EQ("order-s1", content["order_id"].asString());
  EXPECT_EQ(0u, content["instances_sent"].asUInt());
  EXPECT_EQ(4u, content["instances_total"].asUInt());
  EXPECT_EQ("sending", content["outcome"].asString());

  jobs_.Refresh();  // nothing new: the parked job is left alone
  EXPECT_EQ(0u, engine_.resumes);
  jobs_.SendProgress(Study("s1", 3, 4));
  EXPECT_EQ(0u, engine_.Content(id)["instances_sent"].asUInt());  // shown at the next step
  jobs_.Refresh();
  EXPECT_EQ(1u, engine_.resumes);
  EXPECT_EQ(3u, engine_.Content(id)["instances_sent"].asUInt());
  EXPECT_FLOAT_EQ(0.75f, engine_.jobs[id].job->Progress());
  EXPECT_EQ(JobsEngine::State::Parked, engine_.GetState(id));

  jobs_.SendEnded({Study("s1", 4, 4), SendOutcome::Sent, {}});
  jobs_.Refresh();
  EXPECT_EQ(JobsEngine::State::Succeeded, engine_.GetState(id));
  content = engine_.Content(id);
  EXPECT_EQ(4u, content["instances_sent"].asUInt());
  EXPECT_EQ("sent", content["outcome"].asString());
  EXPECT_FALSE(content.isMember("error"));
  jobs_.Refresh();
  EXPECT_EQ(0u, jobs_.LiveJobs());
  EXPECT_EQ(1u, engine_.jobs.size());
  EXPECT_TRUE(cancelled_.empty());
}

TEST_F(SendJobsTest, AFailedSendEndsItsJobInFailureWithTheError) {
  jobs_.SendProgress(Study("s1", 1, 4));
  const std::string id = engine_.jobs.begin()->first;
  jobs_.SendEnded({Study("s1", 1, 4), SendOutcome::Failed, "HTTP 400: bad order"});
  jobs_.Refresh();
  EXPECT_EQ(JobsEngine::State::Failed, engine_.GetState(id));
  EXPECT_EQ("HTTP 400: bad order", engine_.Content(id)["error"].asString());
  EXPECT_EQ("failed", engine_.Content(id)["outcome"].asString());
  jobs_.Refresh();
  EXPECT_TRUE(cancelled_.empty());  // its own failure, not a cancel
  EXPECT_EQ(0u, jobs_.LiveJobs());
}

// A send that failed before its first progress (the study was deleted) still
// shows; an attempt that found nothing to send does not.
TEST_F(SendJobsTest, OnlyRealSendsGetAJobThoughSomeEndBeforeTheirFirstProgress) {
  jobs_.SendEnded({Study("gone", 0, 0), SendOutcome::Failed, "the study no longer exists"});
  ASSERT_EQ(1u, engine_.jobs.size());
  EXPECT_EQ(JobsEngine::State::Failed, engine_.jobs.begin()->second.state);
  for (const SendOutcome outcome :
       {SendOutcome::Unchanged, SendOutcome::Skipped, SendOutcome::Interrupted}) {
    jobs_.SendEnded({Study("quiet", 0, 3), outcome, {}});
  }
  EXPECT_EQ(1u, engine_.jobs.size());
}

TEST_F(SendJobsTest, AJobCancelledInTheJobListCancelsItsSendOnceAndAddsNoSecondJob) {
  jobs_.SendProgress(Study("s1", 1, 4));
  const std::string id = engine_.jobs.begin()->first;
  engine_.CancelInJobList(id);
  jobs_.Refresh();
  EXPECT_EQ((std::vector<std::string>{"s1"}), cancelled_);
  jobs_.Refresh();
  EXPECT_EQ(1u, cancelled_.size());
  jobs_.SendEnded({Study("s1", 2, 4), SendOutcome::Cancelled, "cancelled"});
  jobs_.Refresh();
  EXPECT_EQ(0u, jobs_.LiveJobs());
  EXPECT_EQ(1u, engine_.jobs.size());
}

// Each claim of a study is its own send: a resend gets its own job.
TEST_F(SendJobsTest, EachClaimOfAStudyIsItsOwnJob) {
  jobs_.SendProgress(Study("s1", 1, 4, 1));
  jobs_.SendEnded({Study("s1", 1, 4, 1), SendOutcome::Retry, "timeout"});
  jobs_.SendProgress(Study("s1", 0, 4, 2));
  EXPECT_EQ(2u, engine_.jobs.size());
  jobs_.Refresh();
  EXPECT_EQ(JobsEngine::State::Failed, engine_.GetState("job-1"));
  EXPECT_EQ("retry", engine_.Content("job-1")["outcome"].asString());
  EXPECT_EQ(JobsEngine::State::Parked, engine_.GetState("job-2"));
  EXPECT_TRUE(cancelled_.empty());
}
