#pragma once
// Webhooks: a signed JSON POST per event to each webhook that asked for it.
// Events are written to a durable queue (WebhookOutbox) by the thread that
// saw them, and posted by one thread of their own, so a slow or dead
// receiver never holds a send. Failed posts are retried with backoff for a
// day, then dropped with an error in the log.
//
// Events: "study_sent" and "study_failed" when a study ends in that state
// (a failed attempt that will be retried is not "failed"), and
// "queue_stalled" (StallDetector).
#include <json/value.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "Core/Clock.h"
#include "Core/Cloud/Http.h"
#include "Core/Configuration/Configuration.h"
#include "Core/Logger.h"
#include "Core/Notify/WebhookOutbox.h"
#include "Core/Sending/StopSignal.h"
#include "Core/Store/StudyRecord.h"
#include "Core/ThreadStarter.h"

namespace CloudIngest {

// "queue_stalled": work waits (a study is being sent, or a queued one is
// due) and nothing was sent (no study, instance or byte more in the totals)
// for `after` seconds. Posted once per stall; a new one needs progress, or
// the queue idle, first. A study waiting for its send window is not due.
class StallDetector {
 public:
  explicit StallDetector(double after) : after_(after) {}
  // `progress` is any counter that grows when something is sent.
  // True when the stall has just lasted `after` seconds.
  bool Observe(double now, bool workWaiting, uint64_t progress);
  double Since() const { return since_; }

 private:
  double after_;
  double since_ = -1;  // when the current wait without progress began
  uint64_t progress_ = 0;
  bool fired_ = false;
};

// What the stall check reads of the queue.
struct QueueProbe {
  bool workWaiting = false;
  uint64_t progress = 0;
  unsigned queued = 0, sending = 0;
  double lastSuccess = 0;
};

// The JSON body of a study event. Without `includePatientData` it holds no
// patient data: no patient name, id, study date, description or
// StudyInstanceUID (which identify the patient or the examination outside
// the two systems), only the Orthanc study id, the order id, counts and the
// error; with it, these appear under "patient" and "study_instance_uid".
Json::Value StudyEventBody(const std::string& event, const StudyRecord& study, double now,
                           bool includePatientData);
// "sha256=<hex HMAC-SHA256 of body under secret>"
std::string WebhookSignature(const std::string& secret, const std::string& body);

class WebhookNotifier {
 public:
  // Opens the queue (throws ConfigurationError when it cannot). `http` is
  // the notifier's own client: a post never waits behind MaxSendRate.
  WebhookNotifier(const Configuration& config, std::unique_ptr<IHttpClient> http,
                  const IClock& clock, ILogger& log, ThreadStarter& threads);
  ~WebhookNotifier();

  bool Enabled() const { return !config_.webhooks.empty(); }
  // Queues the event for every webhook that wants it; never throws.
  void StudyEnded(const std::string& event, const StudyRecord& study);
  // Starts the posting thread; `probe` is read for queue_stalled.
  void Start(std::function<QueueProbe()> probe);
  void Stop();
  size_t Pending();

 private:
  void Queue(const std::string& event, const std::function<Json::Value(bool)>& body);
  void Run();
  void CheckStall();
  void PostOne(const WebhookPost& post);
  const WebhookSettings* Find(const std::string& url, const std::string& event) const;

  const Configuration& config_;
  std::unique_ptr<IHttpClient> http_;
  const IClock& clock_;
  ILogger& log_;
  ThreadStarter& threads_;
  std::unique_ptr<WebhookOutbox> outbox_;
  std::function<QueueProbe()> probe_;
  StallDetector stall_;
  StopSignal stop_;
  std::thread thread_;
};

}  // namespace CloudIngest
