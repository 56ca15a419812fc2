#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "Core/StudySender.h"
#include "Fakes/FakeCloud.h"
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
    queue_ = std::make_unique<UploadQueue>(config_.database);
    audit_ = std::make_unique<AuditLog>(config_.auditLog);
    TokenSettings ts{config_.tokenUrl, "GET", config_.clientId, config_.clientSecret, "upload"};
    tokens_ = std::make_unique<TokenProvider>(ts, cloud_, clock_);
    client_ = std::make_unique<IngestClient>(config_, cloud_, *tokens_);
    retry_ = std::make_unique<RetryPolicy>(config_.retry, 42);
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
    StudySender sender(SenderDependencies{
        config_, source_, *client_, *queue_, *audit_, *retry_, clock_, log_, stop_,
        [this](const std::string& s) { return cancelled_.count(s) > 0; }});
    return sender.Run(*claimed);
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
  std::set<std::string> cancelled_;
  std::unique_ptr<UploadQueue> queue_;
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
  StudySender sender(SenderDependencies{config_, source_, *client_, *queue_, *audit_, *retry_,
                                        clock_, log_, stop_, nullptr});
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
      queue_->Cancel("s1", clock_.Now());
      cancelled_.insert("s1");
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

TEST_F(StudySenderTest, UploadModeRulesChooseZipForMatchingStudies) {
  config_.temporaryDirectory = dir_ + "/tmp";
  config_.uploadModeRules = {UploadModeRule{{"CT"}, {}, UploadMode::Zip}};
  source_.AddStudy("s1", "1.2.840.1", 3);
  EXPECT_EQ(SendOutcome::Sent, Send("s1"));
  EXPECT_EQ(1u, cloud_.Calls("put"));
  config_.uploadModeRules = {UploadModeRule{{"MR"}, {}, UploadMode::Zip}};
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
