// The service as Plugin.cpp runs it (scheduler, workers, sender, cancel
// registry, catch-up), with the cloud, Orthanc's studies and its /changes faked.
#include <gtest/gtest.h>
#include <json/json.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include "Core/CloudIngestService.h"
#include "Fakes/FakeChangeFeed.h"
#include "Fakes/FakeCloud.h"
#include "Fakes/FakeHttpClient.h"
#include "Fakes/FakeIngestService.h"
#include "Fakes/FakeStudySource.h"
#include "Fakes/RecordingLogger.h"
#include "Fakes/WaitUntil.h"

using namespace CloudIngest;
using namespace CloudIngest::Testing;

namespace {

// The service owns its clock; the test moves the one it keeps.
class ForwardingClock : public IClock {
 public:
  explicit ForwardingClock(const IClock& target) : target_(target) {}
  double Now() const override { return target_.Now(); }

 private:
  const IClock& target_;
};

constexpr double kT0 = 1'700'000'000.0;

// The PUT with call index `index` waits until Release() (30 s at most).
// Declared before the service that uses it, so it outlives the service.
class HeldPut {
 public:
  HeldPut(FakeCloud& cloud, unsigned index) {
    cloud.SetFault("put",
                   [this, index](const HttpRequest&, unsigned call) -> std::optional<HttpResponse> {
                     if (call != index) return std::nullopt;
                     std::unique_lock<std::mutex> lock(mutex_);
                     held_ = true;
                     changed_.notify_all();
                     changed_.wait_for(lock, std::chrono::seconds(30), [&] { return released_; });
                     return std::nullopt;
                   });
  }
  ~HeldPut() { Release(); }
  bool WaitHeld() {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return held_; });
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      released_ = true;
    }
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool held_ = false, released_ = false;
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/service-test-XXXXXX";
    dir_ = mkdtemp(pattern);
    config_.url = "http://127.0.0.1:9";
    config_.tokenUrl = config_.url + "/auth/token";
    config_.clientId = "client";
    config_.clientSecret = "very-secret-value";
    config_.allowedUploadHosts = {"127.0.0.1"};
    config_.retry.baseDelay = 0.001;
    config_.retry.maxDelay = 0.005;
    config_.auditLog = dir_ + "/audit.jsonl";
    config_.database = dir_ + "/cloud-ingest.db";
    config_.temporaryDirectory = dir_ + "/tmp";
    std::filesystem::create_directory(config_.temporaryDirectory);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<CloudIngestService> MakeService(IChangeFeed* changes = nullptr) {
    return std::make_unique<CloudIngestService>(config_, source_, log_, changes,
                                                std::make_unique<ForwardingHttp>(cloud_));
  }
  // On the test's clock, which stands still until advanced (no workers: nothing comes due).
  std::unique_ptr<CloudIngestService> MakeServiceOnTestClock() {
    return std::make_unique<CloudIngestService>(config_, source_, log_, nullptr,
                                                std::make_unique<ForwardingHttp>(cloud_),
                                                std::make_unique<ForwardingClock>(clock_));
  }

  // The audit log's records of `event`, parsed.
  std::vector<Json::Value> Audited(const std::string& event) const {
    std::vector<Json::Value> records;
    std::ifstream in(config_.auditLog);
    for (std::string line; std::getline(in, line);) {
      Json::Value record;
      std::istringstream(line) >> record;
      if (record["event"].asString() == event) records.push_back(record);
    }
    return records;
  }

  static EnqueueRequest ManualSend(const std::string& id) {
    EnqueueRequest request;
    request.orthancId = id;
    request.requestedBy = "tester";
    return request;
  }

  std::string dir_;
  Configuration config_;
  ManualClock clock_{kT0};
  FakeCloud cloud_;
  FakeStudySource source_;
  Testing::RecordingLogger log_;
};

}  // namespace

// Cancel then resend while the first attempt is still between two instances:
// the resend runs as a new claim, and the first attempt stops without touching
// the new cycle's record (it used to lose its cancel when the resend was
// claimed, go on, and overwrite the order id and counts).
TEST_F(ServiceTest, ACancelledAttemptStopsAndLeavesTheResendAlone) {
  config_.concurrency = 1;
  config_.studyWorkers = 2;
  source_.AddStudy("s1", "1.2.840.1", 6);
  HeldPut held(cloud_, 2);  // attempt 1's third PUT waits until the test lets it go
  auto service = MakeService();
  service->Start();
  service->Send(ManualSend("s1"));
  ASSERT_TRUE(held.WaitHeld());
  const StudyRecord first = *Tracked(*service, "s1");
  ASSERT_EQ(StudyState::Sending, first.state);
  ASSERT_FALSE(first.orderId.empty());

  ASSERT_TRUE(service->Cancel({"s1", {}, {}}));
  EXPECT_TRUE(service->Cancels().IsCancelled("s1", first.claim));
  service->Send(ManualSend("s1"));  // the resend: attempt 2, on the other worker
  const bool secondSent =
      WaitUntil([&] { return Tracked(*service, "s1")->state == StudyState::Sent; });
  const StudyRecord second = *Tracked(*service, "s1");
  held.Release();
  ASSERT_TRUE(secondSent) << ToString(second.state);
  EXPECT_EQ(first.claim + 1, second.claim);
  EXPECT_NE(first.orderId, second.orderId);
  EXPECT_EQ(6u, second.instancesSent);

  // Attempt 1 finishes its held PUT, sees its cancel and ends, without a
  // write to the study's record; then the scheduler drops the cancel.
  EXPECT_TRUE(WaitUntil([&] { return log_.Logged("study s1: attempt 1 stopped (cancelled)"); }));
  EXPECT_TRUE(WaitUntil([&] { return !service->Cancels().IsCancelled("s1", first.claim); }));
  service->Stop();
  const StudyRecord after = *Tracked(*service, "s1");
  EXPECT_EQ(StudyState::Sent, after.state);
  EXPECT_EQ(second.orderId, after.orderId);
  EXPECT_EQ(6u, after.instancesSent);
  EXPECT_EQ(second.bytesSent, after.bytesSent);
  EXPECT_EQ(second.claim, after.claim);
  EXPECT_EQ(2u, cloud_.Calls("new-order"));
  EXPECT_EQ(3u + 6u, cloud_.Calls("put"));  // none from attempt 1 after the held one
  EXPECT_EQ(1u, cloud_.Calls("add-metadata"));
  EXPECT_TRUE(log_.Errors().empty());
}

// A corrupt database does not keep Orthanc from starting: it is moved aside,
// and every study still in Orthanc's /changes is queued and sent again.
TEST_F(ServiceTest, ACorruptDatabaseIsMovedAsideAndTheChangesLogIsCaughtUp) {
  {
    std::ofstream garbage(config_.database, std::ios::binary);
    for (int i = 0; i < 500; ++i) garbage << "\x13\x37 garbage ";
  }
  FakeChangeFeed changes;
  source_.AddStudy("old-1", "1.2.840.11", 2);
  source_.AddStudy("old-2", "1.2.840.12", 3);
  changes.Add("NewStudy", "old-1");
  changes.Add("StableStudy", "old-1");
  changes.Add("NewStudy", "old-2");
  changes.Add("StableStudy", "old-2");

  auto service = MakeService(&changes);
  const auto& recovery = service->DatabaseRecovered();
  ASSERT_TRUE(recovery.has_value());
  EXPECT_EQ(0u, recovery->movedTo.rfind(config_.database + ".corrupt-", 0)) << recovery->movedTo;
  EXPECT_TRUE(std::filesystem::exists(recovery->movedTo));
  EXPECT_NE(std::string::npos, recovery->reason.find("not a database")) << recovery->reason;
  const auto errors = log_.Errors();
  ASSERT_EQ(1u, errors.size());
  EXPECT_NE(std::string::npos, errors[0].find(recovery->movedTo)) << errors[0];
  EXPECT_EQ(std::string::npos, errors[0].find('\n'));
  // Durable, so a stop before the catch-up does not lose it.
  EXPECT_EQ(0, service->Status().changesCursor);

  service->Start();
  EXPECT_TRUE(WaitUntil([&] {
    const auto one = Tracked(*service, "old-1");
    const auto two = Tracked(*service, "old-2");
    return one && two && one->state == StudyState::Sent && two->state == StudyState::Sent;
  }));
  EXPECT_EQ("catch-up", Tracked(*service, "old-1")->trigger);
  EXPECT_EQ(changes.LastSeq(), service->Status().changesCursor);
  source_.AddStudy("new", "1.2.840.13", 1);
  service->OnStableStudy("new");  // a study arriving after start
  EXPECT_TRUE(WaitUntil([&] { return Tracked(*service, "new")->state == StudyState::Sent; }));
  service->Stop();
  EXPECT_EQ(3u, cloud_.Calls("add-metadata"));

  // Healthy now: the next start opens it as it is, from where it was.
  auto restarted = MakeService(&changes);
  EXPECT_FALSE(restarted->DatabaseRecovered().has_value());
  EXPECT_EQ(StudyState::Sent, Tracked(*restarted, "old-2")->state);
}

TEST_F(ServiceTest, ADatabaseThatCannotBeOpenedStopsTheStartWithOneLine) {
  config_.database = dir_ + "/missing-folder/cloud-ingest.db";
  try {
    MakeService();
    FAIL() << "expected a ConfigurationError";
  } catch (const ConfigurationError& e) {
    const std::string what = e.what();
    EXPECT_EQ(0u, what.rfind("CloudIngest.Database: ", 0)) << what;
    EXPECT_NE(std::string::npos, what.find("; ")) << what;
    EXPECT_EQ(std::string::npos, what.find('\n')) << what;
  }
  config_.database = dir_;  // a folder
  EXPECT_THROW(MakeService(), ConfigurationError);
  EXPECT_TRUE(std::filesystem::is_directory(dir_));
  EXPECT_TRUE(log_.Errors().empty());
}

TEST_F(ServiceTest, SendQueuesAndAuditsAManualSendOfAStudyOrthancHas) {
  source_.AddStudy("s1", "1.2.840.1", 2);
  auto service = MakeServiceOnTestClock();
  const auto queued = service->Send(ManualSend("s1"));
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(StudyState::Queued, queued->state);
  EXPECT_EQ("manual", queued->trigger);
  EXPECT_EQ("tester", queued->requestedBy);
  EXPECT_EQ(StudyState::Queued, Tracked(*service, "s1")->state);
  const auto audited = Audited("manual_send");
  ASSERT_EQ(1u, audited.size());
  EXPECT_EQ("s1", audited[0]["orthanc_study_id"].asString());
  EXPECT_EQ("tester", audited[0]["user"].asString());

  // Not in Orthanc: neither queued nor audited.
  EXPECT_FALSE(service->Send(ManualSend("gone")).has_value());
  EXPECT_FALSE(service->FindStudy("gone").has_value());
  EXPECT_EQ(1u, Audited("manual_send").size());
}

TEST_F(ServiceTest, CancelSaysWhetherTheStudyWasCancelledAndWhyNot) {
  source_.AddStudy("s1", "1.2.840.1", 2);
  auto service = MakeServiceOnTestClock();
  EXPECT_EQ(CancelResult::Outcome::NotTracked, service->Cancel({"s1", {}, {}}).outcome);
  service->Send(ManualSend("s1"));
  const CancelResult cancelled =
      service->Cancel({"s1", "otto", "job j1 cancelled in Orthanc's /jobs"});
  EXPECT_EQ(CancelResult::Outcome::Cancelled, cancelled.outcome);
  EXPECT_EQ(StudyState::Cancelled, cancelled.study.state);
  const CancelResult again = service->Cancel({"s1", "vera", "again"});
  EXPECT_EQ(CancelResult::Outcome::NotCancellable, again.outcome);
  EXPECT_EQ(StudyState::Cancelled, again.study.state);
  // Audited once, the cancel that took place, with who asked and how.
  const auto audited = Audited("study_cancelled");
  ASSERT_EQ(1u, audited.size());
  EXPECT_EQ("s1", audited[0]["orthanc_study_id"].asString());
  EXPECT_EQ("otto", audited[0]["user"].asString());
  EXPECT_EQ("job j1 cancelled in Orthanc's /jobs", audited[0]["detail"].asString());
  const auto study = service->FindStudy("s1");
  ASSERT_TRUE(study.has_value());
  EXPECT_EQ(StudyState::Cancelled, study->record.state);
  EXPECT_EQ("cancelled", study->history.back().event);
}

TEST_F(ServiceTest, AddOrderMetadataCallsTheCloudThenAudits) {
  const std::string order = "0b6f3c1e-9a4d-4c2b-8f7e-000000000001";
  auto service = MakeServiceOnTestClock();
  Json::Value body;
  body["report"] = "ready";
  service->AddOrderMetadata(order, body, "tester");
  ASSERT_EQ(1u, cloud_.MetadataBodies().size());
  EXPECT_NE(std::string::npos, cloud_.MetadataBodies()[0].find("\"report\""));
  auto audited = Audited("metadata_added");
  ASSERT_EQ(1u, audited.size());
  EXPECT_EQ(order, audited[0]["order_id"].asString());
  EXPECT_EQ("tester", audited[0]["user"].asString());

  // Refused: the caller hears it, and nothing is audited as added.
  cloud_.SetFault("add-metadata", [](const HttpRequest&, unsigned) -> std::optional<HttpResponse> {
    return FakeCloud::Json(404, R"({"error":"no such order"})");
  });
  try {
    service->AddOrderMetadata(order, body, "tester");
    FAIL() << "expected an IngestError";
  } catch (const IngestError& e) {
    EXPECT_EQ(404, e.HttpStatus());
  }
  EXPECT_EQ(1u, Audited("metadata_added").size());
}

TEST_F(ServiceTest, TestConnectionFetchesAFreshTokenEveryTime) {
  auto service = MakeServiceOnTestClock();
  const ConnectionTest first = service->TestConnection();
  EXPECT_TRUE(first.tokenObtained) << first.error;
  EXPECT_EQ(kT0 + 3600, first.validUntil);
  EXPECT_EQ(config_.url, first.url);
  EXPECT_EQ(config_.tokenUrl, first.tokenUrl);
  EXPECT_TRUE(first.error.empty());
  EXPECT_TRUE(service->TestConnection().tokenObtained);  // the cached token is not enough
  EXPECT_EQ(2u, cloud_.Calls("token"));
  EXPECT_EQ(2u, Audited("token_issued").size());

  cloud_.SetFault("token", [](const HttpRequest&, unsigned) -> std::optional<HttpResponse> {
    return FakeCloud::Json(401, R"({"error":"invalid_client"})");
  });
  const ConnectionTest failed = service->TestConnection();
  EXPECT_FALSE(failed.tokenObtained);
  EXPECT_NE(std::string::npos, failed.error.find("401")) << failed.error;
  EXPECT_EQ(std::string::npos, failed.error.find(config_.clientSecret));
  EXPECT_EQ(2u, Audited("token_issued").size());
}

TEST_F(ServiceTest, StatusJudgesTheTokenOnceAtItsOwnTime) {
  source_.AddStudy("s1", "1.2.840.1", 2);
  source_.AddStudy("s2", "1.2.840.2", 2);
  auto service = MakeServiceOnTestClock();
  ServiceStatus status = service->Status();
  EXPECT_TRUE(status.enabled);
  EXPECT_EQ(CLOUD_INGEST_VERSION, status.version);
  EXPECT_EQ(kT0, status.takenAt);
  EXPECT_EQ(config_.url, status.url);
  EXPECT_EQ(config_.auditLog, status.auditLog);
  EXPECT_EQ(ToString(config_.uploadMode), status.uploadMode);
  EXPECT_FALSE(status.token.validNow);
  EXPECT_EQ(0, status.token.validUntil);
  EXPECT_TRUE(status.totals.byState.empty() || status.totals.byState[StudyState::Queued] == 0);
  EXPECT_FALSE(status.databaseRecovered.has_value());

  service->Send(ManualSend("s1"));
  service->Send(ManualSend("s2"));
  service->Cancel({"s2", {}, {}});
  ASSERT_TRUE(service->TestConnection().tokenObtained);
  clock_.Advance(3599);
  status = service->Status();
  EXPECT_EQ(kT0 + 3599, status.takenAt);
  EXPECT_TRUE(status.token.validNow);
  EXPECT_EQ(kT0 + 3600, status.token.validUntil);
  EXPECT_EQ(kT0, status.token.issuedAt);
  EXPECT_EQ(1u, status.totals.byState[StudyState::Queued]);
  EXPECT_EQ(1u, status.totals.byState[StudyState::Cancelled]);

  clock_.Advance(2);  // past the expiry, nothing fetched since
  status = service->Status();
  EXPECT_FALSE(status.token.validNow);
  EXPECT_EQ(0, status.token.validUntil);
  EXPECT_EQ(kT0, status.token.issuedAt);
}

namespace {

// What the service told its observer (Orthanc's jobs list in the plugin).
class RecordingObserver : public SendObserver {
 public:
  void SendStarted(const StudyRecord& claimed) override {
    std::lock_guard<std::mutex> lock(mutex_);
    started_.push_back(claimed.orthancId);
  }
  void SendProgress(const StudyRecord& study) override {
    std::lock_guard<std::mutex> lock(mutex_);
    progress_.emplace_back(study.orthancId, study.instancesSent);
  }
  void SendEnded(const SendEnd& end) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ended_.push_back(end);
  }
  std::vector<std::string> Started() {
    std::lock_guard<std::mutex> lock(mutex_);
    return started_;
  }
  std::vector<std::pair<std::string, unsigned>> Progress() {
    std::lock_guard<std::mutex> lock(mutex_);
    return progress_;
  }
  std::vector<SendEnd> Ended() {
    std::lock_guard<std::mutex> lock(mutex_);
    return ended_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> started_;
  std::vector<std::pair<std::string, unsigned>> progress_;
  std::vector<SendEnd> ended_;
};

std::optional<HttpResponse> RefuseOrder(const HttpRequest&, unsigned) {
  return FakeCloud::Json(400, R"({"error":"bad_request","message":"refused by the test"})");
}

}  // namespace

// POST /queue/pause holds across a restart: a paused queue starts no send,
// not even a manual one, until resumed; both are audited.
TEST_F(ServiceTest, APauseIsDurableAndHoldsEverySendUntilResumed) {
  source_.AddStudy("s1", "1.2.840.1", 2);
  {
    auto service = MakeService();
    service->Start();
    EXPECT_FALSE(service->Status().paused);
    PauseRequest pause;
    pause.user = "operator";
    EXPECT_EQ(0u, service->Pause(pause));
    EXPECT_TRUE(service->Status().paused);
    service->Send(ManualSend("s1"));
    EXPECT_FALSE(WaitUntil([&] { return cloud_.Calls("new-order") > 0; }, 0.3));
    service->Stop();
  }
  auto restarted = MakeService();
  EXPECT_TRUE(restarted->Status().paused);
  restarted->Start();
  EXPECT_FALSE(WaitUntil([&] { return cloud_.Calls("new-order") > 0; }, 0.3));
  EXPECT_EQ(StudyState::Queued, Tracked(*restarted, "s1")->state);
  restarted->Resume("operator");
  EXPECT_FALSE(restarted->Status().paused);
  EXPECT_TRUE(WaitUntil([&] { return Tracked(*restarted, "s1")->state == StudyState::Sent; }));
  restarted->Stop();
  const auto paused = Audited("queue_paused");
  ASSERT_EQ(1u, paused.size());
  EXPECT_EQ("operator", paused[0]["user"].asString());
  EXPECT_EQ(1u, Audited("queue_resumed").size());
}

// {"cancel_running": true}: the running send stops at its next instance and
// is queued again, to be sent from the start on resume.
TEST_F(ServiceTest, APauseThatStopsRunningSendsQueuesThemAgain) {
  config_.concurrency = 1;
  source_.AddStudy("s1", "1.2.840.1", 4);
  HeldPut held(cloud_, 1);
  RecordingObserver observer;
  auto service = MakeService();
  service->SetSendObserver(&observer);
  service->Start();
  service->Send(ManualSend("s1"));
  ASSERT_TRUE(held.WaitHeld());
  PauseRequest pause;
  pause.running = RunningSends::Stop;
  EXPECT_EQ(1u, service->Pause(pause));
  EXPECT_EQ(StudyState::Queued, Tracked(*service, "s1")->state);
  held.Release();
  ASSERT_TRUE(WaitUntil([&] { return observer.Ended().size() == 1; }));
  EXPECT_EQ(SendOutcome::Cancelled, observer.Ended()[0].outcome);
  EXPECT_EQ(StudyState::Queued, Tracked(*service, "s1")->state);
  EXPECT_EQ(0u, cloud_.Calls("add-metadata"));
  service->Resume("");
  EXPECT_TRUE(WaitUntil([&] { return Tracked(*service, "s1")->state == StudyState::Sent; }));
  service->Stop();
  EXPECT_EQ("manual", Tracked(*service, "s1")->trigger);
  EXPECT_EQ(2u, cloud_.Calls("new-order"));
  EXPECT_EQ(4u, Tracked(*service, "s1")->instancesSent);
}

// POST /studies/send: the tracked studies matching every filter given, at
// most `limit`, each queued and audited as a manual send.
TEST_F(ServiceTest, BulkSendQueuesTheMatchingStudiesAndAuditsEach) {
  source_.AddStudy("ct-1", "1.2.840.1", 1);
  source_.AddStudy("mr-1", "1.2.840.2", 1).modalities = {"MR"};
  source_.AddStudy("ct-2", "1.2.840.3", 1).modalities = {"PT\\CT"};
  source_.AddStudy("ok", "1.2.840.4", 1);
  cloud_.SetFault("new-order", RefuseOrder);
  auto service = MakeService();
  service->Start();
  for (const char* id : {"ct-1", "mr-1", "ct-2"}) service->Send(ManualSend(id));
  ASSERT_TRUE(WaitUntil([&] { return service->Status().totals.byState[StudyState::Failed] == 3; }));
  cloud_.SetFault("new-order", [](const HttpRequest&, unsigned) { return std::nullopt; });
  service->Send(ManualSend("ok"));
  ASSERT_TRUE(WaitUntil([&] { return Tracked(*service, "ok")->state == StudyState::Sent; }));

  PauseRequest pause;  // so that what is queued stays visible
  service->Pause(pause);
  BulkSendQuery query;
  query.state = StudyState::Failed;
  query.modality = "ct";
  query.requestedBy = "night-shift";
  const auto queued = service->BulkSend(query);
  std::vector<std::string> ids;
  for (const auto& record : queued) ids.push_back(record.orthancId);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ((std::vector<std::string>{"ct-1", "ct-2"}), ids);
  EXPECT_EQ(StudyState::Failed, Tracked(*service, "mr-1")->state);
  EXPECT_EQ(StudyState::Sent, Tracked(*service, "ok")->state);
  unsigned bulk = 0;
  for (const auto& record : Audited("manual_send")) {
    if (record["detail"].asString() == "bulk resend") {
      EXPECT_EQ("night-shift", record["user"].asString());
      bulk++;
    }
  }
  EXPECT_EQ(2u, bulk);

  BulkSendQuery one;
  one.state = StudyState::Failed;
  one.limit = 1;
  const auto single = service->BulkSend(one);
  ASSERT_EQ(1u, single.size());
  EXPECT_EQ("mr-1", single[0].orthancId);  // the only one still failed
  service->Resume("");
  EXPECT_TRUE(WaitUntil([&] { return service->Status().totals.byState[StudyState::Sent] == 4; }));
  service->Stop();
}

// GET /studies/{id}/preview: the sender's own decisions, sending nothing.
TEST_F(ServiceTest, PreviewSaysWhatASendWouldDoWithoutSending) {
  config_.filters.modalities = {"MR"};
  config_.uploadModeRules = {UploadModeRule{{"CT"}, {}, UploadMode::Zip, std::nullopt}};
  source_.AddStudy("ct", "1.2.840.1", 3, 500);
  source_.AddStudy("no-uid", "", 1);
  source_.AddStudy("mr", "1.2.840.2", 2).modalities = {"MR"};
  auto service = MakeServiceOnTestClock();

  EXPECT_FALSE(service->Preview("gone").has_value());
  const StudyPreview ct = *service->Preview("ct");
  EXPECT_FALSE(ct.filtersMatch);
  EXPECT_EQ((std::vector<std::string>{"Filters"}), ct.blockedBy);
  EXPECT_EQ("Zip", ct.mode);
  EXPECT_EQ(3u, ct.instances);
  EXPECT_EQ(1500u, ct.bytes);
  EXPECT_EQ("1.2.840.1", ct.orderMetadata["study_instance_uid"].asString());
  EXPECT_TRUE(ct.window.open);
  EXPECT_FALSE(ct.paused);

  const StudyPreview mr = *service->Preview("mr");
  EXPECT_TRUE(mr.blockedBy.empty());
  EXPECT_EQ("Instances", mr.mode);
  EXPECT_FALSE(service->Preview("no-uid")->orderError.empty());

  service->Pause(PauseRequest());
  EXPECT_TRUE(service->Preview("mr")->paused);
  EXPECT_EQ((std::vector<std::string>{"the queue is paused"}), service->Preview("mr")->blockedBy);
  EXPECT_EQ(0u, cloud_.Calls("token") + cloud_.Calls("new-order"));
  EXPECT_FALSE(service->FindStudy("mr").has_value());  // nothing queued either
}

// The observer (Orthanc's jobs list) hears every attempt start, its progress
// and its end with the outcome, also one that found the study unchanged.
TEST_F(ServiceTest, TheObserverHearsEachSendFromStartToEnd) {
  source_.AddStudy("good", "1.2.840.1", 3);
  source_.AddStudy("bad", "1.2.840.2", 1);
  RecordingObserver observer;
  auto service = MakeService();
  service->SetSendObserver(&observer);
  service->Start();
  service->Send(ManualSend("good"));
  ASSERT_TRUE(WaitUntil([&] { return observer.Ended().size() == 1; }));
  cloud_.SetFault("new-order", RefuseOrder);
  service->Send(ManualSend("bad"));
  ASSERT_TRUE(WaitUntil([&] { return observer.Ended().size() == 2; }));
  service->OnStableStudy("good");  // unchanged
  ASSERT_TRUE(WaitUntil([&] { return observer.Ended().size() == 3; }));
  service->Stop();
  EXPECT_EQ(SendOutcome::Unchanged, observer.Ended()[2].outcome);
  EXPECT_TRUE(SendSucceeded(observer.Ended()[2]));

  const SendEnd good = observer.Ended()[0];
  EXPECT_EQ(SendOutcome::Sent, good.outcome);
  EXPECT_TRUE(SendSucceeded(good));
  const Json::Value content = SendJobContent(good);
  EXPECT_EQ("good", content["orthanc_study_id"].asString());
  EXPECT_FALSE(content.isMember("study_instance_uid"));  // every Orthanc user reads /jobs
  EXPECT_EQ(Tracked(*service, "good")->orderId, content["order_id"].asString());
  EXPECT_EQ(3u, content["instances_sent"].asUInt());
  EXPECT_EQ(3u, content["instances_total"].asUInt());
  EXPECT_FALSE(content.isMember("error"));
  unsigned goodProgress = 0;
  for (const auto& [id, sent] : observer.Progress()) {
    if (id == "good") goodProgress = std::max(goodProgress, sent);
  }
  EXPECT_EQ(3u, goodProgress);

  const SendEnd bad = observer.Ended()[1];
  EXPECT_EQ(SendOutcome::Failed, bad.outcome);
  EXPECT_FALSE(SendSucceeded(bad));
  EXPECT_NE(std::string::npos, SendJobContent(bad)["error"].asString().find("refused by the test"))
      << SendJobContent(bad);
  EXPECT_EQ(0u, SendJobContent(bad)["instances_sent"].asUInt());
  EXPECT_EQ((std::vector<std::string>{"good", "bad", "good"}), observer.Started());
}

// SendWindows: outside a window an automatic send waits (queued, due at the
// next opening, "waiting" in its history) and goes when the window opens; a
// manual send goes at once unless it asked to respect the windows.
TEST_F(ServiceTest, AutomaticSendsWaitForTheSendWindow) {
  setenv("TZ", "UTC0", 1);
  tzset();
  // kT0 is Tuesday 2023-11-14 22:13:20 UTC; the window opens daily at 08:00.
  config_.sendWindows = {{0x7f, 8 * 60, 9 * 60}};
  const double opening = 1'700'035'200;  // 2023-11-15T08:00:00Z
  source_.AddStudy("auto", "1.2.840.1", 2);
  source_.AddStudy("manual", "1.2.840.2", 2);
  source_.AddStudy("patient", "1.2.840.3", 2);
  auto service = MakeServiceOnTestClock();
  service->Start();
  service->OnStableStudy("auto");
  service->Send(ManualSend("manual"));
  EnqueueRequest patient = ManualSend("patient");
  patient.respectWindows = true;
  service->Send(patient);

  const auto waiting = [&](const std::string& id) {
    const auto study = service->FindStudy(id);
    return study && study->record.state == StudyState::Queued && !study->history.empty() &&
           study->history.back().event == "waiting";
  };
  ASSERT_TRUE(WaitUntil([&] { return waiting("auto") && waiting("patient"); }));
  ASSERT_TRUE(WaitUntil([&] { return Tracked(*service, "manual")->state == StudyState::Sent; }));
  const auto study = service->FindStudy("auto");
  EXPECT_DOUBLE_EQ(opening, study->record.nextAttemptAt);
  EXPECT_EQ(0u, study->record.attempts);
  EXPECT_NE(std::string::npos, study->history.back().detail.find("2023-11-15T08:00:00.000Z"));
  const ServiceStatus closed = service->Status();
  EXPECT_TRUE(closed.sendWindows.configured);
  EXPECT_FALSE(closed.sendWindows.open);
  EXPECT_DOUBLE_EQ(opening, closed.sendWindows.nextOpening);
  EXPECT_EQ(1u, cloud_.Calls("new-order"));  // the manual one only

  clock_.Advance(opening - kT0);
  EXPECT_TRUE(WaitUntil([&] {
    return Tracked(*service, "auto")->state == StudyState::Sent &&
           Tracked(*service, "patient")->state == StudyState::Sent;
  }));
  EXPECT_TRUE(service->Status().sendWindows.open);
  service->Stop();
  unsetenv("TZ");
  tzset();
}
