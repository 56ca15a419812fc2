// Orthanc's own /jobs routes on the plugin's jobs: which requests are a job
// action (whatever their spelling), and who may do one to a send's job.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "Core/Sending/SendJobs.h"
#include "Fakes/FakeIngestService.h"
#include "Fakes/FakeJobsEngine.h"
#include "Fakes/RecordingLogger.h"
#include "Rest/JobRoutes.h"

namespace CloudIngest {
namespace {

constexpr char kJob[] = "5f0d1b2e-3c4a-4b5c-9d6e-7f8091a2b3c4";

void ExpectAction(const std::string& method, const std::string& uri, JobAction action,
                  const std::string& job = kJob) {
  const auto request = ParseJobRequest(method, uri);
  ASSERT_TRUE(request.has_value()) << method << " " << uri;
  EXPECT_EQ(job, request->jobId) << uri;
  EXPECT_EQ(action, request->action) << uri;
}

TEST(JobRoutes, EachActionOnAJobIsRecognised) {
  const std::string job = std::string("/jobs/") + kJob;
  ExpectAction("POST", job + "/cancel", JobAction::Cancel);
  ExpectAction("POST", job + "/pause", JobAction::Pause);
  ExpectAction("POST", job + "/resume", JobAction::Resume);
  ExpectAction("POST", job + "/resubmit", JobAction::Resubmit);
  ExpectAction("DELETE", job, JobAction::Delete);  // Orthanc 1.12: a job out of the history
}

// Every spelling that Orthanc 1.10.1 was measured to route to the action
// (double and trailing slashes, "." and ".." segments, %-escapes), and more:
// recognising a spelling Orthanc would not route costs a 403 for a 404.
TEST(JobRoutes, EverySpellingOrthancRoutesIsRecognised) {
  const std::string j = kJob;
  for (const std::string& uri :
       {"//jobs/" + j + "/cancel", "/jobs//" + j + "/cancel", "/./jobs/" + j + "/cancel",
        "/jobs/./" + j + "/cancel", "/jobs/x/../" + j + "/cancel", "/x/../jobs/" + j + "/cancel",
        "/jobs/" + j + "/cancel/", "/jobs/" + j + "/%63ancel", "/%6Aobs/" + j + "/cancel",
        "/jobs/" + j + "/cancel?x=1", "/jobs/" + j + "/cancel/.", "/jobs/" + j + "%2fcancel",
        "/jobs/" + j + "/cancel/x/..", "/jobs/" + j + "/./cancel", "/jobs/" + j + "/%2563ancel",
        "/JOBS/" + j + "/Cancel", "jobs/" + j + "/cancel", "/../jobs/" + j + "/cancel"}) {
    ExpectAction("POST", uri, JobAction::Cancel);
  }
}

TEST(JobRoutes, AnythingElseIsNoJobAction) {
  const std::string j = kJob;
  for (const auto& [method, uri] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/jobs/" + j + "/cancel"},
           {"PUT", "/jobs/" + j + "/cancel"},
           {"POST", "/jobs/" + j},
           {"POST", "/jobs"},
           {"POST", "/jobs/" + j + "/archive"},
           {"POST", "/jobs/" + j + "/cancel/more"},
           {"POST", "/jobs/" + j + "/x/../../cancel"},
           {"POST", "/studies/" + j + "/cancel"},
           {"POST", "/cloud-ingest/studies/" + j + "/cancel"},
           {"POST", "/jobsx/" + j + "/cancel"},
           {"DELETE", "/jobs"},
           {"DELETE", "/jobs/" + j + "/cancel"},
           {"POST", ""},
           {"POST", "/"},
           {"POST", "%"},
           {"POST", "/jobs/%/cancel%"},
           {"POST", std::string(100000, '/')},
           {"POST", std::string(100000, '%')},
           {"POST", "/jobs/" + std::string(50000, 'a') + "/../" + std::string(50000, '.')}}) {
    EXPECT_FALSE(ParseJobRequest(method, uri).has_value()) << method << " " << uri.substr(0, 80);
  }
}

StudyRecord Sending(const std::string& orthancId) {
  StudyRecord r;
  r.orthancId = orthancId;
  r.claim = 1;
  r.instancesTotal = 4;
  r.state = StudyState::Sending;
  return r;
}

PermissionSettings Roles() {
  PermissionSettings p;
  p.configured = true;
  p.users = {{"vera", Role::Viewer}, {"otto", Role::Operator}, {"ada", Role::Admin}};
  p.defaultRole = Role::None;
  return p;
}

class JobsGuardTest : public ::testing::Test {
 protected:
  JobsGuardTest() {
    jobs_.SendProgress(Sending("study-1"));  // job-1, a send's job
  }
  Testing::FakeJobsEngine engine_;
  Testing::RecordingLogger log_;
  std::vector<JobCancelled> cancels_;
  SendJobs jobs_{engine_, SendJobsPolicy::All, JobHistory::Fifo,
                 [this](const JobCancelled& c) { cancels_.push_back(c); }, log_};
  Testing::FakeIngestService service_;
};

// With Permissions, each action on a send's job needs operator; a refusal is
// recorded with the user, the method and the route as Orthanc got it.
TEST_F(JobsGuardTest, AnActionOnASendsJobNeedsOperator) {
  const JobsGuard guard(service_, jobs_, Roles());
  for (const char* action : {"cancel", "pause", "resume", "resubmit"}) {
    const std::string uri = std::string("/jobs/job-1/") + action;
    for (const char* user : {"", "nobody", "vera"}) {
      EXPECT_FALSE(guard.Allows("POST", uri, user)) << user << " " << uri;
    }
    for (const char* user : {"otto", "ada"}) {
      EXPECT_TRUE(guard.Allows("POST", uri, user)) << user << " " << uri;
    }
  }
  EXPECT_FALSE(guard.Allows("DELETE", "/jobs/job-1", "vera"));
  ASSERT_EQ(13u, service_.denials.size());
  EXPECT_EQ("nobody", service_.denials[1].user);
  EXPECT_EQ("POST", service_.denials[1].method);
  EXPECT_EQ("/jobs/job-1/cancel", service_.denials[1].route);
  EXPECT_EQ("DELETE", service_.denials.back().method);
  EXPECT_TRUE(service_.cancels.empty());  // the guard cancels nothing itself
}

// Other jobs (a user's archive), other routes and reading are not the plugin's.
TEST_F(JobsGuardTest, OtherJobsAndRoutesAreLeftToOrthanc) {
  const JobsGuard guard(service_, jobs_, Roles());
  EXPECT_TRUE(guard.Allows("POST", "/jobs/archive-job/cancel", "nobody"));
  EXPECT_TRUE(guard.Allows("POST", "/jobs/job-2/cancel", "nobody"));
  EXPECT_TRUE(guard.Allows("GET", "/jobs/job-1", "nobody"));
  EXPECT_TRUE(guard.Allows("GET", "/jobs?expand", "nobody"));
  EXPECT_TRUE(guard.Allows("POST", "/studies/study-1/archive", "nobody"));
  EXPECT_TRUE(service_.denials.empty());
}

// An allowed cancel names the user when the refresh pass cancels the send.
TEST_F(JobsGuardTest, AnAllowedCancelIsDoneAsTheUserWhoAsked) {
  const JobsGuard guard(service_, jobs_, Roles());
  EXPECT_FALSE(guard.Allows("POST", "/jobs/job-1/cancel", "nobody"));
  EXPECT_TRUE(guard.Allows("POST", "/jobs/job-1/pause", "otto"));
  EXPECT_TRUE(guard.Allows("POST", "//jobs/job-1/./cancel/", "otto"));
  engine_.CancelInJobList("job-1");  // what Orthanc does next
  jobs_.Refresh();
  ASSERT_EQ(1u, cancels_.size());
  EXPECT_EQ("study-1", cancels_[0].orthancStudyId);
  EXPECT_EQ("job-1", cancels_[0].jobId);
  EXPECT_EQ("otto", cancels_[0].user);
}

// Without Permissions everyone is admin: nothing is refused, and a cancel
// still names the user Orthanc authenticated.
TEST_F(JobsGuardTest, WithoutPermissionsEveryoneMayAndTheCancelNamesThem) {
  const JobsGuard guard(service_, jobs_, PermissionSettings{});
  for (const char* action : {"cancel", "pause", "resume", "resubmit"}) {
    EXPECT_TRUE(guard.Allows("POST", std::string("/jobs/job-1/") + action, "nobody"));
  }
  EXPECT_TRUE(service_.denials.empty());
  engine_.CancelInJobList("job-1");
  jobs_.Refresh();
  ASSERT_EQ(1u, cancels_.size());
  EXPECT_EQ("nobody", cancels_[0].user);
}

}  // namespace
}  // namespace CloudIngest
