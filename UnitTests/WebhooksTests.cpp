// Webhooks: signature, bodies without patient data, the stall rule, the
// durable bounded queue, and the posting thread's retries.
#include <gtest/gtest.h>
#include <json/json.h>

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <thread>

#include "Core/Hashes.h"
#include "Core/Notify/WebhookOutbox.h"
#include "Core/Notify/Webhooks.h"
#include "Fakes/FakeHttpClient.h"
#include "Fakes/RecordingLogger.h"
#include "Fakes/WaitUntil.h"

using namespace CloudIngest;
using namespace CloudIngest::Testing;

namespace {

constexpr const char* kSecret = "hook-secret-DoNotLog";

// A fresh spool file for one test, removed by the test's end.
class SpoolFile {
 public:
  SpoolFile()
      : path_(::testing::TempDir() + "hooks-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db") {
    Remove();
  }
  ~SpoolFile() { Remove(); }
  const std::string& Path() const { return path_; }

 private:
  void Remove() const {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path_ + suffix).c_str());
  }
  std::string path_;
};

StudyRecord SentStudy() {
  StudyRecord r;
  r.orthancId = "6e2c0ec2-5d99c7c3-8a6bd8e5-21c4d2d9-5b8bd6c0";
  r.studyInstanceUid = "1.2.826.0.1.3680043.8.1055.1";
  r.orderId = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
  r.state = StudyState::Sent;
  r.instancesSent = r.instancesTotal = 12;
  r.bytesSent = 6'000'000;
  r.attempts = 1;
  r.trigger = "auto";
  r.patientName = "DOE^JANE";
  r.patientId = "PID-4711";
  r.studyDate = "20261201";
  r.studyDescription = "CT THORAX";
  r.sentAt = 1'700'000'100;
  return r;
}

Json::Value Parse(const std::string& text) {
  Json::Value value;
  std::istringstream(text) >> value;
  return value;
}

}  // namespace

TEST(Webhooks, SignatureIsTheHexHmacSha256OfTheBody) {
  // RFC 4231, test case 2.
  EXPECT_EQ("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            HmacSha256Hex("Jefe", "what do ya want for nothing?"));
  EXPECT_EQ("sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            WebhookSignature("Jefe", "what do ya want for nothing?"));
}

TEST(Webhooks, AStudyEventHoldsNoPatientDataUnlessAsked) {
  const StudyRecord study = SentStudy();
  Json::StreamWriterBuilder builder;
  const std::string plain =
      Json::writeString(builder, StudyEventBody("study_sent", study, 1'700'000'200, false));
  for (const std::string& value : {study.patientName, study.patientId, study.studyDate,
                                   study.studyDescription, study.studyInstanceUid}) {
    EXPECT_EQ(std::string::npos, plain.find(value)) << value << " in " << plain;
  }
  const Json::Value body = Parse(plain);
  EXPECT_EQ("study_sent", body["event"].asString());
  EXPECT_EQ(study.orthancId, body["orthanc_study_id"].asString());
  EXPECT_EQ(study.orderId, body["order_id"].asString());
  EXPECT_EQ(12u, body["instances_sent"].asUInt());
  EXPECT_FALSE(body.isMember("patient"));
  EXPECT_FALSE(body.isMember("error"));

  const Json::Value full = StudyEventBody("study_sent", study, 1'700'000'200, true);
  EXPECT_EQ("DOE^JANE", full["patient"]["patient_name"].asString());
  EXPECT_EQ("PID-4711", full["patient"]["patient_id"].asString());
  EXPECT_EQ(study.studyInstanceUid, full["study_instance_uid"].asString());

  StudyRecord failed = study;
  failed.state = StudyState::Failed;
  failed.lastError = "new-order: HTTP 400 bad request";
  EXPECT_EQ(failed.lastError,
            StudyEventBody("study_failed", failed, 1'700'000'200, false)["error"].asString());
}

TEST(StallDetector, FiresOnceWhenWorkWaitsWithoutProgress) {
  StallDetector stall(60);
  EXPECT_FALSE(stall.Observe(0, true, 5));
  EXPECT_FALSE(stall.Observe(59, true, 5));
  EXPECT_TRUE(stall.Observe(60, true, 5));
  EXPECT_DOUBLE_EQ(0, stall.Since());
  EXPECT_FALSE(stall.Observe(500, true, 5));  // once per stall
  // Progress ends the stall; a new one is measured from then.
  EXPECT_FALSE(stall.Observe(510, true, 6));
  EXPECT_FALSE(stall.Observe(569, true, 6));
  EXPECT_TRUE(stall.Observe(570, true, 6));
  // An idle queue is not stalled, and the clock restarts when work returns.
  EXPECT_FALSE(stall.Observe(600, false, 6));
  EXPECT_FALSE(stall.Observe(1000, true, 6));
  EXPECT_FALSE(stall.Observe(1059, true, 6));
  EXPECT_TRUE(stall.Observe(1060, true, 6));
}

TEST(WebhookOutbox, KeepsPostsAcrossARestartInOrderAndBounded) {
  const SpoolFile spool;
  std::string movedTo;
  {
    WebhookOutbox outbox(spool.Path(), 3, 100, movedTo);
    EXPECT_EQ(0u, outbox.Add("https://a.example/h", "study_sent", "{\"n\":1}", 100));
    EXPECT_EQ(0u, outbox.Add("https://a.example/h", "study_sent", "{\"n\":2}", 101));
    EXPECT_EQ(0u, outbox.Add("https://a.example/h", "study_sent", "{\"n\":3}", 102));
    EXPECT_EQ(1u, outbox.Add("https://a.example/h", "study_failed", "{\"n\":4}", 103));
    EXPECT_EQ(3u, outbox.Size());
  }
  WebhookOutbox reopened(spool.Path(), 3, 200, movedTo);
  EXPECT_TRUE(movedTo.empty());
  ASSERT_EQ(3u, reopened.Size());
  auto first = reopened.NextDue(200);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ("{\"n\":2}", first->body);  // the oldest was dropped
  reopened.Retry(first->id, 1, 300);
  auto second = reopened.NextDue(200);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ("{\"n\":3}", second->body);
  reopened.Remove(second->id);
  reopened.Remove(reopened.NextDue(200)->id);
  EXPECT_FALSE(reopened.NextDue(200).has_value());
  EXPECT_DOUBLE_EQ(300, *reopened.NextDueTime());
  const auto retried = reopened.NextDue(300);
  ASSERT_TRUE(retried.has_value());
  EXPECT_EQ(1u, retried->attempts);
  EXPECT_EQ("study_sent", retried->event);
}

TEST(WebhookNotifier, PostsSignedEventsToTheHooksThatWantThemAndRetriesFailures) {
  const SpoolFile spool;
  Configuration config;
  config.webhookSpool = spool.Path();
  config.webhooks = {{"https://ops.example/sent", {"study_sent"}, kSecret, false},
                     {"https://ops.example/all", {"study_sent", "study_failed"}, "other", true}};
  FakeHttpClient http;
  http.Enqueue(500, "not now");  // the first post fails once
  http.SetHandler([](const HttpRequest&) { return MakeResponse(204); });
  SystemClock clock;
  RecordingLogger log;
  ThreadStarter threads(log);
  WebhookNotifier notifier(config, std::make_unique<ForwardingHttp>(http), clock, log, threads);
  notifier.Start([] { return QueueProbe{}; });
  notifier.StudyEnded("study_sent", SentStudy());
  // Two posts, one of them twice (500, then 204 about 2 s later).
  ASSERT_TRUE(WaitUntil([&] { return http.RequestCount() == 3 && notifier.Pending() == 0; }));
  notifier.Stop();

  std::map<std::string, std::vector<RecordedRequest>> byUrl;
  for (const auto& r : http.Requests()) byUrl[r.request.url].push_back(r);
  ASSERT_EQ(2u, byUrl.size());  // the failed-only hook got nothing: both want study_sent
  for (const auto& [url, requests] : byUrl) {
    const std::string secret = url == "https://ops.example/sent" ? kSecret : "other";
    for (const auto& r : requests) {
      EXPECT_EQ("POST", r.request.method);
      EXPECT_EQ("application/json", r.Header("Content-Type"));
      EXPECT_EQ("study_sent", r.Header("X-CloudIngest-Event"));
      EXPECT_EQ(WebhookSignature(secret, r.sentBody), r.Header("X-CloudIngest-Signature"));
      const Json::Value body = Parse(r.sentBody);
      EXPECT_EQ(url == "https://ops.example/all", body.isMember("patient")) << url;
    }
    // A retry posts the very same body (same id), so receivers can drop repeats.
    if (requests.size() == 2) {
      EXPECT_EQ(requests[0].sentBody, requests[1].sentBody);
    }
  }
  EXPECT_EQ(0u, log.Count(kSecret));
  EXPECT_EQ(1u, log.Count("failed (HTTP 500); retrying in 2 s"));
}

TEST(WebhookNotifier, PostsQueueStalledOnceWhenNothingMovesWhileWorkWaits) {
  const SpoolFile spool;
  Configuration config;
  config.webhookSpool = spool.Path();
  config.queueStalledAfter = 0.3;
  config.webhooks = {{"https://ops.example/stall", {"queue_stalled"}, kSecret, false}};
  FakeHttpClient http;
  http.SetHandler([](const HttpRequest&) { return MakeResponse(200); });
  SystemClock clock;
  RecordingLogger log;
  ThreadStarter threads(log);
  WebhookNotifier notifier(config, std::make_unique<ForwardingHttp>(http), clock, log, threads);
  QueueProbe probe;
  probe.workWaiting = true;
  probe.queued = 3;
  probe.progress = 42;
  notifier.Start([&] { return probe; });
  ASSERT_TRUE(WaitUntil([&] { return http.RequestCount() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // and no second post
  notifier.Stop();
  ASSERT_EQ(1u, http.RequestCount());
  const Json::Value body = Parse(http.Requests()[0].sentBody);
  EXPECT_EQ("queue_stalled", body["event"].asString());
  EXPECT_EQ(3u, body["queued"].asUInt());
}
