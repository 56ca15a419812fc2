// CloudIngestService's stop and start around an upload in flight, on the
// in-memory cloud (no network).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "Core/CloudIngestService.h"
#include "Fakes/FakeCloud.h"
#include "Fakes/FakeIngestService.h"
#include "Fakes/FakeStudySource.h"
#include "Fakes/RecordingLogger.h"

using namespace CloudIngest;
using namespace CloudIngest::Testing;

namespace {

// The first PUT hangs, as on a very slow link, until AbortAll(),
// like CurlHttpClient: aborted transfers throw HttpAborted, and nothing
// starts until ResumeTransfers().
class HangingCloud : public FakeCloud {
 public:
  HttpResponse Execute(const HttpRequest& request) override {
    std::unique_lock<std::mutex> lock(mutex_);
    if (aborting_) throw HttpAborted("not started, transfers are stopped");
    if (request.method == "PUT" && !hungOnce_) {
      hungOnce_ = true;
      hanging_ = true;
      changed_.notify_all();
      // Bounded, so that a Stop() that does not abort fails instead of hanging.
      const bool aborted =
          changed_.wait_for(lock, std::chrono::seconds(10), [this] { return aborting_; });
      hanging_ = false;
      if (!aborted) throw HttpTransportError("PUT: too slow for 10 s");
      throw HttpAborted("PUT: aborted, transfers are stopped");
    }
    lock.unlock();
    return FakeCloud::Execute(request);
  }
  void AbortAll() override {
    const std::lock_guard<std::mutex> lock(mutex_);
    aborting_ = true;
    changed_.notify_all();
  }
  void ResumeTransfers() override {
    const std::lock_guard<std::mutex> lock(mutex_);
    aborting_ = false;
  }
  bool WaitUntilHanging(std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, limit, [this] { return hanging_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool aborting_ = false;
  bool hungOnce_ = false;
  bool hanging_ = false;
};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST(CloudIngestService, StopAbortsAnUploadInFlightAndStartSendsTheStudyAgain) {
  char pattern[] = "/tmp/service-test-XXXXXX";
  const std::string dir = mkdtemp(pattern);
  Configuration config;
  config.url = "http://127.0.0.1:9";
  config.tokenUrl = config.url + "/auth/token";
  config.clientId = "client";
  config.clientSecret = "secret";
  config.allowedUploadHosts = {"127.0.0.1"};
  config.database = dir + "/queue.db";
  config.auditLog = dir + "/audit.jsonl";
  config.temporaryDirectory = dir + "/tmp";
  config.uploadMode = UploadMode::Zip;
  FakeStudySource source;
  source.AddStudy("s1", "1.2.840.1", 5, 2000);
  Testing::RecordingLogger log;
  auto cloud = std::make_unique<HangingCloud>();
  HangingCloud& http = *cloud;
  {
    CloudIngestService service(config, source, log, nullptr, std::move(cloud));
    service.Start();
    EnqueueRequest request;
    request.orthancId = "s1";
    service.Send(request);
    ASSERT_TRUE(http.WaitUntilHanging(std::chrono::seconds(20)));

    const auto stopping = std::chrono::steady_clock::now();
    service.Stop();  // used to wait for the PUT (here: forever)
    EXPECT_LT(SecondsSince(stopping), 5.0);
    auto record = Tracked(service, "s1");
    ASSERT_TRUE(record);
    EXPECT_EQ(StudyState::Queued, record->state);
    EXPECT_EQ("interrupted by Orthanc's shutdown", record->lastError);
    EXPECT_EQ(0u, service.Status().totals.failures);
    EXPECT_EQ(0u, http.Stored().size());

    // A start after the stop sends again.
    service.Start();
    const auto started = std::chrono::steady_clock::now();
    while (Tracked(service, "s1")->state != StudyState::Sent && SecondsSince(started) < 20) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(StudyState::Sent, Tracked(service, "s1")->state);
    EXPECT_EQ(1u, http.Stored().size());
    EXPECT_EQ(0u, service.Status().totals.failures);
    service.Stop();
  }
  std::filesystem::remove_all(dir);
}
