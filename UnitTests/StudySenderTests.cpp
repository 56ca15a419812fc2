#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>

#include "Core/Deidentify/Pseudonyms.h"
#include "Core/Sending/StudySender.h"
#include "Core/Store/SqliteStudyStore.h"
#include "Core/Time.h"
#include "Fakes/FakeCloud.h"
#include "Fakes/FakeDeidentifier.h"
#include "Fakes/FakeStudySource.h"

using namespace CloudIngest;
using namespace CloudIngest::Testing;

namespace {

class NullLogger : public ILogger {
 public:
  void Info(const std::string&) override {}
  void Warning(const std::string& m) override { lines.push_back(m); }
  void Error(const std::string& m) override { lines.push_back(m); }
  std::vector<std::string> lines;
};

HttpResponse Status(long status, const std::string& body = "{\"error\":\"boom\"}") {
  return FakeCloud::Json(status, body);
}

class StudySenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/sender-test-XXXXXX";
    dir_ = mkdtemp(pattern);
    config_.url = "http://127.0.0.1:9";
    config_.tokenUrl = config_.url + "/auth/token";
    config_.clientId = "client";
    config_.clientSecret = "very-secret-value";
    config_.allowedUploadHosts = {"127.0.0.1"};
    config_.concurrency = 3;
    config_.retry.maxAttempts = 4;
    config_.retry.baseDelay = 0.001;
    config_.retry.maxDelay = 0.005;
    config_.retry.studyRetryDelay = 0.01;
    config_.auditLog = dir_ + "/audit.jsonl";
    config_.database = dir_ + "/queue.db";
    queue_ = std::make_unique<SqliteStudyStore>(config_.database);
    audit_ = std::make_unique<AuditLog>(config_.auditLog);
    TokenSettings ts{config_.tokenUrl, "GET", config_.clientId, config_.clientSecret, "upload"};
    tokens_ = std::make_unique<TokenProvider>(ts, cloud_, clock_);
    client_ = std::make_unique<IngestClient>(config_, cloud_, *tokens_);
    retry_ = std::make_unique<RetryPolicy>(config_.retry, 42);
    cancels_ = std::make_unique<CancelRegistry>(*queue_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  SendOutcome Send(const std::string& id, const std::string& trigger = "auto") {
    EnqueueRequest request;
    request.orthancId = id;
    request.trigger = trigger;
    request.force = trigger == "manual";
    queue_->Enqueue(request, clock_.Now());
    auto claimed = queue_->ClaimNext(clock_.Now() + 1);
    EXPECT_TRUE(claimed.has_value());
    StudySender sender(Deps());
    return sender.Run(*claimed);
  }

  SenderDependencies Deps(MemoryBudget* memory = nullptr, ThreadStarter* threads = nullptr) {
    return SenderDependencies{config_,
                              source_,
                              *client_,
                              *queue_,
                              *audit_,
                              *retry_,
                              clock_,
                              log_,
                              stop_,
                              cancels_.get(),
                              memory ? *memory : memory_,
                              threads ? *threads : threads_};
  }

  std::string AuditText() {
    std::ifstream in(config_.auditLog);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static size_t Count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) n++;
    return n;
  }

  std::string dir_;
  Configuration config_;
  FakeCloud cloud_;
  FakeStudySource source_;
  SystemClock clock_;
  NullLogger log_;
  StopSignal stop_;
  MemoryBudget memory_{256ull << 20};
  ThreadStarter threads_{log_};
  std::unique_ptr<StudyStore> queue_;
  std::unique_ptr<CancelRegistry> cancels_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<TokenProvider> tokens_;
  std::unique_ptr<IngestClient> client_;
  std::unique_ptr<RetryPolicy> retry_;
};

}  // namespace

TEST_F(StudySenderTest, SendsEveryInstanceOnceThenMetadata) {
  source_.AddStudy("s1", "1.2.840.1", 10, 1234);
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(10u, cloud_.Stored().size());
  EXPECT_EQ(1u, cloud_.Calls("new-order"));
  EXPECT_EQ(10u, cloud_.Calls("upload"));
  EXPECT_EQ(1u, cloud_.Calls("add-metadata"));
  const auto record = queue_->Get("s1");
  ASSERT_TRUE(record);
  EXPECT_EQ(StudyState::Sent, record->state);
  EXPECT_EQ(10u, record->instancesSent);
  EXPECT_EQ(12340u, record->bytesSent);
  EXPECT_EQ("1.2.840.1", record->studyInstanceUid);
  EXPECT_FALSE(record->orderId.empty());
  ASSERT_EQ(1u, cloud_.OrderBodies().size());
  EXPECT_NE(std::string::npos,
            cloud_.OrderBodies()[0].find("\"study_instance_uid\":\"1.2.840.1\""));
  EXPECT_NE(std::string::npos, cloud_.MetadataBodies()[0].find("upload_status"));

  const std::string audit = AuditText();
  EXPECT_EQ(1u, Count(audit, "\"order_created\""));
  EXPECT_EQ(10u, Count(audit, "\"url_issued\""));
  EXPECT_EQ(10u, Count(audit, "\"upload_ok\""));
  EXPECT_EQ(1u, Count(audit, "\"metadata_added\""));
  EXPECT_EQ(1u, Count(audit, "\"study_sent\""));
  EXPECT_EQ(std::string::npos, audit.find("X-Amz-Signature"));
  EXPECT_EQ(std::string::npos, audit.find("s3cr3t"));
  EXPECT_EQ(std::string::npos, audit.find("very-secret-value"));
  EXPECT_EQ(std::string::npos, audit.find("tok-"));
}

TEST_F(StudySenderTest, UnchangedStudyIsNotSentAgain) {
  source_.AddStudy("s1", "1.2.840.1", 4);
  ASSERT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(SendOutcome::Unchanged, Send("s1"));
  EXPECT_EQ(4u, cloud_.Calls("put"));
  EXPECT_EQ(1u, cloud_.Calls("new-order"));
  EXPECT_EQ(StudyState::Sent, queue_->Get("s1")->state);
}

TEST_F(StudySenderTest, ManualSendResendsAnUnchangedStudy) {
  source_.AddStudy("s1", "1.2.840.1", 4);
  ASSERT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(SendOutcome::Sent, Send("s1", "manual"));
  EXPECT_EQ(8u, cloud_.Calls("put"));
  EXPECT_EQ(2u, cloud_.Calls("new-order"));
}

TEST_F(StudySenderTest, LateInstancesResendTheWholeStudyByDefault) {
  source_.AddStudy("s1", "1.2.840.1", 4);
  ASSERT_EQ(SendOutcome::Sent, Send("s1"));
  source_.AddInstance("s1");
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(4u + 5u, cloud_.Calls("put"));
  EXPECT_EQ(5u, queue_->Get("s1")->instancesSent);
}

TEST_F(StudySenderTest, LateInstancesCanBeIgnored) {
  config_.lateInstances = LateInstancePolicy::Ignore;
  source_.AddStudy("s1", "1.2.840.1", 4);
  ASSERT_EQ(SendOutcome::Sent, Send("s1"));
  source_.AddInstance("s1");
  EXPECT_EQ(SendOutcome::Unchanged, Send("s1"));
  EXPECT_EQ(4u, cloud_.Calls("put"));
}

TEST_F(StudySenderTest, StudyWithoutStudyInstanceUidFailsWithAReason) {
  source_.AddStudy("s1", "", 3);
  EXPECT_EQ(SendOutcome::Failed, Send("s1"));
  const auto record = queue_->Get("s1");
  EXPECT_EQ(StudyState::Failed, record->state);
  EXPECT_NE(std::string::npos, record->lastError.find("StudyInstanceUID"));
  EXPECT_EQ(0u, cloud_.Calls("new-order"));
}

TEST_F(StudySenderTest, DeletedStudyFails) {
  source_.AddStudy("s1", "1.2.3", 1);
  source_.Delete("s1");
  EXPECT_EQ(SendOutcome::Failed, Send("s1"));
  EXPECT_NE(std::string::npos, queue_->Get("s1")->lastError.find("no longer exists"));
}

TEST_F(StudySenderTest, TransientPutFailuresAreRetried) {
  source_.AddStudy("s1", "1.2.840.1", 5);
  cloud_.SetFault("put", [](const HttpRequest&, unsigned i) -> std::optional<HttpResponse> {
    if (i < 3) return Status(503);
    return std::nullopt;
  });
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(5u, cloud_.Stored().size());
  EXPECT_EQ(3u, static_cast<unsigned>(Count(AuditText(), "\"upload_failed\"")));
}

TEST_F(StudySenderTest, RefusedUrlIsReplacedByANewOne) {
  source_.AddStudy("s1", "1.2.840.1", 2);
  cloud_.SetFault("put", [](const HttpRequest&, unsigned i) -> std::optional<HttpResponse> {
    if (i == 0) return Status(403, "<Error><Code>AccessDenied</Code></Error>");
    return std::nullopt;
  });
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(3u, cloud_.Calls("upload"));
  EXPECT_EQ(2u, cloud_.Stored().size());
}

TEST_F(StudySenderTest, ClientErrorFailsTheStudyWithTheServersMessage) {
  source_.AddStudy("s1", "1.2.840.1", 2);
  cloud_.SetFault("new-order", [](const HttpRequest&, unsigned) -> std::optional<HttpResponse> {
    return Status(422, R"({"error":"invalid_request","error_description":"patient_id missing"})");
  });
  EXPECT_EQ(SendOutcome::Failed, Send("s1"));
  const auto record = queue_->Get("s1");
  EXPECT_EQ(StudyState::Failed, record->state);
  EXPECT_NE(std::string::npos, record->lastError.find("patient_id missing"));
  EXPECT_EQ(0u, cloud_.Calls("put"));
}

TEST_F(StudySenderTest, UploadUrlWithAHostHeaderFailsTheStudyWithoutAPut) {
  source_.AddStudy("s1", "1.2.840.1", 2);
  cloud_.SetFault("upload", [](const HttpRequest&, unsigned) -> std::optional<HttpResponse> {
    return Status(
        200,
        R"({"url":"http://127.0.0.1:9/bucket/x?X-Amz-Signature=s","headers":{"Host":"other-bucket.s3.amazonaws.com"}})");
  });
  EXPECT_EQ(SendOutcome::Failed, Send("s1"));
  const auto record = queue_->Get("s1");
  EXPECT_EQ(StudyState::Failed, record->state);
  EXPECT_NE(std::string::npos, record->lastError.find("header \"Host\"")) << record->lastError;
  EXPECT_EQ(0u, cloud_.Calls("put"));
}

TEST_F(StudySenderTest, HttpUploadUrlWhileTheApiIsHttpsFailsTheStudyWithoutAPut) {
  source_.AddStudy("s1", "1.2.840.1", 2);
  config_.url = "https://127.0.0.1:9";  // the fake cloud still answers http:// upload URLs
  EXPECT_EQ(SendOutcome::Failed, Send("s1"));
  const auto record = queue_->Get("s1");
  EXPECT_EQ(StudyState::Failed, record->state);
  EXPECT_NE(std::string::npos, record->lastError.find("AllowInsecureUploads")) << record->lastError;
  EXPECT_EQ(0u, cloud_.Calls("put"));

  config_.allowInsecureUploads = true;
  EXPECT_EQ(SendOutcome::Sent, Send("s1", "manual"));
  EXPECT_EQ(2u, cloud_.Calls("put"));
}

TEST_F(StudySenderTest, ExhaustedRetriesQueueTheStudyAgain) {
  source_.AddStudy("s1", "1.2.840.1", 2);
  cloud_.SetFault("add-metadata", [](const HttpRequest&, unsigned) -> std::optional<HttpResponse> {
    return Status(500);
  });
  EXPECT_EQ(SendOutcome::Retry, Send("s1"));
  const auto record = queue_->Get("s1");
  EXPECT_EQ(StudyState::Queued, record->state);
  EXPECT_EQ(config_.retry.maxAttempts, cloud_.Calls("add-metadata"));
  EXPECT_GT(record->nextAttemptAt, clock_.Now() - 1);
  EXPECT_FALSE(record->lastError.empty());
}

TEST_F(StudySenderTest, AStallLongerThanTheGroupingWindowRestartsTheAttempt) {
  config_.groupWindow = 0.0001;  // any backoff between two PUTs exceeds it
  source_.AddStudy("s1", "1.2.840.1", 3);
  cloud_.SetFault("put", [](const HttpRequest&, unsigned i) -> std::optional<HttpResponse> {
    if (i == 1) return Status(503);
    return std::nullopt;
  });
  EXPECT_EQ(SendOutcome::Retry, Send("s1"));
  const auto first = queue_->Get("s1");
  EXPECT_EQ(StudyState::Queued, first->state);
  EXPECT_NE(std::string::npos, first->lastError.find("grouping window"));
  const std::string order = first->orderId;

  // The next attempt starts again from the first instance, in the same order.
  config_.groupWindow = 60;
  auto claimed = queue_->ClaimNext(clock_.Now() + 10);
  ASSERT_TRUE(claimed);
  StudySender sender(Deps());
  EXPECT_EQ(SendOutcome::Sent, sender.Run(*claimed));
  EXPECT_EQ(1u, cloud_.Calls("new-order"));
  EXPECT_EQ(order, queue_->Get("s1")->orderId);
  EXPECT_EQ(3u, queue_->Get("s1")->instancesSent);
}

TEST_F(StudySenderTest, CancelStopsBetweenInstances) {
  config_.concurrency = 1;
  source_.AddStudy("s1", "1.2.840.1", 20);
  cloud_.SetFault("put", [this](const HttpRequest&, unsigned i) -> std::optional<HttpResponse> {
    if (i == 2) {
      cancels_->Cancel("s1", clock_.Now());
    }
    return std::nullopt;
  });
  EXPECT_EQ(SendOutcome::Cancelled, Send("s1"));
  EXPECT_LT(cloud_.Calls("put"), 20u);
  EXPECT_EQ(0u, cloud_.Calls("add-metadata"));
  EXPECT_EQ(StudyState::Cancelled, queue_->Get("s1")->state);
}

TEST_F(StudySenderTest, FiltersApplyToAutomaticSendsOnly) {
  config_.filters.modalities = {"MR"};
  source_.AddStudy("s1", "1.2.840.1", 2);
  EXPECT_EQ(SendOutcome::Skipped, Send("s1"));
  EXPECT_FALSE(queue_->Get("s1").has_value());
  EXPECT_EQ(SendOutcome::Sent, Send("s1", "manual"));
}

TEST_F(StudySenderTest, ShutdownPutsTheStudyBackInTheQueue) {
  source_.AddStudy("s1", "1.2.840.1", 2);
  stop_.Stop();
  EXPECT_EQ(SendOutcome::Interrupted, Send("s1"));
  EXPECT_EQ(StudyState::Queued, queue_->Get("s1")->state);
}

TEST_F(StudySenderTest, UploadAbortedByTheShutdownIsNotAFailure) {
  // What Stop() does to a PUT in flight: the stop signal, then the HTTP
  // client aborts the transfer.
  source_.AddStudy("s1", "1.2.840.1", 4);
  cloud_.SetFault("put", [this](const HttpRequest&, unsigned) -> std::optional<HttpResponse> {
    stop_.Stop();
    throw HttpAborted("PUT http://127.0.0.1:9/bucket/x.dcm: aborted, transfers are stopped");
  });
  EXPECT_EQ(SendOutcome::Interrupted, Send("s1"));
  const auto record = queue_->Get("s1");
  EXPECT_EQ(StudyState::Queued, record->state);
  EXPECT_EQ("interrupted by Orthanc's shutdown", record->lastError);
  EXPECT_EQ(0u, queue_->Totals().failures);
  const std::string audit = AuditText();
  EXPECT_EQ(0u, Count(audit, "\"upload_failed\"")) << audit;
  EXPECT_EQ(0u, Count(audit, "\"upload_ok\"")) << audit;
  EXPECT_EQ(0u, Count(audit, "\"study_failed\"")) << audit;
}

TEST_F(StudySenderTest, ZipModeSendsTheWholeStudyAsOneZip) {
  config_.uploadMode = UploadMode::Zip;
  config_.temporaryDirectory = dir_ + "/tmp";
  source_.AddStudy("s1", "1.2.840.1", 6, 3000);
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(1u, cloud_.Calls("upload"));
  EXPECT_EQ(1u, cloud_.Calls("put"));
  const auto stored = cloud_.Stored();
  ASSERT_EQ(1u, stored.size());
  EXPECT_NE(std::string::npos, stored.begin()->first.find("1.2.840.1.zip"));
  EXPECT_EQ("PK", stored.begin()->second.substr(0, 2));
  const auto record = queue_->Get("s1");
  EXPECT_EQ(6u, record->instancesSent);
  EXPECT_EQ(stored.begin()->second.size(), record->bytesSent);
  // The temporary ZIP is gone once sent.
  EXPECT_TRUE(std::filesystem::is_empty(config_.temporaryDirectory));
  EXPECT_NE(std::string::npos, AuditText().find("zip of 6 instances"));
}

TEST_F(StudySenderTest, AutoModeZipsManySmallInstancesOverALongRoundTrip) {
  config_.uploadMode = UploadMode::Auto;
  config_.concurrency = 4;
  config_.temporaryDirectory = dir_ + "/tmp";
  cloud_.SetAnswerSeconds(0.08);  // measured on the token and order exchanges
  source_.AddStudy("s1", "1.2.840.1", 60, 2000);
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  // 15 waits of 80 ms = 1.2 s against one ZIP's 0.16 s.
  EXPECT_EQ(1u, cloud_.Calls("put"));
  ASSERT_EQ(1u, cloud_.Stored().size());
  EXPECT_NE(std::string::npos, cloud_.Stored().begin()->first.find(".zip"));
  const auto history = queue_->History("s1");
  const auto plan = std::find_if(history.begin(), history.end(),
                                 [](const HistoryEntry& e) { return e.event == "upload-plan"; });
  ASSERT_NE(history.end(), plan);
  EXPECT_NE(std::string::npos, plan->detail.find("UploadMode Auto: Zip, 60 instances"))
      << plan->detail;
}

TEST_F(StudySenderTest, AutoModeSendsInstancesOverAShortRoundTrip) {
  config_.uploadMode = UploadMode::Auto;
  config_.temporaryDirectory = dir_ + "/tmp";
  cloud_.SetAnswerSeconds(0.001);
  source_.AddStudy("s1", "1.2.840.1", 60, 2000);
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(60u, cloud_.Calls("put"));
  const auto history = queue_->History("s1");
  EXPECT_TRUE(std::any_of(history.begin(), history.end(), [](const HistoryEntry& e) {
    return e.detail.find("UploadMode Auto: Instances") != std::string::npos;
  }));
}

TEST_F(StudySenderTest, AutoConcurrencyOpensMoreUploadsForALongerRoundTrip) {
  config_.concurrencyMode = ConcurrencyMode::Auto;
  config_.concurrency = 4;
  config_.maxConcurrency = 16;
  cloud_.SetAnswerSeconds(0.1);  // 40 wanted, 16 at most
  std::atomic<int> inFlight{0};
  std::atomic<int> most{0};
  cloud_.SetFault("put", [&](const HttpRequest&, unsigned) -> std::optional<HttpResponse> {
    const int now = ++inFlight;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    --inFlight;
    return std::nullopt;
  });
  source_.AddStudy("s1", "1.2.840.1", 64, 500);
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(64u, cloud_.Stored().size());
  EXPECT_GT(most.load(), 4);  // more than a fixed Concurrency 4 would open
  EXPECT_LE(most.load(), 16);
}

TEST_F(StudySenderTest, UploadModeRulesChooseZipForMatchingStudies) {
  config_.temporaryDirectory = dir_ + "/tmp";
  config_.uploadModeRules = {UploadModeRule{{"CT"}, {}, UploadMode::Zip, {}}};
  source_.AddStudy("s1", "1.2.840.1", 3);
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(1u, cloud_.Calls("put"));
  config_.uploadModeRules = {UploadModeRule{{"MR"}, {}, UploadMode::Zip, {}}};
  source_.AddStudy("s2", "1.2.840.2", 3);
  EXPECT_EQ(SendOutcome::Sent, Send("s2"));
  EXPECT_EQ(1u + 3u, cloud_.Calls("put"));
}

TEST_F(StudySenderTest, ZipThatFailsToUploadLeavesNoTemporaryFile) {
  config_.uploadMode = UploadMode::Zip;
  config_.temporaryDirectory = dir_ + "/tmp";
  source_.AddStudy("s1", "1.2.840.1", 3);
  cloud_.SetFault("put", [](const HttpRequest&, unsigned) -> std::optional<HttpResponse> {
    return Status(500);
  });
  EXPECT_EQ(SendOutcome::Retry, Send("s1"));
  EXPECT_TRUE(std::filesystem::is_empty(config_.temporaryDirectory));
}

TEST_F(StudySenderTest, TheNextUrlIsRequestedWhileAPutIsUnderWay) {
  // One thread: the URL of instance 2 must be asked for while instance 1's PUT runs.
  config_.concurrency = 1;
  source_.AddStudy("s1", "1.2.840.1", 3);
  std::atomic<bool> overlapped{false};
  cloud_.SetFault("put", [&](const HttpRequest&, unsigned index) -> std::optional<HttpResponse> {
    if (index == 0) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (cloud_.Calls("upload") < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      overlapped = cloud_.Calls("upload") >= 2;
    }
    return std::nullopt;
  });
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_TRUE(overlapped.load());
  EXPECT_EQ(3u, cloud_.Stored().size());
  EXPECT_EQ(3u, cloud_.Calls("upload"));  // one URL per instance, none wasted
  EXPECT_EQ(3u, Count(AuditText(), "\"url_issued\""));
}

TEST_F(StudySenderTest, AFailedUrlRequestAheadIsAskedAgainInTurn) {
  config_.concurrency = 1;
  source_.AddStudy("s1", "1.2.840.1", 3);
  cloud_.SetFault("upload", [](const HttpRequest&, unsigned index) -> std::optional<HttpResponse> {
    if (index == 1) return Status(503);  // the URL asked ahead for instance 2
    return std::nullopt;
  });
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(3u, cloud_.Stored().size());
  EXPECT_EQ(4u, cloud_.Calls("upload"));
  EXPECT_EQ(3u, Count(AuditText(), "\"upload_ok\""));
}

TEST_F(StudySenderTest, AUrlAskedAheadThatWouldExpireSoonIsNotUsed) {
  config_.concurrency = 1;
  source_.AddStudy("s1", "1.2.840.1", 2);
  cloud_.SetFault(
      "upload", [](const HttpRequest& request, unsigned) -> std::optional<HttpResponse> {
        const auto q = request.url.find("filename=");
        const std::string name = request.url.substr(q + 9, request.url.find('&', q) - q - 9);
        return FakeCloud::Json(200, R"({"url":"http://127.0.0.1:9/bucket/)" + name +
                                        R"(?X-Amz-Signature=s","expires_in":0.2})");
      });
  cloud_.SetFault("put", [](const HttpRequest&, unsigned index) -> std::optional<HttpResponse> {
    if (index == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return std::nullopt;
  });
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(2u, cloud_.Stored().size());
  // Instance 2's URL, asked during instance 1's 300 ms PUT, had 0.2 s to live: asked again.
  EXPECT_EQ(3u, cloud_.Calls("upload"));
  EXPECT_EQ(2u, cloud_.Calls("put"));
}

TEST_F(StudySenderTest, OrthancErrorsBeforeTheSendCountTowardMaxStudyAttempts) {
  // A non-404 error from Orthanc while reading the study used to be retried
  // every StudyRetryDelay, forever, without counting.
  config_.retry.maxStudyAttempts = 3;
  retry_ = std::make_unique<RetryPolicy>(config_.retry, 42);
  source_.AddStudy("s1", "1.2.840.1", 2);
  source_.getStudyError = "GET /studies/s1 inside Orthanc failed: Internal error";
  EnqueueRequest request;
  request.orthancId = "s1";
  queue_->Enqueue(request, clock_.Now());
  StudySender sender(Deps());
  std::vector<SendOutcome> outcomes;
  double later = clock_.Now();
  for (int i = 0; i < 10; i++) {
    later += 100000;  // past any backoff
    auto claimed = queue_->ClaimNext(later);
    if (!claimed) break;
    outcomes.push_back(sender.Run(*claimed));
  }
  ASSERT_EQ(3u, outcomes.size());
  EXPECT_EQ(SendOutcome::Retry, outcomes[0]);
  EXPECT_EQ(SendOutcome::Retry, outcomes[1]);
  EXPECT_EQ(SendOutcome::Failed, outcomes[2]);
  const auto record = queue_->Get("s1");
  EXPECT_EQ(StudyState::Failed, record->state);
  EXPECT_NE(std::string::npos, record->lastError.find("Internal error"));
  EXPECT_NE(std::string::npos, record->lastError.find("gave up after 3 attempts"));
  EXPECT_EQ(0u, cloud_.Calls("new-order"));
}

TEST_F(StudySenderTest, OrthancErrorsBeforeTheSendBackOff) {
  source_.AddStudy("s1", "1.2.840.1", 2);
  source_.getStudyError = "Internal error";
  config_.retry.studyRetryDelay = 10;
  retry_ = std::make_unique<RetryPolicy>(config_.retry, 42);
  EnqueueRequest request;
  request.orthancId = "s1";
  queue_->Enqueue(request, clock_.Now());
  StudySender sender(Deps());
  auto first = queue_->ClaimNext(clock_.Now());
  ASSERT_TRUE(first);
  EXPECT_EQ(SendOutcome::Retry, sender.Run(*first));
  auto second = queue_->ClaimNext(clock_.Now() + 11);
  ASSERT_TRUE(second);
  EXPECT_EQ(SendOutcome::Retry, sender.Run(*second));
  // The second failure waits twice as long as the first.
  EXPECT_FALSE(queue_->ClaimNext(clock_.Now() + 15));
  EXPECT_TRUE(queue_->ClaimNext(clock_.Now() + 25));
}

TEST_F(StudySenderTest, RefusedThreadsSendWithTheThreadsThatExist) {
  config_.concurrency = 4;
  source_.AddStudy("s1", "1.2.840.1", 12);
  source_.AddStudy("s2", "1.2.840.2", 12);
  std::atomic<int> launched{0};
  ThreadStarter refusing(log_, [&](std::function<void()> body) {
    if (launched++ >= 1) {
      throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
    }
    return std::thread(std::move(body));
  });
  for (const std::string id : {"s1", "s2"}) {
    EnqueueRequest request;
    request.orthancId = id;
    queue_->Enqueue(request, clock_.Now());
    auto claimed = queue_->ClaimNext(clock_.Now() + 1);
    ASSERT_TRUE(claimed);
    StudySender sender(Deps(nullptr, &refusing));
    EXPECT_EQ(SendOutcome::Sent, sender.Run(*claimed));
    EXPECT_EQ(12u, queue_->Get(id)->instancesSent);
  }
  EXPECT_EQ(24u, cloud_.Stored().size());
  size_t refusals = 0;
  for (const auto& line : log_.lines)
    refusals += line.find("refused a new thread") != std::string::npos;
  EXPECT_EQ(1u, refusals);  // logged once, not per study
}

TEST_F(StudySenderTest, NoThreadAtAllStillSendsOnTheWorkersOwnThread) {
  config_.concurrency = 8;
  source_.AddStudy("s1", "1.2.840.1", 5);
  ThreadStarter none(log_, [](std::function<void()>) -> std::thread {
    throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
  });
  EnqueueRequest request;
  request.orthancId = "s1";
  queue_->Enqueue(request, clock_.Now());
  auto claimed = queue_->ClaimNext(clock_.Now() + 1);
  ASSERT_TRUE(claimed);
  StudySender sender(Deps(nullptr, &none));
  EXPECT_EQ(SendOutcome::Sent, sender.Run(*claimed));
  EXPECT_EQ(5u, cloud_.Stored().size());
}

namespace {
// Bytes of instance bodies inside PUTs at the same moment, and the peak.
struct InFlight {
  std::mutex mutex;
  uint64_t now = 0, peak = 0;
  unsigned count = 0, peakCount = 0;
  std::vector<std::pair<uint64_t, unsigned>> bySize;  // (size, others in flight)
};
FakeCloud::Fault TrackInFlight(InFlight& flight) {
  return [&flight](const HttpRequest& r, unsigned) -> std::optional<HttpResponse> {
    const uint64_t size = r.bodySource->Size();
    {
      std::lock_guard<std::mutex> lock(flight.mutex);
      flight.now += size;
      flight.count++;
      flight.peak = std::max(flight.peak, flight.now);
      flight.peakCount = std::max(flight.peakCount, flight.count);
      flight.bySize.emplace_back(size, flight.count - 1);
    }
    // Long enough for the other threads' PUTs to overlap this one.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    std::lock_guard<std::mutex> lock(flight.mutex);
    flight.now -= size;
    flight.count--;
    return std::nullopt;
  };
}
}  // namespace

TEST_F(StudySenderTest, InstancesInMemoryStayWithinMaxMemory) {
  config_.concurrency = 4;
  const uint64_t mb = 1 << 20;
  source_.AddStudy("s1", "1.2.840.1", 12, 5 * mb);
  InFlight flight;
  cloud_.SetFault("put", TrackInFlight(flight));
  MemoryBudget budget(22 * mb);
  EnqueueRequest request;
  request.orthancId = "s1";
  queue_->Enqueue(request, clock_.Now());
  auto claimed = queue_->ClaimNext(clock_.Now() + 1);
  StudySender sender(Deps(&budget));
  EXPECT_EQ(SendOutcome::Sent, sender.Run(*claimed));
  EXPECT_EQ(12u, cloud_.Stored().size());
  // 4 threads would hold 20 MB of bodies and read a fifth (three copies while
  // reading: 35 MB); within 22 MB, two bodies are held while a third is read.
  EXPECT_LE(flight.peak, 10 * mb);
  EXPECT_LE(flight.peakCount, 2u);
  EXPECT_LE(budget.PeakInUse(), 22 * mb);
  EXPECT_EQ(0u, budget.InUse());
}

TEST_F(StudySenderTest, AnInstanceLargerThanMaxMemoryIsSentAlone) {
  config_.concurrency = 4;
  const uint64_t mb = 1 << 20;
  StudyInfo& study = source_.AddStudy("s1", "1.2.840.1", 6, 2 * mb);
  source_.AddInstance("s1", 40 * mb);
  for (int i = 0; i < 6; i++) source_.AddInstance("s1", 2 * mb);
  (void)study;
  InFlight flight;
  cloud_.SetFault("put", TrackInFlight(flight));
  MemoryBudget budget(25 * mb);
  EnqueueRequest request;
  request.orthancId = "s1";
  queue_->Enqueue(request, clock_.Now());
  auto claimed = queue_->ClaimNext(clock_.Now() + 1);
  StudySender sender(Deps(&budget));
  EXPECT_EQ(SendOutcome::Sent, sender.Run(*claimed));
  EXPECT_EQ(13u, cloud_.Stored().size());
  bool sawLarge = false;
  for (const auto& [size, others] : flight.bySize) {
    if (size == 40 * mb) {
      sawLarge = true;
      EXPECT_EQ(0u, others);
    }
  }
  EXPECT_TRUE(sawLarge);
  EXPECT_GE(flight.peakCount, 2u);  // the small ones still go in parallel
}

TEST_F(StudySenderTest, AStopEndsAWaitForMemory) {
  config_.concurrency = 2;
  const uint64_t mb = 1 << 20;
  source_.AddStudy("s1", "1.2.840.1", 4, 4 * mb);
  MemoryBudget budget(16 * mb);
  // Someone else holds the whole budget: the send can only wait, until the stop.
  auto held = budget.Reserve(16 * mb, nullptr);
  EnqueueRequest request;
  request.orthancId = "s1";
  queue_->Enqueue(request, clock_.Now());
  auto claimed = queue_->ClaimNext(clock_.Now() + 1);
  std::thread stopper([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop_.Stop();
  });
  StudySender sender(Deps(&budget));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(SendOutcome::Interrupted, sender.Run(*claimed));
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  EXPECT_EQ(0u, cloud_.Stored().size());
  EXPECT_EQ(StudyState::Queued, queue_->Get("s1")->state);
}

// Orthanc's LastUpdate text ("20261202T005736", UTC) of a Unix time.
static std::string OrthancTimeOf(double unixSeconds) {
  const auto t = static_cast<time_t>(unixSeconds);
  struct tm utc {};
  gmtime_r(&t, &utc);
  char text[32];
  strftime(text, sizeof(text), "%Y%m%dT%H%M%S", &utc);
  return text;
}

TEST_F(StudySenderTest, AnAutomaticSendWaitsWhileAnotherNodeStillAddsInstances) {
  // StableStudy fired on this node, but the study's shared LastUpdate says an
  // instance arrived 3 s ago (on another node): nothing is sent yet.
  config_.cluster.stableAge = 60;
  config_.cluster.sharedStore = true;
  // One reading of the clock: a second boundary between two would shift the expected time.
  const std::string lastUpdate = OrthancTimeOf(clock_.Now() - 3);
  source_.AddStudy("split", "1.2.840.9", 3).lastUpdate = lastUpdate;
  EXPECT_EQ(SendOutcome::Deferred, Send("split"));
  EXPECT_EQ(0u, cloud_.Calls("new-order"));
  const auto record = queue_->Get("split");
  ASSERT_TRUE(record);
  EXPECT_EQ(StudyState::Queued, record->state);
  EXPECT_EQ(0u, record->attempts);  // waiting is not an attempt
  EXPECT_TRUE(record->lastError.empty());
  const double stableAt = *ParseOrthancTime(lastUpdate) + 1 + 60;
  EXPECT_DOUBLE_EQ(stableAt, record->nextAttemptAt);
  EXPECT_EQ(0u, queue_->Totals().failures);
  const auto history = queue_->History("split");
  EXPECT_TRUE(std::any_of(history.begin(), history.end(),
                          [](const HistoryEntry& e) { return e.event == "waiting"; }));
}

TEST_F(StudySenderTest, AQuietStudyAndAManualSendGoAtOnce) {
  config_.cluster.stableAge = 60;
  config_.cluster.sharedStore = true;
  source_.AddStudy("quiet", "1.2.840.10", 2).lastUpdate = OrthancTimeOf(clock_.Now() - 62);
  EXPECT_EQ(SendOutcome::Sent, Send("quiet"));
  source_.AddStudy("busy", "1.2.840.11", 2).lastUpdate = OrthancTimeOf(clock_.Now());
  EXPECT_EQ(SendOutcome::Sent, Send("busy", "manual"));  // the operator asked for it now
  EXPECT_EQ(2u, cloud_.Calls("new-order"));
}

TEST_F(StudySenderTest, ASingleNodeTrustsItsOwnStableStudy) {
  config_.cluster.stableAge = 60;  // SQLite: no other node can add instances
  source_.AddStudy("one-node", "1.2.840.12", 2).lastUpdate = OrthancTimeOf(clock_.Now() - 1);
  EXPECT_EQ(SendOutcome::Sent, Send("one-node"));
}

// ---- de-identification

namespace {

class DeidentifiedSendTest : public StudySenderTest {
 protected:
  static constexpr const char* kKey = "site-7-pseudonym-key-0123456789";

  void SetUp() override {
    StudySenderTest::SetUp();
    config_.deidentify.enable = true;
    config_.deidentify.pseudonymKey = kKey;
  }
  SendOutcome SendDeidentified(const std::string& id) {
    EnqueueRequest request;
    request.orthancId = id;
    request.trigger = "manual";
    request.force = true;
    queue_->Enqueue(request, clock_.Now());
    auto claimed = queue_->ClaimNext(clock_.Now() + 1);
    EXPECT_TRUE(claimed.has_value());
    SenderDependencies deps = Deps();
    deps.deidentifier = &engine_;
    return StudySender(deps).Run(*claimed);
  }
  FakeDeidentifier engine_;
};

}  // namespace

TEST_F(DeidentifiedSendTest, SendsOnlyDeidentifiedFilesAndPseudonyms) {
  source_.AddStudy("s1", "1.2.840.77.1", 4);
  EXPECT_EQ(SendOutcome::Sent, SendDeidentified("s1"));
  const Pseudonyms pseudonyms(kKey);
  const std::string studyUid = pseudonyms.Uid("1.2.840.77.1");

  const auto stored = cloud_.Stored();
  ASSERT_EQ(4u, stored.size());
  for (const auto& [key, body] : stored) {
    EXPECT_EQ(0u, body.rfind("DEID", 0)) << key << " was not de-identified";
    EXPECT_NE(std::string::npos, body.find(studyUid)) << body;
    EXPECT_EQ(std::string::npos, key.find("1.2.3.")) << "original SOP UID in " << key;
  }
  ASSERT_EQ(1u, cloud_.OrderBodies().size());
  const std::string order = cloud_.OrderBodies()[0];
  EXPECT_NE(std::string::npos, order.find("\"study_instance_uid\":\"" + studyUid + "\"")) << order;
  EXPECT_NE(std::string::npos, order.find(pseudonyms.PatientId("P1"))) << order;
  for (const char* original : {"1.2.840.77.1", "Doe^Jane", "\"P1\"", "orthanc_study_id"}) {
    EXPECT_EQ(std::string::npos, order.find(original)) << original << " in " << order;
  }
  for (const auto& body : cloud_.MetadataBodies()) {
    EXPECT_EQ(std::string::npos, body.find("1.2.840.77.1")) << body;
  }

  // The page keeps the original identity; the audit log keeps both UIDs.
  const auto record = queue_->Get("s1");
  ASSERT_TRUE(record);
  EXPECT_EQ("1.2.840.77.1", record->studyInstanceUid);
  EXPECT_EQ("Doe^Jane", record->patientName);
  const std::string audit = AuditText();
  EXPECT_EQ(Count(audit, "\"event\":\"study_sent\""), 1u);
  EXPECT_NE(
      std::string::npos,
      audit.find("\"study_instance_uid\":\"1.2.840.77.1\",\"pseudonymous_study_instance_uid\":\"" +
                 studyUid + "\""))
      << audit;
}

TEST_F(DeidentifiedSendTest, ZipModeZipsTheDeidentifiedFiles) {
  config_.uploadMode = UploadMode::Zip;
  config_.temporaryDirectory = dir_ + "/tmp";
  source_.AddStudy("s1", "1.2.840.77.1", 3);
  EXPECT_EQ(SendOutcome::Sent, SendDeidentified("s1"));
  const auto stored = cloud_.Stored();
  ASSERT_EQ(1u, stored.size());
  const std::string studyUid = Pseudonyms(kKey).Uid("1.2.840.77.1");
  EXPECT_NE(std::string::npos, stored.begin()->first.find(studyUid + ".zip"));
  EXPECT_EQ(3u, Count(stored.begin()->second, "DEID{"));
  EXPECT_EQ(std::string::npos, stored.begin()->second.find("1.2.840.77.1"));
}

TEST_F(DeidentifiedSendTest, BurnedInAnnotationFailsTheStudyWithItsReason) {
  source_.AddStudy("s1", "1.2.840.77.1", 2);
  source_.tags["s1-i2"]["BurnedInAnnotation"] = "YES";
  EXPECT_EQ(SendOutcome::Failed, SendDeidentified("s1"));
  EXPECT_EQ(0u, cloud_.Calls("new-order"));
  EXPECT_EQ(0u, cloud_.Stored().size());
  const auto record = queue_->Get("s1");
  ASSERT_TRUE(record);
  EXPECT_EQ(StudyState::Failed, record->state);
  EXPECT_NE(std::string::npos, record->lastError.find("BurnedInAnnotation YES"))
      << record->lastError;
}

TEST_F(DeidentifiedSendTest, AFailedDeidentificationNeverSendsTheStoredFile) {
  source_.AddStudy("s1", "1.2.840.77.1", 2);
  engine_.failure = "Orthanc: bad request";
  EXPECT_EQ(SendOutcome::Failed, SendDeidentified("s1"));
  EXPECT_EQ(0u, cloud_.Stored().size());
  EXPECT_NE(std::string::npos, queue_->Get("s1")->lastError.find("de-identification of instance"));
}

TEST_F(DeidentifiedSendTest, OffForAStudyWhoseRuleSaysSo) {
  UploadModeRule rule;
  rule.modalities = {"CT"};
  rule.deidentify = config_.deidentify;
  rule.deidentify->enable = false;
  config_.uploadModeRules = {rule};
  source_.AddStudy("s1", "1.2.840.77.1", 2);
  EXPECT_EQ(SendOutcome::Sent, SendDeidentified("s1"));
  ASSERT_EQ(1u, cloud_.OrderBodies().size());
  EXPECT_NE(std::string::npos, cloud_.OrderBodies()[0].find("1.2.840.77.1"));
  EXPECT_EQ(std::string::npos, AuditText().find("pseudonymous_study_instance_uid"));
}
