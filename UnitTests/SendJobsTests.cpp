// Sends mirrored as jobs over a fake job engine that behaves as Orthanc's
// (Fakes/FakeJobsEngine.h).
#include <gtest/gtest.h>
#include <json/json.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "Core/Sending/SendJobs.h"
#include "Core/Sending/StudySender.h"
#include "Fakes/FakeJobsEngine.h"
#include "Fakes/RecordingLogger.h"

using namespace CloudIngest;

namespace {

StudyRecord Study(const std::string& id, unsigned sent, unsigned total, uint64_t claim = 1,
                  const std::string& trigger = "auto") {
  StudyRecord r;
  r.trigger = trigger;
  r.orthancId = id;
  r.studyInstanceUid = "1.2.840." + id;
  r.orderId = "order-" + id;
  r.instancesSent = sent;
  r.instancesTotal = total;
  r.claim = claim;
  r.state = StudyState::Sending;
  return r;
}

StudyRecord Requested(const std::string& id, unsigned sent, unsigned total, uint64_t claim = 1) {
  return Study(id, sent, total, claim, "manual");
}

// Jobs "All": every send a job, kept once ended (as before CloudIngest.Jobs).
class SendJobsTest : public ::testing::Test {
 protected:
  Testing::FakeJobsEngine engine_;
  std::vector<std::string> cancelled_;
  std::vector<JobCancelled> cancels_;
  Testing::RecordingLogger log_;
  SendJobs jobs_{engine_, SendJobsPolicy::All, JobHistory::Fifo,
                 [this](const JobCancelled& c) {
                   cancelled_.push_back(c.orthancStudyId);
                   cancels_.push_back(c);
                 },
                 log_};
};

// A policy resolved against a history that can delete ended jobs or not.
class SendJobsPolicyTest : public ::testing::Test {
 protected:
  std::unique_ptr<SendJobs> Make(SendJobsPolicy policy, JobHistory history) {
    return std::make_unique<SendJobs>(
        engine_, policy, history,
        [this](const JobCancelled& c) { cancelled_.push_back(c.orthancStudyId); }, log_);
  }
  Testing::FakeJobsEngine engine_;
  std::vector<std::string> cancelled_;
  Testing::RecordingLogger log_;
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
  EXPECT_FALSE(content.isMember("study_instance_uid"));  // anyone may read /jobs
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

// POST /jobs/{id}/cancel passes the plugin's HTTP filter first, which notes
// who asked: the pass that finds the job cancelled cancels the send as them.
TEST_F(SendJobsTest, TheCancelOfAJobNamesWhoAskedForItInTheFilter) {
  jobs_.SendProgress(Study("s1", 1, 4));
  jobs_.SendProgress(Study("s2", 1, 4));
  jobs_.NoteCancelRequest("job-1", "otto");
  engine_.CancelInJobList("job-1");
  engine_.CancelInJobList("job-2");  // not through the HTTP API (a Lua script): nobody named
  jobs_.Refresh();
  ASSERT_EQ(2u, cancels_.size());
  EXPECT_EQ("s1", cancels_[0].orthancStudyId);
  EXPECT_EQ("job-1", cancels_[0].jobId);
  EXPECT_EQ("otto", cancels_[0].user);
  EXPECT_EQ("s2", cancels_[1].orthancStudyId);
  EXPECT_EQ("", cancels_[1].user);
  jobs_.NoteCancelRequest("job-404", "otto");  // not ours: nothing
  jobs_.Refresh();
  EXPECT_EQ(2u, cancels_.size());
}

// The filter must recognise a send's job after the job ended too (resubmit of
// a Failure job), but remembers a bounded number of them.
TEST_F(SendJobsTest, AJobIsKnownAsASendsJobWhileRunningAndAfterItEnded) {
  EXPECT_FALSE(jobs_.StudyOfJob("job-1"));
  jobs_.SendProgress(Study("s1", 1, 4));
  EXPECT_EQ("s1", jobs_.StudyOfJob("job-1").value_or(""));
  jobs_.SendEnded({Study("s1", 4, 4), SendOutcome::Sent, {}});
  jobs_.Refresh();
  jobs_.Refresh();
  EXPECT_EQ(0u, jobs_.LiveJobs());
  EXPECT_EQ("s1", jobs_.StudyOfJob("job-1").value_or(""));
  EXPECT_FALSE(jobs_.StudyOfJob("job-2"));
  EXPECT_FALSE(jobs_.StudyOfJob(""));

  for (size_t i = 0; i < SendJobs::kKnownJobs; i++) {
    jobs_.SendEnded({Study("s" + std::to_string(i + 2), 0, 0), SendOutcome::Failed, "gone"});
  }
  EXPECT_FALSE(jobs_.StudyOfJob("job-1"));  // the oldest forgotten
  EXPECT_EQ("s2", jobs_.StudyOfJob("job-2").value_or(""));
  EXPECT_EQ("s" + std::to_string(SendJobs::kKnownJobs + 1),
            jobs_.StudyOfJob("job-" + std::to_string(SendJobs::kKnownJobs + 1)).value_or(""));
}

// Any user Orthanc lets in may read GET /jobs?expand, whatever their role: a
// job's content names the study by its Orthanc id alone, and its error loses
// the study's identifiers and anything that reads as a DICOM UID.
TEST_F(SendJobsTest, AJobsContentCarriesNoDicomIdentifierNorPatientData) {
  StudyRecord study = Study("s1", 1, 4);
  study.studyInstanceUid = "1.2.826.0.1.3680043.8.498.11";
  study.patientId = "PID-4711";
  study.patientName = "Doe^Jane";
  const std::string error =
      "HTTP 409 from 10.0.0.1: study 1.2.826.0.1.3680043.8.498.11 (patient PID-4711, "
      "Doe^Jane) has instance 2.25.329800735698586629295641978511506172918 already; "
      "series 1.2.3.4.5 at 1.5 MB/s";
  jobs_.SendProgress(study);
  jobs_.SendEnded({study, SendOutcome::Failed, error});
  jobs_.Refresh();
  const Json::Value content = engine_.Content("job-1");
  const std::string& text = engine_.jobs.at("job-1").content;  // as Orthanc shows it
  for (const char* secret :
       {"1.2.826.0.1.3680043.8.498.11", "PID-4711", "Doe", "Jane", "2.25.3298", "1.2.3.4.5"}) {
    EXPECT_EQ(std::string::npos, text.find(secret)) << secret << " in " << text;
  }
  EXPECT_EQ(
      "HTTP 409 from 10.0.0.1: study [uid] (patient [patient id], [patient name]) has instance "
      "[uid] already; series [uid] at 1.5 MB/s",
      content["error"].asString());
  EXPECT_EQ("s1", content["orthanc_study_id"].asString());
  EXPECT_EQ("order-s1", content["order_id"].asString());
  EXPECT_FALSE(content.isMember("study_instance_uid"));
  // A short patient id inside a longer word or number is not that patient id.
  study.patientId = "40";
  EXPECT_EQ("HTTP 400 for [patient id]", WithoutStudyIdentifiers("HTTP 400 for 40", study));
}

// Orthanc 1.10 cannot delete an ended job, and forgets the oldest once
// JobsHistorySize (default 10) newer ones ended: Auto gives a job only to the
// sends a person asked for, so that automatic sends push no user's job out.
TEST_F(SendJobsPolicyTest, AutoOnAHistoryThatCannotDeleteGivesJobsToRequestedSendsOnly) {
  const auto jobs = Make(SendJobsPolicy::Auto, JobHistory::Fifo);
  EXPECT_EQ(SendJobs::Mirrored::RequestedSends, jobs->MirroredSends());
  EXPECT_EQ(SendJobs::EndedJobs::Kept, jobs->EndedJobsFate());
  for (const char* trigger : {"auto", "catch-up"}) {
    jobs->SendProgress(Study(trigger, 1, 4, 1, trigger));
    jobs->SendEnded({Study(trigger, 4, 4, 1, trigger), SendOutcome::Sent, {}});
    jobs->SendEnded({Study(trigger, 0, 0, 2, trigger), SendOutcome::Failed, "gone"});
  }
  jobs->Refresh();
  EXPECT_TRUE(engine_.jobs.empty());
  EXPECT_EQ(0u, jobs->LiveJobs());

  jobs->SendProgress(Requested("asked", 1, 4));
  ASSERT_EQ(1u, engine_.jobs.size());
  const std::string id = engine_.jobs.begin()->first;
  EXPECT_EQ("asked", jobs->StudyOfJob(id).value_or(""));
  jobs->SendEnded({Requested("asked", 4, 4), SendOutcome::Sent, {}});
  jobs->Refresh();
  jobs->Refresh();
  EXPECT_EQ(JobsEngine::State::Succeeded, engine_.GetState(id));  // kept: it cannot go
  EXPECT_TRUE(engine_.deleted.empty());
  EXPECT_EQ(0u, jobs->LiveJobs());
  EXPECT_FALSE(log_.Logged("\"All\""));
}

TEST_F(SendJobsPolicyTest, RequestedAndNoneChooseTheSameWhateverTheHistory) {
  for (const JobHistory history : {JobHistory::Deletable, JobHistory::Fifo}) {
    engine_.jobs.clear();
    const auto requested = Make(SendJobsPolicy::Requested, history);
    EXPECT_EQ(SendJobs::EndedJobs::Kept, requested->EndedJobsFate());
    requested->SendProgress(Study("auto", 1, 4));
    EXPECT_TRUE(engine_.jobs.empty());
    requested->SendProgress(Requested("asked", 1, 4));
    requested->SendEnded({Requested("failed", 0, 0), SendOutcome::Failed, "gone"});
    EXPECT_EQ(2u, engine_.jobs.size());

    engine_.jobs.clear();
    const auto none = Make(SendJobsPolicy::None, history);
    EXPECT_EQ(SendJobs::Mirrored::NoSend, none->MirroredSends());
    none->SendProgress(Requested("asked", 1, 4));
    none->SendEnded({Requested("failed", 0, 0), SendOutcome::Failed, "gone"});
    EXPECT_TRUE(engine_.jobs.empty());
  }
}

// Orthanc 1.12.2 and later: Auto gives every send a job and deletes it from
// the history in the pass that lets it take its last step; the plugin's HTTP
// filter still knows it for one of ours.
TEST_F(SendJobsPolicyTest, AutoOnAHistoryThatCanDeleteDeletesEachEndedJob) {
  const auto jobs = Make(SendJobsPolicy::Auto, JobHistory::Deletable);
  EXPECT_EQ(SendJobs::Mirrored::EverySend, jobs->MirroredSends());
  EXPECT_EQ(SendJobs::EndedJobs::Deleted, jobs->EndedJobsFate());
  jobs->SendProgress(Study("s1", 1, 4));
  ASSERT_EQ(1u, engine_.jobs.size());
  const std::string id = engine_.jobs.begin()->first;
  jobs->Refresh();
  EXPECT_EQ(JobsEngine::State::Parked, engine_.GetState(id));  // running: shown
  jobs->SendEnded({Study("s1", 4, 4), SendOutcome::Sent, {}});
  jobs->Refresh();
  EXPECT_EQ((std::vector<std::string>{id}), engine_.deleted);
  EXPECT_EQ(JobsEngine::State::Gone, engine_.GetState(id));
  EXPECT_EQ(0u, jobs->LiveJobs());
  EXPECT_EQ("s1", jobs->StudyOfJob(id).value_or(""));

  // A failed attempt's job goes the same way; one that fails before its first
  // progress gets none (it would end at once, unbounded by the passes).
  jobs->SendProgress(Study("s2", 1, 4));
  jobs->SendEnded({Study("s2", 1, 4), SendOutcome::Retry, "timeout"});
  jobs->SendEnded({Study("gone", 0, 0), SendOutcome::Failed, "the study no longer exists"});
  jobs->Refresh();
  EXPECT_EQ(2u, engine_.deleted.size());
  EXPECT_TRUE(engine_.jobs.empty());
  EXPECT_EQ(0u, jobs->LiveJobs());
}

// However many sends end together, and however long Orthanc's workers are
// busy, at most one of the sends' ended jobs is in the history at a time.
TEST_F(SendJobsPolicyTest, AutoLetsOneEndedJobAtATimeIntoTheHistory) {
  const auto jobs = Make(SendJobsPolicy::Auto, JobHistory::Deletable);
  for (int i = 0; i < 30; i++) jobs->SendProgress(Study("s" + std::to_string(i), 1, 2));
  ASSERT_EQ(30u, engine_.jobs.size());
  for (int i = 0; i < 30; i++) {
    jobs->SendEnded({Study("s" + std::to_string(i), 2, 2), SendOutcome::Sent, {}});
  }
  engine_.busy = true;  // e.g. users' archives on every worker
  jobs->Refresh();
  EXPECT_EQ(1u, engine_.resumes);  // the others stay parked, out of the history
  EXPECT_EQ(0u, engine_.EndedInHistory());
  jobs->Refresh();
  EXPECT_EQ(1u, engine_.resumes);
  engine_.Free();
  EXPECT_EQ(1u, engine_.EndedInHistory());
  jobs->Refresh();
  EXPECT_EQ(0u, engine_.EndedInHistory());
  EXPECT_EQ(30u, engine_.deleted.size());
  EXPECT_TRUE(engine_.jobs.empty());
  EXPECT_EQ(0u, jobs->LiveJobs());
}

// A step that a worker takes only after the send ended (resumed for new
// progress while every worker was busy) does not end the job out of turn.
TEST_F(SendJobsPolicyTest, AutoEndsAJobOnlyAtTheStepThatIsItsTurn) {
  const auto jobs = Make(SendJobsPolicy::Auto, JobHistory::Deletable);
  jobs->SendProgress(Study("s1", 1, 4));
  jobs->SendProgress(Study("s2", 1, 4));
  jobs->SendProgress(Study("s1", 2, 4));
  jobs->SendProgress(Study("s2", 2, 4));
  engine_.busy = true;
  jobs->Refresh();  // new progress: both resumed, neither taken yet
  EXPECT_EQ(2u, engine_.resumes);
  jobs->SendEnded({Study("s1", 4, 4), SendOutcome::Sent, {}});
  jobs->SendEnded({Study("s2", 4, 4), SendOutcome::Sent, {}});
  engine_.Free();
  EXPECT_EQ(0u, engine_.EndedInHistory());
  EXPECT_EQ(JobsEngine::State::Parked, engine_.GetState("job-1"));
  EXPECT_EQ("sent", engine_.Content("job-1")["outcome"].asString());
  jobs->Refresh();
  EXPECT_EQ((std::vector<std::string>{"job-1", "job-2"}), engine_.deleted);
  EXPECT_EQ(0u, jobs->LiveJobs());
}

// A job cancelled in /jobs cancels its send, and is deleted once the send ended.
TEST_F(SendJobsPolicyTest, AutoDeletesAJobCancelledInTheJobListOnceItsSendEnded) {
  const auto jobs = Make(SendJobsPolicy::Auto, JobHistory::Deletable);
  jobs->SendProgress(Study("s1", 1, 4));
  engine_.CancelInJobList("job-1");
  jobs->Refresh();
  EXPECT_EQ((std::vector<std::string>{"s1"}), cancelled_);
  EXPECT_TRUE(engine_.deleted.empty());
  jobs->SendEnded({Study("s1", 2, 4), SendOutcome::Cancelled, "cancelled"});
  jobs->Refresh();
  EXPECT_EQ((std::vector<std::string>{"job-1"}), engine_.deleted);
  EXPECT_EQ(1u, cancelled_.size());
  EXPECT_EQ(0u, jobs->LiveJobs());
}

// Orthanc refuses the delete: logged once, and the sends go on.
TEST_F(SendJobsPolicyTest, ARefusedDeleteIsLoggedOnceAndTheJobLetGo) {
  const auto jobs = Make(SendJobsPolicy::Auto, JobHistory::Deletable);
  engine_.refuseDeletes = true;
  for (const char* study : {"s1", "s2"}) {
    jobs->SendProgress(Study(study, 1, 4));
    jobs->SendEnded({Study(study, 4, 4), SendOutcome::Sent, {}});
    jobs->Refresh();
  }
  EXPECT_EQ(1u, log_.Count("cannot delete the ended job"));
  EXPECT_EQ(0u, jobs->LiveJobs());
  EXPECT_EQ(2u, engine_.EndedInHistory());
}

// "All" keeps every ended job, as the plugin did before Jobs: one warning.
TEST_F(SendJobsPolicyTest, AllKeepsEveryEndedJobAndWarnsOnce) {
  for (const JobHistory history : {JobHistory::Deletable, JobHistory::Fifo}) {
    const auto jobs = Make(SendJobsPolicy::All, history);
    EXPECT_EQ(SendJobs::Mirrored::EverySend, jobs->MirroredSends());
    EXPECT_EQ(SendJobs::EndedJobs::Kept, jobs->EndedJobsFate());
    jobs->SendProgress(Study("s1", 1, 4));
    jobs->SendEnded({Study("s1", 4, 4), SendOutcome::Sent, {}});
    jobs->Refresh();
    jobs->Refresh();
    EXPECT_TRUE(engine_.deleted.empty());
  }
  EXPECT_EQ(2u, engine_.EndedInHistory());
  EXPECT_EQ(2u, log_.Count("JobsHistorySize"));
  for (const SendJobsPolicy quiet :
       {SendJobsPolicy::Auto, SendJobsPolicy::Requested, SendJobsPolicy::None}) {
    Make(quiet, JobHistory::Fifo);
  }
  EXPECT_EQ(2u, log_.Count("JobsHistorySize"));
}
