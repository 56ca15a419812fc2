#include "Core/Notify/Webhooks.h"

#include <json/json.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cmath>

#include "Core/Hashes.h"
#include "Core/Store/StoreErrors.h"
#include "Core/Time.h"

namespace CloudIngest {

namespace {

constexpr size_t kCapacity = 10000;     // posts kept while receivers are down
constexpr double kFirstRetry = 2;       // seconds, doubling
constexpr double kMaxRetry = 600;       // seconds between two tries at most
constexpr double kGiveUpAfter = 86400;  // seconds after the event
constexpr double kMaxIdle = 30;         // seconds between two looks at the queue

std::string Compact(const Json::Value& value) {
  Json::StreamWriterBuilder builder;
  builder["indentation"] = "";
  builder["emitUTF8"] = true;
  return Json::writeString(builder, value);
}

std::string RandomId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("no random bytes");
  std::string hex;
  for (const unsigned char b : bytes) {
    static const char* const kHex = "0123456789abcdef";
    hex += kHex[b >> 4];
    hex += kHex[b & 0x0f];
  }
  return hex;
}

Json::Value OptionalTime(double time) {
  return time > 0 ? Json::Value(FormatIsoTime(time)) : Json::Value(Json::nullValue);
}

}  // namespace

bool StallDetector::Observe(double now, bool workWaiting, uint64_t progress) {
  if (!workWaiting) {
    since_ = -1;
    fired_ = false;
    return false;
  }
  if (since_ < 0 || progress != progress_) {
    since_ = now;
    progress_ = progress;
    fired_ = false;
    return false;
  }
  if (fired_ || now - since_ < after_) return false;
  fired_ = true;
  return true;
}

Json::Value StudyEventBody(const std::string& event, const StudyRecord& study, double now,
                           bool includePatientData) {
  Json::Value body;
  body["event"] = event;
  body["time"] = FormatIsoTime(now);
  body["orthanc_study_id"] = study.orthancId;
  body["order_id"] = study.orderId.empty() ? Json::Value(Json::nullValue) : study.orderId;
  body["state"] = ToString(study.state);
  body["instances_sent"] = study.instancesSent;
  body["instances_total"] = study.instancesTotal;
  body["bytes_sent"] = static_cast<Json::UInt64>(study.bytesSent);
  body["attempts"] = study.attempts;
  body["trigger"] = study.trigger;
  body["sent_at"] = OptionalTime(study.sentAt);
  if (study.state == StudyState::Failed) body["error"] = study.lastError;
  if (includePatientData) {
    body["study_instance_uid"] = study.studyInstanceUid;
    Json::Value patient;
    patient["patient_name"] = study.patientName;
    patient["patient_id"] = study.patientId;
    patient["study_date"] = study.studyDate;
    patient["study_description"] = study.studyDescription;
    body["patient"] = patient;
  }
  return body;
}

std::string WebhookSignature(const std::string& secret, const std::string& body) {
  return "sha256=" + HmacSha256Hex(secret, body);
}

WebhookNotifier::WebhookNotifier(const Configuration& config, std::unique_ptr<IHttpClient> http,
                                 const IClock& clock, ILogger& log, ThreadStarter& threads)
    : config_(config),
      http_(std::move(http)),
      clock_(clock),
      log_(log),
      threads_(threads),
      stall_(config.queueStalledAfter) {
  if (!Enabled()) return;
  std::string movedTo;
  try {
    outbox_ =
        std::make_unique<WebhookOutbox>(config_.webhookSpool, kCapacity, clock_.Now(), movedTo);
  } catch (const DatabaseError& e) {
    throw ConfigurationError(std::string("CloudIngest.Webhooks: cannot open the webhook queue: ") +
                             e.what() + "; make the folder of \"Database\" writable by Orthanc");
  }
  if (!movedTo.empty()) {
    log_.Error("CloudIngest: the webhook queue '" + config_.webhookSpool +
               "' was damaged; moved it to '" + movedTo + "' (posts pending in it are lost)");
  }
}

WebhookNotifier::~WebhookNotifier() {
  Stop();
}

void WebhookNotifier::Queue(const std::string& event,
                            const std::function<Json::Value(bool)>& body) {
  if (!outbox_) return;
  const double now = clock_.Now();
  for (const WebhookSettings& hook : config_.webhooks) {
    if (std::find(hook.events.begin(), hook.events.end(), event) == hook.events.end()) continue;
    try {
      Json::Value value = body(hook.includePatientData);
      value["id"] = RandomId();  // the same on every retry: receivers can drop repeats
      if (const unsigned dropped = outbox_->Add(hook.url, event, Compact(value), now)) {
        log_.Warning("CloudIngest: webhook queue full; dropped the " + std::to_string(dropped) +
                     " oldest post(s)");
      }
    } catch (const std::exception& e) {
      log_.Error("CloudIngest: cannot queue the webhook " + event + " for " + hook.url + ": " +
                 e.what());
    }
  }
  stop_.Wake();
}

void WebhookNotifier::StudyEnded(const std::string& event, const StudyRecord& study) {
  Queue(event, [&](bool includePatientData) {
    return StudyEventBody(event, study, clock_.Now(), includePatientData);
  });
}

void WebhookNotifier::Start(std::function<QueueProbe()> probe) {
  if (!outbox_ || thread_.joinable()) return;
  probe_ = std::move(probe);
  stop_.Reset();
  http_->ResumeTransfers();
  thread_ = threads_.StartOne([this] { Run(); }, "posting webhooks", {"ci-webhooks"});
}

void WebhookNotifier::Stop() {
  stop_.Stop();
  if (http_) http_->AbortAll();  // a receiver that hangs does not hold Orthanc's shutdown
  if (thread_.joinable()) thread_.join();
}

size_t WebhookNotifier::Pending() {
  try {
    return outbox_ ? outbox_->Size() : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

const WebhookSettings* WebhookNotifier::Find(const std::string& url,
                                             const std::string& event) const {
  for (const WebhookSettings& hook : config_.webhooks) {
    if (hook.url == url &&
        std::find(hook.events.begin(), hook.events.end(), event) != hook.events.end()) {
      return &hook;
    }
  }
  return nullptr;
}

void WebhookNotifier::CheckStall() {
  if (!probe_) return;
  const QueueProbe probe = probe_();
  const double now = clock_.Now();
  if (!stall_.Observe(now, probe.workWaiting, probe.progress)) return;
  log_.Warning("CloudIngest: the queue is stalled: nothing sent for " +
               std::to_string(static_cast<long>(now - stall_.Since())) + " s while work waits");
  Queue("queue_stalled", [&](bool) {
    Json::Value body;
    body["event"] = "queue_stalled";
    body["time"] = FormatIsoTime(now);
    body["stalled_since"] = FormatIsoTime(stall_.Since());
    body["queued"] = probe.queued;
    body["sending"] = probe.sending;
    body["last_success"] = OptionalTime(probe.lastSuccess);
    return body;
  });
}

void WebhookNotifier::PostOne(const WebhookPost& post) {
  const WebhookSettings* hook = Find(post.url, post.event);
  if (hook == nullptr) {
    log_.Warning("CloudIngest: dropped a pending " + post.event + " webhook post for " + post.url +
                 ": that webhook is no longer configured for it");
    outbox_->Remove(post.id);
    return;
  }
  HttpRequest request;
  request.method = "POST";
  request.url = post.url;
  request.body = post.body;
  request.headers = {{"Content-Type", "application/json"},
                     {"X-CloudIngest-Event", post.event},
                     {"X-CloudIngest-Delivery", std::to_string(post.id)},
                     {"X-CloudIngest-Signature", WebhookSignature(hook->secret, post.body)}};
  std::string problem;
  try {
    const HttpResponse response = http_->Execute(request);
    if (response.status >= 200 && response.status < 300) {
      outbox_->Remove(post.id);
      return;
    }
    problem = "HTTP " + std::to_string(response.status);
  } catch (const HttpAborted&) {
    return;  // stopping: posted after the restart
  } catch (const std::exception& e) {
    problem = e.what();
  }
  const unsigned attempts = post.attempts + 1;
  const double now = clock_.Now();
  if (now - post.createdAt >= kGiveUpAfter) {
    log_.Error("CloudIngest: gave up the " + post.event + " webhook post to " + post.url +
               " after " + std::to_string(attempts) + " attempts: " + problem);
    outbox_->Remove(post.id);
    return;
  }
  const double delay = std::min(kMaxRetry, kFirstRetry * std::pow(2.0, attempts - 1));
  log_.Warning("CloudIngest: webhook post " + post.event + " to " + post.url + " failed (" +
               problem + "); retrying in " + std::to_string(static_cast<long>(delay)) + " s");
  outbox_->Retry(post.id, attempts, now + delay);
}

void WebhookNotifier::Run() {
  const double stallPoll = std::clamp(config_.queueStalledAfter / 4, 0.2, kMaxIdle);
  double nextStallCheck = 0;
  while (!stop_.Stopped()) {
    double wait = kMaxIdle;
    try {
      const double now = clock_.Now();
      if (now >= nextStallCheck) {
        CheckStall();
        nextStallCheck = now + stallPoll;
      }
      // One post at a time, oldest due first: a receiver that fails is
      // retried later, and does not hold the posts to other receivers.
      if (auto post = outbox_->NextDue(clock_.Now())) {
        PostOne(*post);
        continue;
      }
      wait = std::min(wait, nextStallCheck - clock_.Now());
      if (auto due = outbox_->NextDueTime()) wait = std::min(wait, *due - clock_.Now());
    } catch (const std::exception& e) {
      log_.Error(std::string("CloudIngest: webhooks: ") + e.what());
    }
    stop_.WaitFor(std::max(0.05, wait), true);
  }
}

}  // namespace CloudIngest
