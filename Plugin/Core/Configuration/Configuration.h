#pragma once
// The CloudIngest section of Orthanc's configuration, validated once at start-up.
#include <json/value.h>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "Core/Configuration/ConfigurationCluster.h"
#include "Core/Configuration/ConfigurationError.h"
#include "Core/Configuration/ConfigurationLabels.h"
#include "Core/Configuration/SendWindows.h"

namespace CloudIngest {

// Auto picks Instances or Zip per study from the measured round-trip time
// (Sending/UploadPlan.h); it is never an attempt's mode itself.
enum class UploadMode { Instances, Zip, Nifti, Auto };
std::string ToString(UploadMode mode);

// Concurrency: a fixed number of uploads at a time, or "auto" (grows with the
// measured round-trip time up to MaxConcurrency).
enum class ConcurrencyMode { Fixed, Auto };

// Jobs: which sends show in Orthanc's /jobs as CloudIngestSend jobs. Auto:
// every send, each job deleted from Orthanc's job history once it ended where
// Orthanc can (1.12.2), else Requested. Requested: only the sends a person
// asked for (trigger "manual"). All: every send, ended jobs kept.
enum class SendJobsPolicy { Auto, All, Requested, None };

// What to do with instances that arrive after a study was sent.
enum class LateInstancePolicy { ResendStudy, Ignore };

struct RetrySettings {
  unsigned maxAttempts = 8;  // attempts of one step (HTTP call) before the study attempt fails
  double baseDelay = 1.0;    // seconds
  double maxDelay = 30.0;    // seconds; backoff ceiling
  unsigned maxStudyAttempts = 20;  // whole-study attempts before the study is marked failed
  double studyRetryDelay = 60.0;   // seconds before a failed study attempt is retried (doubles)
};

struct Endpoint {
  std::string method;
  std::string path;  // appended to Url
};

struct OrderMetadataValue {
  bool isConstant = false;
  std::string tag;       // DICOM tag name, read from the study's stored tags
  Json::Value constant;  // {"Value": ...}
};

struct Filters {
  std::vector<std::string> modalities;   // empty: any
  std::vector<std::string> callingAets;  // empty: any
};

// De-identification profiles, each one of Orthanc's anonymization profiles.
enum class DeidentifyProfile {
  Basic,  // DICOM PS 3.15 Table E.1-1, basic profile (Orthanc's "2021b")
};

// Deidentify: every instance goes through Orthanc's anonymization first.
struct DeidentifySettings {
  bool enable = false;
  DeidentifyProfile profile = DeidentifyProfile::Basic;
  std::vector<std::string> keep;               // tag keywords or "gggg,eeee" left as they are
  std::map<std::string, std::string> replace;  // tag -> value written instead
  std::string pseudonymKey;                    // HMAC key of the pseudonyms; a secret
  std::vector<std::string> refuseModalities;   // studies with one of these are not sent
};

// Extension: the upload mode of the studies a rule matches (first match wins).
struct UploadModeRule {
  std::vector<std::string> modalities;   // empty: any
  std::vector<std::string> callingAets;  // empty: any
  UploadMode mode = UploadMode::Instances;
  std::optional<DeidentifySettings> deidentify;  // absent: the global Deidentify
};

// One entry of Webhooks: where events are POSTed, signed with `secret`.
struct WebhookSettings {
  std::string url;
  std::vector<std::string> events;  // of "study_failed", "study_sent", "queue_stalled"
  std::string secret;               // HMAC-SHA256 key; never logged
  bool includePatientData = false;
};

// Who may do what on /cloud-ingest/ (each role includes the ones before).
enum class Role { None, Viewer, Operator, Admin };
const char* ToString(Role role);

struct PermissionSettings {
  bool configured = false;  // absent: everyone Orthanc lets in is Admin
  std::map<std::string, Role> users;
  Role defaultRole = Role::None;  // other users, and requests without one
};

enum class SyslogProtocol { Udp, Tcp, Tls };

// AuditSyslog: every audit record also goes to a syslog collector.
struct SyslogSettings {
  bool enabled = false;
  std::string host;
  unsigned port = 514;
  SyslogProtocol protocol = SyslogProtocol::Tcp;
  std::string caCertificate;  // TLS: the collector's CA (empty: the system's)
  std::string appName = "orthanc-cloud-ingest";
};

struct Configuration {
  bool enable = true;
  std::string url;  // without trailing '/'
  std::string tokenUrl;
  std::string tokenMethod = "GET";
  std::string clientId;
  std::string clientSecret;
  std::string scope = "upload";
  bool autoSend = true;
  UploadMode uploadMode = UploadMode::Instances;
  Filters filters;
  std::vector<UploadModeRule> uploadModeRules;
  std::map<std::string, OrderMetadataValue> orderMetadata;
  unsigned concurrency = 4;  // Fixed: the uploads at a time; Auto: the fewest
  ConcurrencyMode concurrencyMode = ConcurrencyMode::Fixed;
  unsigned maxConcurrency = 32;       // Auto: the most uploads at a time
  uint64_t maxMemory = 256ull << 20;  // bytes of instances held in memory while uploading
  RetrySettings retry;
  double timeout = 60;  // seconds, whole request
  double connectTimeout = 10;
  bool httpsVerifyPeers = true;
  std::string httpsCaCertificates;
  std::string httpProxy;
  std::vector<std::string> allowedUploadHosts;  // patterns, '*' wildcard
  bool allowInsecureUploads = false;  // http:// upload URLs although Url is https:// (labs)
  std::string auditLog;
  std::string database;
  std::string temporaryDirectory;  // ZIPs being built; cleaned at start-up
  std::string dcm2niixPath = "dcm2niix";
  bool niftiFallbackToDicom = true;  // a series dcm2niix cannot convert is sent as DICOM
  Endpoint newOrder{"GET", "/new-order"};
  Endpoint upload{"GET", "/upload"};
  Endpoint addMetadata{"PATCH", "/add-metadata"};
  double groupWindow = 60;  // the service's grouping window (seconds)
  LateInstancePolicy lateInstances = LateInstancePolicy::ResendStudy;
  unsigned studyWorkers = 2;        // studies sent at the same time
  double changesPollInterval = 30;  // seconds between reads of /changes (the restart cursor)
  ClusterSettings cluster;
  std::vector<SendWindow> sendWindows;  // empty: automatic sends start at any time
  uint64_t maxSendRate = 0;             // bytes per second over every upload; 0: no cap
  std::vector<WebhookSettings> webhooks;
  double queueStalledAfter = 1800;  // seconds without a send while work waits: queue_stalled
  SendJobsPolicy jobs = SendJobsPolicy::Auto;
  std::string webhookSpool;  // the webhooks' durable queue (SQLite file)
  PermissionSettings permissions;
  std::string auditKey;  // signs audit records and receipts; empty: none
  SyslogSettings auditSyslog;
  DeidentifySettings deidentify;
  LabelSettings labels;  // Orthanc 1.12.0 or newer (checked where the running version is known)
};

// Values taken from Orthanc's global configuration, used as defaults.
struct OrthancDefaults {
  double httpTimeout = 60;
  bool httpsVerifyPeers = true;
  std::string httpsCaCertificates;
  std::string httpProxy;
  std::string indexDirectory = "OrthancStorage";
  std::string hostName = "localhost";
  unsigned httpPort = 8042;
  double stableAge = 60;
  bool authenticationEnabled = false;  // Orthanc's own (RegisteredUsers)
};

// `section` is the CloudIngest object (null when absent: then Enable=false).
Configuration ParseConfiguration(const Json::Value& section, const OrthancDefaults& defaults);

}  // namespace CloudIngest
