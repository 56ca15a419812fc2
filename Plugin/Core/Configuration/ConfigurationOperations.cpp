// SendWindows    [{"Days": ["Mon", ...], "From": "19:00", "To": "07:00"}], local
//                time; To before From runs past midnight; "24:00" ends the day.
// MaxSendRate    bytes per second over every upload of the node, 0 (no cap)
//                or at least 1024.
// Webhooks       [{"Url", "Events", "Secret", "IncludePatientData"}]: https,
//                or http to a loopback address only (the body may carry
//                patient data, and the receiver is then on this machine).
// QueueStalledAfter  seconds, default 1800 (extension): how long nothing is
//                sent while work waits before "queue_stalled" is posted.
// Jobs           "Auto" (default) | "All" | "Requested" | "None" (extension):
//                which sends show in Orthanc's /jobs (SendJobsPolicy).
#include "Core/Configuration/ConfigurationOperations.h"

#include <algorithm>

#include "Core/Configuration/ConfigurationReaders.h"
#include "Core/Configuration/ConfigurationValues.h"
#include "Core/Url.h"

namespace CloudIngest {

namespace {

using namespace ConfigurationReaders;

const std::vector<std::string> kWindowKeys = {"Days", "From", "To"};
const std::vector<std::string> kWebhookKeys = {"Url", "Events", "Secret", "IncludePatientData"};
const std::vector<std::string> kWebhookEvents = {"study_failed", "study_sent", "queue_stalled"};
constexpr unsigned kMinSendRate = 1024;

// Calls read(entry, "CloudIngest.Key[i]") for each object of the array at
// `key` after checking its keys; false when `key` is absent.
template <typename Read>
bool ForEachEntry(const Json::Value& section, const char* key,
                  const std::vector<std::string>& entryKeys, const std::string& example,
                  Read read) {
  const Json::Value* list = Find(section, key);
  if (list == nullptr) return false;
  const std::string path = Child("CloudIngest", key);
  if (!list->isArray()) {
    Fail(path, "expected an array, found " + Describe(*list), "write it as " + example);
  }
  for (Json::ArrayIndex i = 0; i < list->size(); ++i) {
    const std::string here = path + "[" + std::to_string(i) + "]";
    const Json::Value& entry = (*list)[i];
    if (!entry.isObject()) {
      Fail(here, "expected an object, found " + Describe(entry), "write each entry as " + example);
    }
    CheckKeys(entry, entryKeys, here);
    read(entry, here);
  }
  return true;
}

int ReadClock(const Json::Value& window, const char* key, const std::string& here) {
  std::string text;
  if (!ReadString(window, key, here, text, "\"19:00\"")) {
    Fail(Child(here, key), "missing", "set it to a local time such as \"19:00\"");
  }
  const int minutes = ParseClockTime(text);
  if (minutes < 0 || (minutes == 1440 && std::string(key) == "From")) {
    Fail(Child(here, key), "expected a local time \"HH:MM\" (00:00..23:59), found " + Quote(text),
         std::string("write it as \"19:00\"") + (std::string(key) == "To" ? " or \"24:00\"" : ""));
  }
  return minutes;
}

void ReadSendWindows(const Json::Value& section, Configuration& config) {
  const std::string example =
      "[{\"Days\": [\"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\"], \"From\": \"19:00\", \"To\": "
      "\"07:00\"}]";
  const bool present = ForEachEntry(
      section, "SendWindows", kWindowKeys, example,
      [&](const Json::Value& entry, const std::string& here) {
        SendWindow window;
        std::vector<std::string> days;
        if (!ReadStringArray(entry, "Days", here, "[\"Mon\", \"Sat\"]", days,
                             [](const std::string& day, const std::string& path) {
                               if (ParseWeekday(day) < 0) {
                                 Fail(path,
                                      "expected a day \"Mon\" .. \"Sun\", found " + Quote(day),
                                      "use Mon, Tue, Wed, Thu, Fri, Sat or Sun");
                               }
                               return day;
                             }) ||
            days.empty()) {
          Fail(Child(here, "Days"), "missing or empty",
               "list the days the window starts on, e.g. "
               "[\"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\"]");
        }
        for (const std::string& day : days) window.days |= 1u << ParseWeekday(day);
        window.fromMinute = ReadClock(entry, "From", here);
        window.toMinute = ReadClock(entry, "To", here);
        if (window.fromMinute == window.toMinute) {
          Fail(here, "From and To are equal, an empty window",
               "for a whole day write \"From\": \"00:00\", \"To\": \"24:00\"");
        }
        config.sendWindows.push_back(window);
      });
  if (present && config.sendWindows.empty()) {
    Fail("CloudIngest.SendWindows", "is empty, so no automatic send could ever start",
         "remove the key to send at any time, or list windows such as " + example);
  }
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

void ReadWebhooks(const Json::Value& section, Configuration& config) {
  const std::string example =
      "[{\"Url\": \"https://alerts.example.org/cloud-ingest\", \"Events\": [\"study_failed\"], "
      "\"Secret\": \"${CLOUD_INGEST_WEBHOOK_SECRET}\"}]";
  ForEachEntry(
      section, "Webhooks", kWebhookKeys, example,
      [&](const Json::Value& entry, const std::string& here) {
        WebhookSettings hook;
        if (Find(entry, "Url") == nullptr) {
          Fail(Child(here, "Url"), "missing", "set it to the receiver's https:// URL");
        }
        hook.url = ReadUrl(entry, "Url", here, "https://alerts.example.org/cloud-ingest",
                           EmptyUrl::Refused);
        const UrlParts parts = ParseUrl(hook.url);
        if (parts.scheme != "https" && !IsLoopback(parts.host)) {
          Fail(Child(here, "Url"),
               "must be https:// (events are signed but not encrypted), found http:// to " +
                   Quote(parts.host),
               "use https://, or http:// only to a receiver on this machine (127.0.0.1)");
        }
        if (!ReadStringArray(entry, "Events", here, "[\"study_failed\", \"queue_stalled\"]",
                             hook.events,
                             [](const std::string& event, const std::string& path) {
                               if (std::find(kWebhookEvents.begin(), kWebhookEvents.end(), event) ==
                                   kWebhookEvents.end()) {
                                 Fail(path,
                                      "expected \"study_failed\", \"study_sent\" or "
                                      "\"queue_stalled\", found " +
                                          Quote(event),
                                      "use one of these");
                               }
                               return event;
                             }) ||
            hook.events.empty()) {
          Fail(Child(here, "Events"), "missing or empty",
               "list the events to post, e.g. [\"study_failed\", \"queue_stalled\"]");
        }
        if (!ReadString(entry, "Secret", here, hook.secret, "\"${CLOUD_INGEST_WEBHOOK_SECRET}\"",
                        Echo::TypeOnly) ||
            hook.secret.empty()) {
          Fail(Child(here, "Secret"),
               "missing or empty (an unset ${VARIABLE} expands to \"\"), so the receiver could not "
               "tell our posts from forged ones",
               "set it to a shared secret, preferably \"${CLOUD_INGEST_WEBHOOK_SECRET}\"");
        }
        ReadBool(entry, "IncludePatientData", here, hook.includePatientData);
        config.webhooks.push_back(std::move(hook));
      });
}

}  // namespace

void ReadOperations(const Json::Value& section, Configuration& config) {
  ReadSendWindows(section, config);
  unsigned rate = 0;
  if (ReadInteger(section, "MaxSendRate", "CloudIngest", 0, 4'000'000'000u, 2'000'000, rate) &&
      rate != 0 && rate < kMinSendRate) {
    Fail("CloudIngest.MaxSendRate",
         "expected 0 (no cap) or at least " + std::to_string(kMinSendRate) +
             " bytes per second, found " + std::to_string(rate),
         "set it in bytes per second, e.g. 2000000 for 2 MB/s");
  }
  config.maxSendRate = rate;
  ReadWebhooks(section, config);
  ReadSeconds(section, "QueueStalledAfter", "CloudIngest", 7 * 86400, "1800",
              config.queueStalledAfter);
  ReadChoice<SendJobsPolicy>(section, "Jobs",
                             {{"Auto", SendJobsPolicy::Auto},
                              {"All", SendJobsPolicy::All},
                              {"Requested", SendJobsPolicy::Requested},
                              {"None", SendJobsPolicy::None}},
                             config.jobs);
}

}  // namespace CloudIngest
