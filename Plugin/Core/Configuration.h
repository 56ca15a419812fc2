#pragma once
// The CloudIngest section of Orthanc's configuration, validated once at start-up.
#include <json/value.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace CloudIngest {

enum class UploadMode { Instances, Zip, Nifti };
std::string ToString(UploadMode mode);

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

// Extension: the upload mode of the studies a rule matches (first match wins).
struct UploadModeRule {
  std::vector<std::string> modalities;   // empty: any
  std::vector<std::string> callingAets;  // empty: any
  UploadMode mode = UploadMode::Instances;
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
  unsigned concurrency = 4;
  RetrySettings retry;
  double timeout = 60;  // seconds, whole request
  double connectTimeout = 10;
  bool httpsVerifyPeers = true;
  std::string httpsCaCertificates;
  std::string httpProxy;
  std::vector<std::string> allowedUploadHosts;  // patterns, '*' wildcard
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
};

// Values taken from Orthanc's global configuration, used as defaults.
struct OrthancDefaults {
  double httpTimeout = 60;
  bool httpsVerifyPeers = true;
  std::string httpsCaCertificates;
  std::string httpProxy;
  std::string indexDirectory = "OrthancStorage";
};

// Message names the offending key ("CloudIngest.Concurrency: ...") and the fix.
class ConfigurationError : public std::runtime_error {
 public:
  explicit ConfigurationError(const std::string& what) : std::runtime_error(what) {}
};

// `section` is the CloudIngest object (null when absent: then Enable=false).
Configuration ParseConfiguration(const Json::Value& section, const OrthancDefaults& defaults);

}  // namespace CloudIngest
