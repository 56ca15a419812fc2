// Parsing and validation of the CloudIngest section (docs/REFERENCE.md, Configuration).
//
// Every problem stops start-up with ONE line of the form
//   CloudIngest.<Key>: <problem>; <fix>
// so that an administrator reading Orthanc's log knows what to change.
// Values are echoed (shortened, escaped) to help, except ClientSecret and
// HttpProxy (may hold credentials) and the userinfo/query of URLs.
//
// Extensions to the contract's keys (all optional):
//   Endpoints         {"NewOrder": {"Method": "GET", "Path": "/new-order"},
//                      "Upload": {"Method": "GET", "Path": "/upload"},
//                      "AddMetadata": {"Method": "PATCH", "Path": "/add-metadata"}}
//                     methods GET|POST|PUT|PATCH, paths start with '/', are
//                     appended to Url and carry no query; each part optional.
//   GroupWindow       seconds, default 60, > 0: the service's grouping window.
//   LateInstances     "Resend" (default) | "Ignore": instances arriving after a
//                     study was sent make it be sent again, or are ignored.
//   StudyWorkers      1..16, default 2: studies sent at the same time.
//   MaxStudyAttempts  1..1000, default 20: whole-study attempts before failing.
//   StudyRetryDelay   seconds, default 60: first delay between study attempts.
//   ChangesPollInterval seconds, default 30: how often /changes is read to
//                     move the cursor the start-up catch-up scan begins at.
//   Deidentify        {"Enable", "Profile": "Basic", "Keep", "Replace",
//                     "PseudonymKey", "RefuseModalities"} (ConfigurationDeidentify);
//                     also inside an UploadModeRules entry, over the global one.
// OrderMetadata entries may reuse a default order key (e.g. "patient_name"):
// they override it.
#include "Core/Configuration/Configuration.h"

#include <algorithm>

#include "Core/Configuration/ConfigurationDeidentify.h"
#include "Core/Configuration/ConfigurationOperations.h"
#include "Core/Configuration/ConfigurationReaders.h"
#include "Core/Configuration/ConfigurationSecurity.h"
#include "Core/Configuration/ConfigurationValues.h"

namespace CloudIngest {

namespace {

const std::vector<std::pair<std::string, UploadMode>> kUploadModes = {
    {"Instances", UploadMode::Instances},
    {"Zip", UploadMode::Zip},
    {"Nifti", UploadMode::Nifti},
    {"Auto", UploadMode::Auto}};

}  // namespace

std::string ToString(UploadMode mode) {
  for (const auto& [name, value] : kUploadModes) {
    if (value == mode) return name;
  }
  return "Instances";
}

namespace {

using namespace ConfigurationReaders;

const char* const kKnownKeys[] = {
    "Enable", "Url", "TokenUrl", "TokenMethod", "ClientId", "ClientSecret", "Scope", "AutoSend",
    "UploadMode", "Filters", "OrderMetadata", "Concurrency", "MaxAttempts", "RetryBaseDelay",
    "RetryMaxDelay", "Timeout", "ConnectTimeout", "HttpsVerifyPeers", "HttpsCACertificates",
    "HttpProxy", "AllowedUploadHosts", "AuditLog", "Database",
    // extensions
    "Endpoints", "GroupWindow", "LateInstances", "StudyWorkers", "MaxStudyAttempts",
    "StudyRetryDelay", "TemporaryDirectory", "UploadModeRules", "Dcm2niixPath", "NiftiFallback",
    "ChangesPollInterval", "MaxMemory", "MaxConcurrency", "AllowInsecureUploads", "DatabaseSchema",
    "NodeName", "LeaseDuration", "SendWindows", "MaxSendRate", "Webhooks", "QueueStalledAfter",
    "Permissions", "AuditKey", "AuditSyslog", "Deidentify", "Jobs", "Labels"};

const std::vector<std::string> kFilterKeys = {"Modalities", "CallingAets"};
const std::vector<std::string> kRuleKeys = {"Modalities", "CallingAets", "UploadMode",
                                            "Deidentify"};
const std::vector<std::string> kEndpointKeys = {"NewOrder", "Upload", "AddMetadata"};
const std::vector<std::string> kEndpointPartKeys = {"Method", "Path"};
const std::vector<std::string> kConstantKeys = {"Value"};

std::vector<std::string> KnownKeys() {
  return std::vector<std::string>(std::begin(kKnownKeys), std::end(kKnownKeys));
}

// ---- Filters

void ReadFilters(const Json::Value& section, Filters& filters) {
  const Json::Value* object = nullptr;
  if (!ReadObject(section, "Filters", "CloudIngest",
                  "{\"Modalities\": [\"CT\", \"MR\"], \"CallingAets\": [\"SCANNER1\"]}", object)) {
    return;
  }
  const std::string path = "CloudIngest.Filters";
  CheckKeys(*object, kFilterKeys, path);
  ReadStringArray(*object, "Modalities", path, "[\"CT\", \"MR\"]", filters.modalities,
                  CheckModality);
  ReadStringArray(*object, "CallingAets", path, "[\"SCANNER1\"]", filters.callingAets, CheckAet);
}

// A rule without UploadMode keeps the global one; it must then say Deidentify.
void ReadUploadModeRules(const Json::Value& section, const Configuration& config,
                         std::vector<UploadModeRule>& rules) {
  const Json::Value* v = Find(section, "UploadModeRules");
  if (v == nullptr) return;
  const std::string path = "CloudIngest.UploadModeRules";
  const std::string example = "[{\"Modalities\": [\"MR\"], \"UploadMode\": \"Zip\"}]";
  if (!v->isArray()) {
    Fail(path, "expected an array of rules, found " + Describe(*v), "write it as " + example);
  }
  for (Json::ArrayIndex i = 0; i < v->size(); i++) {
    const std::string here = path + "[" + std::to_string(i) + "]";
    const Json::Value& rule = (*v)[i];
    if (!rule.isObject()) {
      Fail(here, "expected an object, found " + Describe(rule), "write each rule as " + example);
    }
    CheckKeys(rule, kRuleKeys, here);
    UploadModeRule parsed;
    ReadStringArray(rule, "Modalities", here, "[\"CT\", \"MR\"]", parsed.modalities, CheckModality);
    ReadStringArray(rule, "CallingAets", here, "[\"SCANNER1\"]", parsed.callingAets, CheckAet);
    if (const Json::Value* deidentify = Find(rule, "Deidentify")) {
      parsed.deidentify = ReadDeidentify(*deidentify, Child(here, "Deidentify"), config.deidentify);
    }
    std::string mode;
    if (!ReadString(rule, "UploadMode", here, mode, "\"Zip\"")) {
      if (!parsed.deidentify) {
        Fail(Child(here, "UploadMode"), "missing",
             "set it to \"Instances\" or \"Zip\" (or give the rule a Deidentify)");
      }
      parsed.mode = config.uploadMode;
      rules.push_back(std::move(parsed));
      continue;
    }
    const auto known = std::find_if(kUploadModes.begin(), kUploadModes.end(),
                                    [&](const auto& m) { return Lower(m.first) == Lower(mode); });
    if (known != kUploadModes.end()) {
      parsed.mode = known->second;
    } else {
      Fail(Child(here, "UploadMode"),
           "expected \"Instances\", \"Zip\" or \"Nifti\", found " + Quote(mode),
           "use one of these");
    }
    rules.push_back(std::move(parsed));
  }
}

// ---- OrderMetadata

void ReadOrderMetadata(const Json::Value& section,
                       std::map<std::string, OrderMetadataValue>& metadata) {
  const Json::Value* object = nullptr;
  if (!ReadObject(section, "OrderMetadata", "CloudIngest",
                  "{\"performing_physician\": \"PerformingPhysicianName\", \"site\": {\"Value\": "
                  "\"site-7\"}}",
                  object)) {
    return;
  }
  for (const std::string& key : object->getMemberNames()) {
    const std::string path = Child("CloudIngest.OrderMetadata", key);
    if (key.empty()) {
      Fail("CloudIngest.OrderMetadata", "an entry has an empty key",
           "give every entry a name such as \"site\"");
    }
    const Json::Value& v = (*object)[key];
    OrderMetadataValue entry;
    if (v.isString()) {
      entry.tag = NormaliseTagReference(v.asString(), path);
    } else if (v.isObject()) {
      CheckKeys(v, kConstantKeys, path);
      const Json::Value* constant = Find(v, "Value");
      if (constant == nullptr) {
        Fail(path, "a constant needs \"Value\"", "write it as {\"Value\": \"site-7\"}");
      }
      if (!constant->isString() && !constant->isNumeric() && !constant->isBool()) {
        Fail(path + ".Value",
             "expected a string, a number or true/false, found " + Describe(*constant),
             "write it as {\"Value\": \"site-7\"}");
      }
      entry.isConstant = true;
      entry.constant = *constant;
    } else {
      Fail(path, "expected a DICOM tag name (string) or {\"Value\": ...}, found " + Describe(v),
           "write \"PerformingPhysicianName\" or {\"Value\": \"site-7\"}");
    }
    metadata[key] = std::move(entry);
  }
}

// ---- Endpoints

void ReadEndpoint(const Json::Value& endpoints, const char* key, Endpoint& endpoint) {
  const std::string example =
      "{\"Method\": \"" + endpoint.method + "\", \"Path\": \"" + endpoint.path + "\"}";
  const Json::Value* object = nullptr;
  if (!ReadObject(endpoints, key, "CloudIngest.Endpoints", example, object)) return;
  const std::string path = Child("CloudIngest.Endpoints", key);
  CheckKeys(*object, kEndpointPartKeys, path);

  std::string method;
  if (ReadString(*object, "Method", path, method, "\"" + endpoint.method + "\"")) {
    const std::string upper = Upper(method);
    if (upper != "GET" && upper != "POST" && upper != "PUT" && upper != "PATCH") {
      Fail(path + ".Method", "expected GET, POST, PUT or PATCH, found " + Quote(method),
           "use one of these");
    }
    endpoint.method = upper;
  }
  std::string target;
  if (ReadString(*object, "Path", path, target, "\"" + endpoint.path + "\"")) {
    const bool printable = std::all_of(target.begin(), target.end(),
                                       [](unsigned char c) { return c > 0x20 && c != 0x7f; });
    if (target.empty() || target[0] != '/' || !printable ||
        target.find_first_of("?#") != std::string::npos) {
      Fail(path + ".Path",
           "expected a path starting with '/' without spaces, query or fragment, found " +
               Quote(target),
           "write it as \"" + endpoint.path + "\" (it is appended to Url)");
    }
    endpoint.path = target;
  }
}

void ReadEndpoints(const Json::Value& section, Configuration& config) {
  const Json::Value* object = nullptr;
  if (!ReadObject(section, "Endpoints", "CloudIngest",
                  "{\"NewOrder\": {\"Method\": \"POST\", \"Path\": \"/new-order\"}}", object)) {
    return;
  }
  CheckKeys(*object, kEndpointKeys, "CloudIngest.Endpoints");
  ReadEndpoint(*object, "NewOrder", config.newOrder);
  ReadEndpoint(*object, "Upload", config.upload);
  ReadEndpoint(*object, "AddMetadata", config.addMetadata);
}

// ---- Paths

std::string JoinPath(const std::string& directory, const std::string& file) {
  if (directory.empty()) return file;
  return directory.back() == '/' ? directory + file : directory + "/" + file;
}

void ReadNonEmptyPath(const Json::Value& section, const char* key, const std::string& example,
                      std::string& out) {
  std::string value;
  if (!ReadString(section, key, "CloudIngest", value, example)) return;
  if (value.empty()) {
    Fail(Child("CloudIngest", key), "is empty", "remove it to use the default, or set a file path");
  }
  out = value;
}

void RequireNonEmpty(const Json::Value& section, const char* key, const std::string& value,
                     const std::string& what) {
  const std::string here = Child("CloudIngest", key);
  if (Find(section, key) == nullptr) {
    Fail(here, "missing (required when Enable is true)", "set it to " + what);
  }
  if (value.empty()) {
    Fail(here, "is empty (an unset ${VARIABLE} in Orthanc's configuration expands to \"\")",
         "export the environment variable it refers to before starting Orthanc, or set it to " +
             what);
  }
}

// Concurrency: 1..64 uploads at a time, or "auto": from 4 up to MaxConcurrency
// (4..64, default 32), growing with the measured round-trip time.
void ReadConcurrency(const Json::Value& section, Configuration& config) {
  const Json::Value* v = Find(section, "Concurrency");
  if (v != nullptr && v->isString()) {
    if (Lower(TrimBlanks(v->asString())) != "auto") {
      Fail("CloudIngest.Concurrency",
           "expected a positive integer (1..64) or \"auto\", found " + Describe(*v),
           "set it to a number such as 4, or \"auto\"");
    }
    config.concurrencyMode = ConcurrencyMode::Auto;
  } else {
    ReadInteger(section, "Concurrency", "CloudIngest", 1, 64, 4, config.concurrency);
  }
  if (ReadInteger(section, "MaxConcurrency", "CloudIngest", 4, 64, 32, config.maxConcurrency) &&
      config.concurrencyMode != ConcurrencyMode::Auto) {
    Fail("CloudIngest.MaxConcurrency", "is only used with \"Concurrency\": \"auto\"",
         "set Concurrency to \"auto\" or remove MaxConcurrency");
  }
}

}  // namespace

Configuration ParseConfiguration(const Json::Value& section, const OrthancDefaults& defaults) {
  Configuration config;
  config.timeout = defaults.httpTimeout > 0 ? defaults.httpTimeout : 60;
  config.httpsVerifyPeers = defaults.httpsVerifyPeers;
  config.httpsCaCertificates = defaults.httpsCaCertificates;
  config.httpProxy = defaults.httpProxy;
  config.auditLog = JoinPath(defaults.indexDirectory, "cloud-ingest-audit.jsonl");
  config.database = JoinPath(defaults.indexDirectory, "cloud-ingest.db");
  config.temporaryDirectory = JoinPath(defaults.indexDirectory, "cloud-ingest-tmp");
  config.cluster.nodeName = defaults.hostName + ":" + std::to_string(defaults.httpPort);
  config.cluster.stableAge = defaults.stableAge;
  config.webhookSpool = JoinPath(defaults.indexDirectory, "cloud-ingest-webhooks.db");

  if (section.isNull()) {
    config.enable = false;
    return config;
  }
  if (!section.isObject()) {
    Fail("CloudIngest", "expected an object, found " + Describe(section),
         "write \"CloudIngest\": {\"Url\": \"https://...\", \"ClientId\": \"...\", "
         "\"ClientSecret\": \"${CLOUD_INGEST_CLIENT_SECRET}\"}");
  }
  const std::string root = "CloudIngest";
  CheckKeys(section, KnownKeys(), root);

  ReadBool(section, "Enable", root, config.enable);

  const EmptyUrl urlsMayBeEmpty = config.enable ? EmptyUrl::Refused : EmptyUrl::Allowed;
  const bool hasUrl = Find(section, "Url") != nullptr;
  if (hasUrl) {
    config.url = ReadUrl(section, "Url", root, "https://ingest.example.com/api", urlsMayBeEmpty);
    while (!config.url.empty() && config.url.back() == '/') config.url.pop_back();
  }
  if (Find(section, "TokenUrl") != nullptr) {
    config.tokenUrl =
        ReadUrl(section, "TokenUrl", root, "https://ingest.example.com/auth/token", urlsMayBeEmpty);
  } else if (!config.url.empty()) {
    config.tokenUrl = config.url + "/auth/token";
  }

  std::string tokenMethod;
  if (ReadString(section, "TokenMethod", root, tokenMethod, "\"GET\"")) {
    config.tokenMethod = Upper(tokenMethod);
    if (config.tokenMethod != "GET" && config.tokenMethod != "POST") {
      Fail("CloudIngest.TokenMethod", "expected \"GET\" or \"POST\", found " + Quote(tokenMethod),
           "use one of these");
    }
  }

  ReadString(section, "ClientId", root, config.clientId, "\"orthanc-site-7\"");
  ReadString(section, "ClientSecret", root, config.clientSecret,
             "\"${CLOUD_INGEST_CLIENT_SECRET}\"", Echo::TypeOnly);
  ReadString(section, "Scope", root, config.scope, "\"upload\"");
  ReadBool(section, "AutoSend", root, config.autoSend);
  ReadChoice<UploadMode>(section, "UploadMode", kUploadModes, config.uploadMode);
  ReadFilters(section, config.filters);
  if (const Json::Value* deidentify = Find(section, "Deidentify")) {
    config.deidentify = ReadDeidentify(*deidentify, "CloudIngest.Deidentify", DeidentifySettings{});
  }
  ReadUploadModeRules(section, config, config.uploadModeRules);
  ReadOrderMetadata(section, config.orderMetadata);

  ReadConcurrency(section, config);
  unsigned maxMemoryMb = 256;
  ReadInteger(section, "MaxMemory", root, 16, 1u << 20, 256, maxMemoryMb);
  config.maxMemory = static_cast<uint64_t>(maxMemoryMb) << 20;
  ReadInteger(section, "MaxAttempts", root, 1, 1000, 8, config.retry.maxAttempts);
  ReadSeconds(section, "RetryBaseDelay", root, 3600, "1", config.retry.baseDelay);
  // Default ceiling follows a larger base delay instead of contradicting it.
  config.retry.maxDelay = std::max(config.retry.maxDelay, config.retry.baseDelay);
  if (ReadSeconds(section, "RetryMaxDelay", root, 86400, "30", config.retry.maxDelay) &&
      config.retry.maxDelay < config.retry.baseDelay) {
    Fail("CloudIngest.RetryMaxDelay",
         "must be at least RetryBaseDelay (" + NumberText(config.retry.baseDelay) + "), found " +
             NumberText(config.retry.maxDelay),
         "raise RetryMaxDelay or lower RetryBaseDelay");
  }
  ReadSeconds(section, "Timeout", root, 86400, "60", config.timeout);
  ReadSeconds(section, "ConnectTimeout", root, 3600, "10", config.connectTimeout);

  ReadBool(section, "HttpsVerifyPeers", root, config.httpsVerifyPeers);
  ReadString(section, "HttpsCACertificates", root, config.httpsCaCertificates,
             "\"/etc/ssl/certs/ca-certificates.crt\"");
  // A proxy URL may carry credentials: never echoed.
  ReadString(section, "HttpProxy", root, config.httpProxy, "\"http://proxy.example.com:3128\"",
             Echo::TypeOnly);

  if (!ReadStringArray(section, "AllowedUploadHosts", root,
                       "[\"uploads.example.com\", \"*.s3.amazonaws.com\"]",
                       config.allowedUploadHosts, CheckHostPattern)) {
    if (!config.url.empty()) config.allowedUploadHosts = {HostOfUrl(config.url)};
  } else if (config.allowedUploadHosts.empty()) {
    Fail("CloudIngest.AllowedUploadHosts", "is empty, so every upload URL would be refused",
         "list the host of the presigned URLs such as \"uploads.example.com\", or remove the key "
         "to allow the host of Url");
  }

  ReadBool(section, "AllowInsecureUploads", root, config.allowInsecureUploads);

  ReadNonEmptyPath(section, "AuditLog", "\"/var/lib/orthanc/cloud-ingest-audit.jsonl\"",
                   config.auditLog);
  ReadNonEmptyPath(section, "Database", "\"/var/lib/orthanc/cloud-ingest.db\"", config.database);
  ReadNonEmptyPath(section, "TemporaryDirectory", "\"/var/lib/orthanc/cloud-ingest-tmp\"",
                   config.temporaryDirectory);
  ReadNonEmptyPath(section, "Dcm2niixPath", "\"/usr/bin/dcm2niix\"", config.dcm2niixPath);
  ReadChoice<bool>(section, "NiftiFallback", {{"Dicom", true}, {"Skip", false}},
                   config.niftiFallbackToDicom);

  ReadEndpoints(section, config);
  ReadSeconds(section, "GroupWindow", root, 3600, "60", config.groupWindow);
  ReadChoice<LateInstancePolicy>(
      section, "LateInstances",
      {{"Resend", LateInstancePolicy::ResendStudy}, {"Ignore", LateInstancePolicy::Ignore}},
      config.lateInstances);
  ReadInteger(section, "StudyWorkers", root, 1, 16, 2, config.studyWorkers);
  ReadInteger(section, "MaxStudyAttempts", root, 1, 1000, 20, config.retry.maxStudyAttempts);
  ReadSeconds(section, "StudyRetryDelay", root, 86400, "60", config.retry.studyRetryDelay);
  ReadSeconds(section, "ChangesPollInterval", root, 3600, "30", config.changesPollInterval);
  ReadClusterSettings(section, config.database, config.cluster);
  UseNodeFileNames(section, defaults.indexDirectory, config);
  ReadOperations(section, config);
  ReadSecurity(section, defaults, config);
  ReadLabels(section, config.labels);

  if (config.enable) {
    RequireNonEmpty(section, "Url", config.url,
                    "the ingestion API's base URL, e.g. "
                    "\"https://ingest.example.com/api\"");
    RequireNonEmpty(section, "ClientId", config.clientId, "the client id given by the provider");
    RequireNonEmpty(section, "ClientSecret", config.clientSecret,
                    "the client secret, preferably \"${CLOUD_INGEST_CLIENT_SECRET}\" (read from "
                    "the environment)");
    RequirePseudonymKey(config.deidentify, "CloudIngest.Deidentify");
    for (size_t i = 0; i < config.uploadModeRules.size(); ++i) {
      if (config.uploadModeRules[i].deidentify) {
        RequirePseudonymKey(*config.uploadModeRules[i].deidentify,
                            "CloudIngest.UploadModeRules[" + std::to_string(i) + "].Deidentify");
      }
    }
    CheckOrderMetadataAgainstDeidentify(config);
  }
  return config;
}

}  // namespace CloudIngest