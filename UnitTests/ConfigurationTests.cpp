// ParseConfiguration: defaults, every key, and one-line errors that name the key.
#include <gtest/gtest.h>
#include <json/reader.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "Core/Configuration/Configuration.h"
#include "Fakes/TestJson.h"

namespace {

using CloudIngest::Testing::ParseJson;

using CloudIngest::ConcurrencyMode;
using CloudIngest::ConfigurationError;
using CloudIngest::LateInstancePolicy;
using CloudIngest::OrthancDefaults;
using CloudIngest::ParseConfiguration;
using CloudIngest::UploadMode;

const char* const kSecret = "s3cr3t-Hunter2-DoNotPrint";

Json::Value Minimal() {
  Json::Value section(Json::objectValue);
  section["Url"] = "https://ingest.example.com/api/";
  section["ClientId"] = "site-7";
  section["ClientSecret"] = kSecret;
  return section;
}

// Minimal() plus the members of `json`.
Json::Value With(const std::string& json) {
  Json::Value section = Minimal();
  const Json::Value extra = ParseJson(json);
  for (const std::string& key : extra.getMemberNames()) section[key] = extra[key];
  return section;
}

OrthancDefaults Defaults() {
  OrthancDefaults defaults;
  defaults.httpTimeout = 45;
  defaults.httpsVerifyPeers = false;
  defaults.httpsCaCertificates = "/etc/orthanc/ca.pem";
  defaults.httpProxy = "http://proxy.local:3128";
  defaults.indexDirectory = "/var/lib/orthanc/db";
  return defaults;
}

std::string ErrorFor(const Json::Value& section) {
  try {
    ParseConfiguration(section, Defaults());
  } catch (const ConfigurationError& e) {
    return e.what();
  }
  return "";
}

// The message names the key first, is one line, has a fix, never shows the secret.
::testing::AssertionResult IsErrorFor(const std::string& message, const std::string& key) {
  const std::string prefix = "CloudIngest." + key + ": ";
  if (message.empty()) return ::testing::AssertionFailure() << "no ConfigurationError thrown";
  if (message.compare(0, prefix.size(), prefix) != 0) {
    return ::testing::AssertionFailure()
           << "message does not start with '" << prefix << "': " << message;
  }
  if (message.find_first_of("\r\n") != std::string::npos) {
    return ::testing::AssertionFailure() << "message is not one line: " << message;
  }
  if (message.find("; ", prefix.size()) == std::string::npos) {
    return ::testing::AssertionFailure() << "message has no '; <fix>': " << message;
  }
  if (message.find(kSecret) != std::string::npos || message.find("Hunter2") != std::string::npos) {
    return ::testing::AssertionFailure() << "message shows the secret: " << message;
  }
  return ::testing::AssertionSuccess();
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(Configuration, ToStringNamesModes) {
  EXPECT_EQ("Instances", CloudIngest::ToString(UploadMode::Instances));
  EXPECT_EQ("Zip", CloudIngest::ToString(UploadMode::Zip));
}

TEST(Configuration, AbsentSectionDisablesThePlugin) {
  const auto config = ParseConfiguration(Json::Value(), Defaults());
  EXPECT_FALSE(config.enable);
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest.db", config.database);
}

TEST(Configuration, SectionThatIsNotAnObjectIsRejected) {
  for (const char* json : {"\"on\"", "[1]", "true", "3"}) {
    const std::string message = ErrorFor(ParseJson(json));
    EXPECT_EQ(0u, message.find("CloudIngest: expected an object, found ")) << message;
    EXPECT_EQ(std::string::npos, message.find('\n'));
  }
}

TEST(Configuration, MinimalSectionGetsDefaults) {
  const auto c = ParseConfiguration(Minimal(), Defaults());
  EXPECT_TRUE(c.enable);
  EXPECT_EQ("https://ingest.example.com/api", c.url);  // trailing '/' stripped
  EXPECT_EQ("https://ingest.example.com/api/auth/token", c.tokenUrl);
  EXPECT_EQ("GET", c.tokenMethod);
  EXPECT_EQ("site-7", c.clientId);
  EXPECT_EQ(kSecret, c.clientSecret);
  EXPECT_EQ("upload", c.scope);
  EXPECT_TRUE(c.autoSend);
  EXPECT_EQ(UploadMode::Instances, c.uploadMode);
  EXPECT_TRUE(c.filters.modalities.empty());
  EXPECT_TRUE(c.filters.callingAets.empty());
  EXPECT_TRUE(c.orderMetadata.empty());
  EXPECT_EQ(4u, c.concurrency);
  EXPECT_EQ(256ull << 20, c.maxMemory);
  EXPECT_EQ(8u, c.retry.maxAttempts);
  EXPECT_DOUBLE_EQ(1.0, c.retry.baseDelay);
  EXPECT_DOUBLE_EQ(30.0, c.retry.maxDelay);
  EXPECT_EQ(20u, c.retry.maxStudyAttempts);
  EXPECT_DOUBLE_EQ(60.0, c.retry.studyRetryDelay);
  EXPECT_DOUBLE_EQ(30.0, c.changesPollInterval);
  EXPECT_DOUBLE_EQ(45.0, c.timeout);  // Orthanc's HttpTimeout
  EXPECT_DOUBLE_EQ(10.0, c.connectTimeout);
  EXPECT_FALSE(c.httpsVerifyPeers);  // Orthanc's global values
  EXPECT_EQ("/etc/orthanc/ca.pem", c.httpsCaCertificates);
  EXPECT_EQ("http://proxy.local:3128", c.httpProxy);
  EXPECT_EQ(std::vector<std::string>{"ingest.example.com"}, c.allowedUploadHosts);
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest-audit.jsonl", c.auditLog);
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest.db", c.database);
  EXPECT_EQ("GET", c.newOrder.method);
  EXPECT_EQ("/new-order", c.newOrder.path);
  EXPECT_EQ("GET", c.upload.method);
  EXPECT_EQ("/upload", c.upload.path);
  EXPECT_EQ("PATCH", c.addMetadata.method);
  EXPECT_EQ("/add-metadata", c.addMetadata.path);
  EXPECT_DOUBLE_EQ(60.0, c.groupWindow);
  EXPECT_EQ(LateInstancePolicy::ResendStudy, c.lateInstances);
  EXPECT_EQ(2u, c.studyWorkers);
}

TEST(Configuration, DefaultsFollowOrthanc) {
  OrthancDefaults defaults;
  defaults.httpTimeout = 0;  // Orthanc's "no timeout": keep a bounded one
  defaults.httpsVerifyPeers = true;
  defaults.indexDirectory = "/data/orthanc/";
  const auto c = ParseConfiguration(Minimal(), defaults);
  EXPECT_DOUBLE_EQ(60.0, c.timeout);
  EXPECT_TRUE(c.httpsVerifyPeers);
  EXPECT_EQ("/data/orthanc/cloud-ingest.db", c.database);
  EXPECT_EQ("/data/orthanc/cloud-ingest-audit.jsonl", c.auditLog);
}

TEST(Configuration, EveryKeyIsParsed) {
  const Json::Value section = ParseJson(R"({
    "Enable": true,
    "Url": "http://127.0.0.1:8090",
    "TokenUrl": "HTTPS://login.example.com/oauth2/token",
    "TokenMethod": "post",
    "ClientId": "orthanc-7",
    "ClientSecret": "s3cr3t-Hunter2-DoNotPrint",
    "Scope": "upload read",
    "AutoSend": false,
    "UploadMode": "Zip",
    "Filters": {"Modalities": ["ct", " mr "], "CallingAets": ["SCANNER1 ", "PACS"]},
    "OrderMetadata": {
      "performing_physician": "PerformingPhysicianName",
      "private": "00091001",
      "by_number": "0008,103E",
      "site": {"Value": "site-7"},
      "priority": {"Value": 2},
      "urgent": {"Value": true}
    },
    "Concurrency": 16,
    "MaxAttempts": 3,
    "RetryBaseDelay": 0.5,
    "RetryMaxDelay": 12,
    "Timeout": 120,
    "ConnectTimeout": 2.5,
    "HttpsVerifyPeers": true,
    "HttpsCACertificates": "/etc/ssl/certs/ca-certificates.crt",
    "HttpProxy": "",
    "AllowedUploadHosts": ["Uploads.Example.com", "*.s3.amazonaws.com", "[::1]", "fe80::1"],
    "AuditLog": "/tmp/audit.jsonl",
    "Database": "/tmp/state.db",
    "Endpoints": {
      "NewOrder": {"Method": "post", "Path": "/v2/orders"},
      "Upload": {"Path": "/v2/presign"},
      "AddMetadata": {"Method": "PUT"}
    },
    "GroupWindow": 30,
    "LateInstances": "ignore",
    "StudyWorkers": 4,
    "MaxStudyAttempts": 5,
    "StudyRetryDelay": 15,
    "ChangesPollInterval": 5,
    "MaxMemory": 64
  })");
  const auto c = ParseConfiguration(section, Defaults());
  EXPECT_TRUE(c.enable);
  EXPECT_EQ("http://127.0.0.1:8090", c.url);
  EXPECT_EQ("https://login.example.com/oauth2/token", c.tokenUrl);
  EXPECT_EQ("POST", c.tokenMethod);
  EXPECT_EQ("orthanc-7", c.clientId);
  EXPECT_EQ(kSecret, c.clientSecret);
  EXPECT_EQ("upload read", c.scope);
  EXPECT_FALSE(c.autoSend);
  EXPECT_EQ(UploadMode::Zip, c.uploadMode);
  EXPECT_EQ((std::vector<std::string>{"CT", "MR"}), c.filters.modalities);
  EXPECT_EQ((std::vector<std::string>{"SCANNER1", "PACS"}), c.filters.callingAets);

  ASSERT_EQ(6u, c.orderMetadata.size());
  EXPECT_FALSE(c.orderMetadata.at("performing_physician").isConstant);
  EXPECT_EQ("PerformingPhysicianName", c.orderMetadata.at("performing_physician").tag);
  EXPECT_EQ("0009,1001", c.orderMetadata.at("private").tag);
  EXPECT_EQ("0008,103e", c.orderMetadata.at("by_number").tag);
  EXPECT_TRUE(c.orderMetadata.at("site").isConstant);
  EXPECT_EQ(Json::Value("site-7"), c.orderMetadata.at("site").constant);
  EXPECT_EQ(Json::Value(2), c.orderMetadata.at("priority").constant);
  EXPECT_EQ(Json::Value(true), c.orderMetadata.at("urgent").constant);

  EXPECT_EQ(16u, c.concurrency);
  EXPECT_EQ(3u, c.retry.maxAttempts);
  EXPECT_DOUBLE_EQ(0.5, c.retry.baseDelay);
  EXPECT_DOUBLE_EQ(12.0, c.retry.maxDelay);
  EXPECT_DOUBLE_EQ(120.0, c.timeout);
  EXPECT_DOUBLE_EQ(2.5, c.connectTimeout);
  EXPECT_TRUE(c.httpsVerifyPeers);
  EXPECT_EQ("/etc/ssl/certs/ca-certificates.crt", c.httpsCaCertificates);
  EXPECT_EQ("", c.httpProxy);  // explicitly no proxy, overriding Orthanc's
  EXPECT_EQ(
      (std::vector<std::string>{"uploads.example.com", "*.s3.amazonaws.com", "::1", "fe80::1"}),
      c.allowedUploadHosts);
  EXPECT_EQ("/tmp/audit.jsonl", c.auditLog);
  EXPECT_EQ("/tmp/state.db", c.database);
  EXPECT_EQ("POST", c.newOrder.method);
  EXPECT_EQ("/v2/orders", c.newOrder.path);
  EXPECT_EQ("GET", c.upload.method);  // only Path given
  EXPECT_EQ("/v2/presign", c.upload.path);
  EXPECT_EQ("PUT", c.addMetadata.method);
  EXPECT_EQ("/add-metadata", c.addMetadata.path);  // only Method given
  EXPECT_DOUBLE_EQ(30.0, c.groupWindow);
  EXPECT_EQ(LateInstancePolicy::Ignore, c.lateInstances);
  EXPECT_EQ(4u, c.studyWorkers);
  EXPECT_EQ(5u, c.retry.maxStudyAttempts);
  EXPECT_DOUBLE_EQ(15.0, c.retry.studyRetryDelay);
  EXPECT_DOUBLE_EQ(5.0, c.changesPollInterval);
  EXPECT_EQ(64ull << 20, c.maxMemory);
}

TEST(Configuration, AllowedUploadHostsDefaultsToTheHostOfUrl) {
  EXPECT_EQ(
      std::vector<std::string>{"ingest.example.com"},
      ParseConfiguration(With(R"({"Url": "HTTPS://Ingest.Example.COM:8443/api"})"), Defaults())
          .allowedUploadHosts);
  EXPECT_EQ(std::vector<std::string>{"127.0.0.1"},
            ParseConfiguration(With(R"({"Url": "http://127.0.0.1:9000"})"), Defaults())
                .allowedUploadHosts);
  EXPECT_EQ(
      std::vector<std::string>{"::1"},
      ParseConfiguration(With(R"({"Url": "http://[::1]:9000/x"})"), Defaults()).allowedUploadHosts);
}

TEST(Configuration, UrlSchemeIsStoredInLowerCase) {
  const auto c =
      ParseConfiguration(With(R"({"Url": "HTTPS://Ingest.Example.COM:8443/api//"})"), Defaults());
  EXPECT_EQ("https://Ingest.Example.COM:8443/api", c.url);
  EXPECT_EQ("https://Ingest.Example.COM:8443/api/auth/token", c.tokenUrl);
}

TEST(Configuration, IntegralNumbersMayBeWrittenAsDoubles) {
  const auto c = ParseConfiguration(With(R"({"Concurrency": 8.0, "Timeout": 30})"), Defaults());
  EXPECT_EQ(8u, c.concurrency);
  EXPECT_DOUBLE_EQ(30.0, c.timeout);
}

TEST(Configuration, RetryMaxDelayDefaultFollowsALargerBaseDelay) {
  const auto c = ParseConfiguration(With(R"({"RetryBaseDelay": 45})"), Defaults());
  EXPECT_DOUBLE_EQ(45.0, c.retry.baseDelay);
  EXPECT_DOUBLE_EQ(45.0, c.retry.maxDelay);
}

TEST(Configuration, ConcurrencyErrorReadsAsDocumented) {
  EXPECT_EQ(
      "CloudIngest.Concurrency: expected a positive integer (1..64) or \"auto\", found \"four\"; "
      "set it to a number such as 4, or \"auto\"",
      ErrorFor(With(R"({"Concurrency": "four"})")));
}

TEST(Configuration, ConcurrencyAutoGrowsUpToMaxConcurrency) {
  const auto fixed = ParseConfiguration(With(R"({"Concurrency": 6})"), Defaults());
  EXPECT_EQ(ConcurrencyMode::Fixed, fixed.concurrencyMode);
  EXPECT_EQ(6u, fixed.concurrency);
  const auto automatic = ParseConfiguration(With(R"({"Concurrency": " Auto "})"), Defaults());
  EXPECT_EQ(ConcurrencyMode::Auto, automatic.concurrencyMode);
  EXPECT_EQ(4u, automatic.concurrency);  // the fewest
  EXPECT_EQ(32u, automatic.maxConcurrency);
  const auto capped =
      ParseConfiguration(With(R"({"Concurrency": "auto", "MaxConcurrency": 12})"), Defaults());
  EXPECT_EQ(12u, capped.maxConcurrency);
  EXPECT_EQ(
      "CloudIngest.MaxConcurrency: is only used with \"Concurrency\": \"auto\"; set Concurrency "
      "to \"auto\" or remove MaxConcurrency",
      ErrorFor(With(R"({"Concurrency": 8, "MaxConcurrency": 12})")));
  EXPECT_TRUE(IsErrorFor(ErrorFor(With(R"({"Concurrency": "auto", "MaxConcurrency": 2})")),
                         "MaxConcurrency"));
  EXPECT_TRUE(IsErrorFor(ErrorFor(With(R"({"Concurrency": "auto", "MaxConcurrency": 65})")),
                         "MaxConcurrency"));
}

TEST(Configuration, UploadModeAutoIsAcceptedAlsoInRules) {
  const auto c = ParseConfiguration(With(R"({"UploadMode": "auto",
               "UploadModeRules": [{"Modalities": ["MR"], "UploadMode": "Auto"}]})"),
                                    Defaults());
  EXPECT_EQ(UploadMode::Auto, c.uploadMode);
  ASSERT_EQ(1u, c.uploadModeRules.size());
  EXPECT_EQ(UploadMode::Auto, c.uploadModeRules[0].mode);
  EXPECT_EQ("Auto", ToString(UploadMode::Auto));
}

TEST(Configuration, UnknownKeySuggestsTheClosestKnownKey) {
  Json::Value section = Minimal();
  section["ClientSecet"] = "whatever";
  EXPECT_EQ("CloudIngest.ClientSecet: unknown key; did you mean 'ClientSecret'?",
            ErrorFor(section));

  section = Minimal();
  section["concurrency"] = 4;  // keys are case-sensitive
  EXPECT_EQ("CloudIngest.concurrency: unknown key; did you mean 'Concurrency'?", ErrorFor(section));

  section = Minimal();
  section["AllowedUploadHost"] = Json::arrayValue;
  EXPECT_TRUE(Contains(ErrorFor(section), "did you mean 'AllowedUploadHosts'?"));
}

TEST(Configuration, UnknownKeyFarFromAnyKnownKeyListsTheKnownKeys) {
  Json::Value section = Minimal();
  section["Frobnicate"] = 1;
  const std::string message = ErrorFor(section);
  EXPECT_TRUE(IsErrorFor(message, "Frobnicate"));
  EXPECT_FALSE(Contains(message, "did you mean"));
  EXPECT_TRUE(Contains(message, "known keys are Enable, Url,")) << message;
}

TEST(Configuration, UnknownKeyWithControlCharactersStaysOnOneLine) {
  Json::Value section = Minimal();
  section["Bad\nKey\r"] = 1;
  const std::string message = ErrorFor(section);
  EXPECT_EQ(0u, message.find("CloudIngest.Bad\\x0aKey\\x0d: unknown key")) << message;
  EXPECT_EQ(std::string::npos, message.find_first_of("\r\n"));
}

struct WrongType {
  const char* key;
  const char* json;      // the section's extra members
  const char* fragment;  // expected in the message
};

// Shown by gtest as the case's value instead of the struct's bytes.
void PrintTo(const WrongType& p, std::ostream* os) {
  *os << p.json;
}

// Readable test names: the key, then the case's index ("MaxMemory_20";
// "AllowedUploadHosts[1]" at 28 is "AllowedUploadHosts_1__28").
std::string WrongTypeName(const ::testing::TestParamInfo<WrongType>& info) {
  std::string name = info.param.key;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name + "_" + std::to_string(info.index);
}

class ConfigurationWrongType : public ::testing::TestWithParam<WrongType> {};

TEST_P(ConfigurationWrongType, NamesKeyExpectedTypeAndWhatWasFound) {
  const WrongType& p = GetParam();
  const std::string message = ErrorFor(With(p.json));
  EXPECT_TRUE(IsErrorFor(message, p.key));
  EXPECT_TRUE(Contains(message, p.fragment)) << message;
}

INSTANTIATE_TEST_SUITE_P(
    EveryKeyType, ConfigurationWrongType,
    ::testing::Values(
        WrongType{"Enable", R"({"Enable": "true"})", "expected true or false, found \"true\""},
        WrongType{"AutoSend", R"({"AutoSend": 1})", "expected true or false, found 1"},
        WrongType{"HttpsVerifyPeers", R"({"HttpsVerifyPeers": null})",
                  "expected true or false, found null"},
        WrongType{"Url", R"({"Url": 42})", "expected a string, found a number"},
        WrongType{"TokenUrl", R"({"TokenUrl": false})", "expected a string, found true/false"},
        WrongType{"TokenMethod", R"({"TokenMethod": 1})", "expected a string, found 1"},
        WrongType{"ClientId", R"({"ClientId": 12})", "expected a string, found 12"},
        WrongType{"Scope", R"({"Scope": ["upload"]})", "expected a string, found an array"},
        WrongType{"UploadMode", R"({"UploadMode": 3})", "expected a string, found 3"},
        WrongType{"HttpsCACertificates", R"({"HttpsCACertificates": true})",
                  "expected a string, found true"},
        WrongType{"HttpProxy", R"({"HttpProxy": 31280})", "expected a string, found a number"},
        WrongType{"AuditLog", R"({"AuditLog": {}})", "expected a string, found an object"},
        WrongType{"Database", R"({"Database": 2})", "expected a string, found 2"},
        WrongType{"LateInstances", R"({"LateInstances": false})", "expected a string, found false"},
        WrongType{"Concurrency", R"({"Concurrency": "4"})",
                  "expected a positive integer (1..64) or \"auto\", found \"4\""},
        WrongType{"MaxAttempts", R"({"MaxAttempts": true})", "expected a positive integer"},
        WrongType{"RetryBaseDelay", R"({"RetryBaseDelay": "1"})",
                  "expected a number of seconds greater than 0"},
        WrongType{"RetryMaxDelay", R"({"RetryMaxDelay": []})", "found an array"},
        WrongType{"Timeout", R"({"Timeout": "60s"})", "found \"60s\""},
        WrongType{"ConnectTimeout", R"({"ConnectTimeout": null})", "found null"},
        WrongType{"GroupWindow", R"({"GroupWindow": "x"})", "expected a number of seconds"},
        WrongType{"StudyWorkers", R"({"StudyWorkers": 2.5})",
                  "expected a positive integer (1..16)"},
        WrongType{"MaxStudyAttempts", R"({"MaxStudyAttempts": {}})", "found an object"},
        WrongType{"StudyRetryDelay", R"({"StudyRetryDelay": [60]})", "found an array"},
        WrongType{"Filters", R"({"Filters": ["CT"]})", "expected an object, found an array"},
        WrongType{"OrderMetadata", R"({"OrderMetadata": "PatientName"})",
                  "expected an object, found \"PatientName\""},
        WrongType{"Endpoints", R"({"Endpoints": 3})", "expected an object, found 3"},
        WrongType{"AllowedUploadHosts", R"({"AllowedUploadHosts": "uploads.example.com"})",
                  "expected an array of strings, found \"uploads.example.com\""},
        WrongType{"AllowedUploadHosts[1]", R"({"AllowedUploadHosts": ["a.example.com", 7]})",
                  "expected a string, found 7"}),
    WrongTypeName);

class ConfigurationOutOfRange : public ::testing::TestWithParam<WrongType> {};

TEST_P(ConfigurationOutOfRange, IsRejected) {
  const WrongType& p = GetParam();
  const std::string message = ErrorFor(With(p.json));
  EXPECT_TRUE(IsErrorFor(message, p.key));
  EXPECT_TRUE(Contains(message, p.fragment)) << message;
}

INSTANTIATE_TEST_SUITE_P(
    Numbers, ConfigurationOutOfRange,
    ::testing::Values(
        WrongType{"Concurrency", R"({"Concurrency": 0})", "(1..64), found 0"},
        WrongType{"Concurrency", R"({"Concurrency": 65})", "(1..64), found 65"},
        WrongType{"Concurrency", R"({"Concurrency": 4.5})", "found 4.5"},
        WrongType{"Concurrency", R"({"Concurrency": -3})", "found -3"},
        WrongType{"Concurrency", R"({"Concurrency": 1e300})", "found 1e+300"},
        WrongType{"Concurrency", R"({"Concurrency": 18446744073709551615})", "(1..64)"},
        WrongType{"MaxAttempts", R"({"MaxAttempts": 0})", "found 0"},
        WrongType{"RetryBaseDelay", R"({"RetryBaseDelay": 0})", "greater than 0"},
        WrongType{"RetryBaseDelay", R"({"RetryBaseDelay": -1.5})", "found -1.5"},
        WrongType{"RetryMaxDelay", R"({"RetryBaseDelay": 5, "RetryMaxDelay": 2})",
                  "must be at least RetryBaseDelay (5), found 2"},
        WrongType{"Timeout", R"({"Timeout": 0})", "found 0"},
        WrongType{"ConnectTimeout", R"({"ConnectTimeout": -5})", "found -5"},
        WrongType{"GroupWindow", R"({"GroupWindow": 0})", "found 0"},
        WrongType{"StudyWorkers", R"({"StudyWorkers": 17})", "(1..16), found 17"},
        WrongType{"StudyWorkers", R"({"StudyWorkers": 0})", "found 0"},
        WrongType{"MaxStudyAttempts", R"({"MaxStudyAttempts": 0})", "found 0"},
        WrongType{"StudyRetryDelay", R"({"StudyRetryDelay": 1e9})", "at most 86400"},
        WrongType{"ChangesPollInterval", R"({"ChangesPollInterval": 0})", "greater than 0"},
        WrongType{"ChangesPollInterval", R"({"ChangesPollInterval": 7200})", "at most 3600"},
        WrongType{"MaxMemory", R"({"MaxMemory": 8})", "(16..1048576), found 8"},
        WrongType{"MaxMemory", R"({"MaxMemory": "256 MB"})", "found \"256 MB\""}),
    WrongTypeName);

TEST(Configuration, LongValuesAreShortenedInMessages) {
  Json::Value section = Minimal();
  section["Concurrency"] = std::string(500, 'x');
  const std::string message = ErrorFor(section);
  EXPECT_TRUE(IsErrorFor(message, "Concurrency"));
  EXPECT_LT(message.size(), 200u) << message;
  EXPECT_TRUE(Contains(message, "...\""));
}

TEST(Configuration, MissingRequiredKeysAreNamed) {
  for (const char* key : {"Url", "ClientId", "ClientSecret"}) {
    Json::Value section = Minimal();
    section.removeMember(key);
    const std::string message = ErrorFor(section);
    EXPECT_TRUE(IsErrorFor(message, key));
    EXPECT_TRUE(Contains(message, "missing (required when Enable is true)")) << message;
  }
}

TEST(Configuration, EmptyRequiredValuesPointAtUnsetEnvironmentVariables) {
  for (const char* key : {"Url", "ClientId", "ClientSecret"}) {
    Json::Value section = Minimal();
    section[key] = "";  // what Orthanc makes of an unset ${VARIABLE}
    const std::string message = ErrorFor(section);
    EXPECT_TRUE(IsErrorFor(message, key));
    EXPECT_TRUE(Contains(message, "is empty")) << message;
    EXPECT_TRUE(Contains(message, "environment variable")) << message;
  }
}

TEST(Configuration, BadEnumsListTheAllowedValues) {
  std::string message = ErrorFor(With(R"({"UploadMode": "Dicomweb"})"));
  EXPECT_TRUE(IsErrorFor(message, "UploadMode"));
  EXPECT_TRUE(Contains(
      message, "expected \"Instances\" or \"Zip\" or \"Nifti\" or \"Auto\", found \"Dicomweb\""))
      << message;

  message = ErrorFor(With(R"({"TokenMethod": "PUT"})"));
  EXPECT_TRUE(IsErrorFor(message, "TokenMethod"));
  EXPECT_TRUE(Contains(message, "expected \"GET\" or \"POST\", found \"PUT\"")) << message;

  message = ErrorFor(With(R"({"LateInstances": "Later"})"));
  EXPECT_TRUE(IsErrorFor(message, "LateInstances"));
  EXPECT_TRUE(Contains(message, "\"Resend\" or \"Ignore\"")) << message;

  message = ErrorFor(With(R"({"Jobs": "Some"})"));
  EXPECT_TRUE(IsErrorFor(message, "Jobs"));
  EXPECT_TRUE(Contains(message,
                       "expected \"Auto\" or \"All\" or \"Requested\" or \"None\", found \"Some\""))
      << message;
  EXPECT_TRUE(IsErrorFor(ErrorFor(With(R"({"Jobs": true})")), "Jobs"));
}

// Jobs: which sends show in Orthanc's /jobs; Auto unless set (any letter case).
TEST(Configuration, JobsDefaultsToAuto) {
  EXPECT_EQ(CloudIngest::SendJobsPolicy::Auto, ParseConfiguration(Minimal(), Defaults()).jobs);
  const std::pair<const char*, CloudIngest::SendJobsPolicy> cases[] = {
      {"all", CloudIngest::SendJobsPolicy::All},
      {"Requested", CloudIngest::SendJobsPolicy::Requested},
      {"NONE", CloudIngest::SendJobsPolicy::None},
      {"Auto", CloudIngest::SendJobsPolicy::Auto}};
  for (const auto& [text, policy] : cases) {
    EXPECT_EQ(
        policy,
        ParseConfiguration(With(std::string(R"({"Jobs": ")") + text + "\"}"), Defaults()).jobs)
        << text;
  }
}

TEST(Configuration, EnumsAreCaseInsensitive) {
  const auto c = ParseConfiguration(
      With(R"({"UploadMode": "zip", "TokenMethod": "Post", "LateInstances": "RESEND"})"),
      Defaults());
  EXPECT_EQ(UploadMode::Zip, c.uploadMode);
  EXPECT_EQ("POST", c.tokenMethod);
  EXPECT_EQ(LateInstancePolicy::ResendStudy, c.lateInstances);
}

TEST(Configuration, EmptyAllowedUploadHostsIsRejected) {
  const std::string message = ErrorFor(With(R"({"AllowedUploadHosts": []})"));
  EXPECT_TRUE(IsErrorFor(message, "AllowedUploadHosts"));
  EXPECT_TRUE(Contains(message, "every upload URL would be refused")) << message;
}

TEST(Configuration, AllowInsecureUploadsIsOffByDefaultAndABool) {
  EXPECT_FALSE(ParseConfiguration(Minimal(), Defaults()).allowInsecureUploads);
  EXPECT_TRUE(ParseConfiguration(With(R"({"AllowInsecureUploads": true})"), Defaults())
                  .allowInsecureUploads);
  EXPECT_FALSE(ParseConfiguration(With(R"({"AllowInsecureUploads": false})"), Defaults())
                   .allowInsecureUploads);
  const std::string message = ErrorFor(With(R"({"AllowInsecureUploads": "yes"})"));
  EXPECT_TRUE(IsErrorFor(message, "AllowInsecureUploads")) << message;
  EXPECT_TRUE(Contains(message, "expected true or false, found \"yes\"")) << message;
  const std::string typo = ErrorFor(With(R"({"AllowInsecureUpload": true})"));
  EXPECT_TRUE(Contains(typo, "did you mean 'AllowInsecureUploads'")) << typo;
}

TEST(Configuration, AllowedUploadHostsMustBeHostNames) {
  struct Case {
    const char* json;
    const char* key;
    const char* fragment;
  };
  for (const Case& c : {
           Case{R"({"AllowedUploadHosts": ["https://uploads.example.com"]})",
                "AllowedUploadHosts[0]", "expected a host name"},
           Case{R"({"AllowedUploadHosts": ["ok.example.com", "uploads.example.com:9000"]})",
                "AllowedUploadHosts[1]", "must not include a port"},
           Case{R"({"AllowedUploadHosts": [" "]})", "AllowedUploadHosts[0]", "is empty"},
           Case{R"({"AllowedUploadHosts": ["bad host"]})", "AllowedUploadHosts[0]",
                "invalid character"},
           Case{R"({"AllowedUploadHosts": ["[::1]:9000"]})", "AllowedUploadHosts[0]",
                "invalid character"},
           Case{R"({"AllowedUploadHosts": ["[zz::1]"]})", "AllowedUploadHosts[0]",
                "invalid character"},
       }) {
    const std::string message = ErrorFor(With(c.json));
    EXPECT_TRUE(IsErrorFor(message, c.key)) << c.json;
    EXPECT_TRUE(Contains(message, c.fragment)) << message;
  }
}

TEST(Configuration, UrlNeedsHttpOrHttps) {
  struct Case {
    const char* url;
    const char* fragment;
  };
  for (const Case& c : {
           Case{"ftp://ingest.example.com", "found scheme \"ftp\""},
           Case{"ingest.example.com/api", "found no scheme"},
           Case{"https://", "has no host"},
           Case{"https:///api", "has no host"},
           Case{"https://ingest.example.com/api?key=v", "must not have a query"},
           Case{"https://ingest.example.com/a#frag", "must not have a query or a fragment"},
           Case{"https://ingest.example.com/a b", "contains a space"},
           Case{"https://ingest.example.com:https/api", "has an invalid port"},
           Case{"https://ingest.example.com:0", "has an invalid port"},
           Case{"https://ingest.example.com:65536", "has an invalid port"},
           Case{"https://[::1]x:80", "has an invalid port"},
           Case{"https://b\xC3\xBC"
                "cher.example/api",
                "characters other than letters"},
           Case{"https://[::g1]/api", "characters other than letters"},
           Case{"https://in$gest.example.com", "characters other than letters"},
       }) {
    Json::Value section = Minimal();
    section["Url"] = c.url;
    const std::string message = ErrorFor(section);
    EXPECT_TRUE(IsErrorFor(message, "Url")) << c.url;
    EXPECT_TRUE(Contains(message, c.fragment)) << message;
  }
}

TEST(Configuration, UrlCredentialsAreRefusedWithoutBeingShown) {
  Json::Value section = Minimal();
  section["Url"] = "https://user:pa55word@ingest.example.com/api";
  std::string message = ErrorFor(section);
  EXPECT_TRUE(IsErrorFor(message, "Url"));
  EXPECT_FALSE(Contains(message, "pa55word")) << message;

  section = Minimal();
  section["TokenUrl"] = "https://user:pa55word@login.example.com/token?x=pa55word";
  message = ErrorFor(section);
  EXPECT_TRUE(IsErrorFor(message, "TokenUrl"));
  EXPECT_FALSE(Contains(message, "pa55word")) << message;

  section = Minimal();
  section["TokenUrl"] = "https://login.example.com/token?client_secret=pa55word";
  message = ErrorFor(section);
  EXPECT_TRUE(IsErrorFor(message, "TokenUrl"));
  EXPECT_FALSE(Contains(message, "pa55word")) << message;
}

TEST(Configuration, BadEndpointsAreNamedWithTheirPath) {
  struct Case {
    const char* json;
    const char* key;
    const char* fragment;
  };
  for (const Case& c : {
           Case{R"({"Endpoints": {"NewOrders": {}}})", "Endpoints.NewOrders",
                "did you mean 'NewOrder'?"},
           Case{R"({"Endpoints": {"Upload": "/upload"}})", "Endpoints.Upload",
                "expected an object, found \"/upload\""},
           Case{R"({"Endpoints": {"NewOrder": {"Verb": "POST"}}})", "Endpoints.NewOrder.Verb",
                "unknown key"},
           Case{R"({"Endpoints": {"NewOrder": {"Method": "DELETE"}}})", "Endpoints.NewOrder.Method",
                "expected GET, POST, PUT or PATCH, found \"DELETE\""},
           Case{R"({"Endpoints": {"AddMetadata": {"Method": 1}}})", "Endpoints.AddMetadata.Method",
                "expected a string, found 1"},
           Case{R"({"Endpoints": {"Upload": {"Path": "upload"}}})", "Endpoints.Upload.Path",
                "expected a path starting with '/'"},
           Case{R"({"Endpoints": {"Upload": {"Path": "/upload?x=1"}}})", "Endpoints.Upload.Path",
                "without spaces, query or fragment"},
           Case{R"({"Endpoints": {"Upload": {"Path": ""}}})", "Endpoints.Upload.Path",
                "found \"\""},
       }) {
    const std::string message = ErrorFor(With(c.json));
    EXPECT_TRUE(IsErrorFor(message, c.key)) << c.json;
    EXPECT_TRUE(Contains(message, c.fragment)) << message;
  }
}

TEST(Configuration, BadFiltersAreNamedWithTheirPath) {
  struct Case {
    const char* json;
    const char* key;
    const char* fragment;
  };
  for (const Case& c : {
           Case{R"({"Filters": {"Modality": ["CT"]}})", "Filters.Modality",
                "did you mean 'Modalities'?"},
           Case{R"({"Filters": {"Modalities": "CT"}})", "Filters.Modalities",
                "expected an array of strings, found \"CT\""},
           Case{R"({"Filters": {"Modalities": ["CT", 5]}})", "Filters.Modalities[1]",
                "expected a string, found 5"},
           Case{R"({"Filters": {"Modalities": ["C T"]}})", "Filters.Modalities[0]",
                "expected a modality"},
           Case{R"({"Filters": {"CallingAets": [""]}})", "Filters.CallingAets[0]",
                "expected an AE title"},
           Case{R"({"Filters": {"CallingAets": ["AN_AE_TITLE_TOO_LONG"]}})",
                "Filters.CallingAets[0]", "1 to 16 characters"},
       }) {
    const std::string message = ErrorFor(With(c.json));
    EXPECT_TRUE(IsErrorFor(message, c.key)) << c.json;
    EXPECT_TRUE(Contains(message, c.fragment)) << message;
  }
}

TEST(Configuration, BadOrderMetadataIsNamedWithItsKey) {
  struct Case {
    const char* json;
    const char* key;
    const char* fragment;
  };
  for (const Case& c : {
           Case{R"({"OrderMetadata": {"site": 5}})", "OrderMetadata.site",
                "expected a DICOM tag name (string) or {\"Value\": ...}, found 5"},
           Case{R"({"OrderMetadata": {"site": {"Valeu": "x"}}})", "OrderMetadata.site.Valeu",
                "did you mean 'Value'?"},
           Case{R"({"OrderMetadata": {"site": {}}})", "OrderMetadata.site", "needs \"Value\""},
           Case{R"({"OrderMetadata": {"site": {"Value": [1]}}})", "OrderMetadata.site.Value",
                "found an array"},
           Case{R"({"OrderMetadata": {"site": {"Value": null}}})", "OrderMetadata.site.Value",
                "found null"},
           Case{R"({"OrderMetadata": {"doctor": "Performing Physician"}})", "OrderMetadata.doctor",
                "expected a DICOM tag name, found \"Performing Physician\""},
           Case{R"({"OrderMetadata": {"doctor": "0008-1050"}})", "OrderMetadata.doctor",
                "expected a DICOM tag name"},
           Case{R"({"OrderMetadata": {"doctor": ""}})", "OrderMetadata.doctor",
                "expected a DICOM tag name"},
           Case{R"({"OrderMetadata": {"": "PatientName"}})", "OrderMetadata", "empty key"},
       }) {
    const std::string message = ErrorFor(With(c.json));
    EXPECT_TRUE(IsErrorFor(message, c.key)) << c.json;
    EXPECT_TRUE(Contains(message, c.fragment)) << message;
  }
}

TEST(Configuration, OrderMetadataMayOverrideDefaultKeys) {
  const auto c = ParseConfiguration(
      With(R"({"OrderMetadata": {"patient_name": {"Value": "ANON"}}})"), Defaults());
  ASSERT_EQ(1u, c.orderMetadata.count("patient_name"));
  EXPECT_EQ(Json::Value("ANON"), c.orderMetadata.at("patient_name").constant);
}

TEST(Configuration, SecretIsNeverEchoed) {
  for (const char* json :
       {R"({"ClientSecret": 987654321})", R"({"ClientSecret": ["hunter2-secret"]})",
        R"({"ClientSecret": {"value": "hunter2-secret"}})", R"({"ClientSecret": true})",
        R"({"ClientSecret": 3.25e7})"}) {
    const std::string message = ErrorFor(With(json));
    EXPECT_TRUE(IsErrorFor(message, "ClientSecret")) << json;
    EXPECT_EQ(0u, message.find("CloudIngest.ClientSecret: expected a string, found ")) << message;
    for (const char* leak : {"987654321", "hunter2", "32500000", "3.25", "true\""}) {
      EXPECT_FALSE(Contains(message, leak)) << message;
    }
  }
  // A valid string secret next to any other error is not shown either.
  for (const char* json : {R"({"Concurrency": "x"})", R"({"Bogus": 1})",
                           R"({"UploadMode": "Dicomweb"})", R"({"Url": "ftp://x"})"}) {
    const std::string message = ErrorFor(With(json));
    EXPECT_FALSE(message.empty());
    EXPECT_FALSE(Contains(message, kSecret)) << message;
  }
}

TEST(Configuration, ProxyValueIsNeverEchoed) {
  const std::string message = ErrorFor(With(R"({"HttpProxy": ["http://u:pw0rd@proxy"]})"));
  EXPECT_TRUE(IsErrorFor(message, "HttpProxy"));
  EXPECT_FALSE(Contains(message, "pw0rd")) << message;
}

TEST(Configuration, DisabledSectionNeedsNoCredentials) {
  const auto c = ParseConfiguration(ParseJson(R"({"Enable": false})"), Defaults());
  EXPECT_FALSE(c.enable);
  EXPECT_TRUE(c.url.empty());
  EXPECT_TRUE(c.allowedUploadHosts.empty());

  // A template whose ${VARIABLES} are unset is fine while disabled.
  const auto t = ParseConfiguration(
      ParseJson(R"({"Enable": false, "Url": "", "ClientId": "", "ClientSecret": ""})"), Defaults());
  EXPECT_FALSE(t.enable);
}

TEST(Configuration, DisabledSectionStillRejectsMistakes) {
  EXPECT_TRUE(
      IsErrorFor(ErrorFor(ParseJson(R"({"Enable": false, "Concurency": 4})")), "Concurency"));
  EXPECT_TRUE(
      IsErrorFor(ErrorFor(ParseJson(R"({"Enable": false, "Concurrency": "4"})")), "Concurrency"));
  EXPECT_TRUE(IsErrorFor(ErrorFor(ParseJson(R"({"Enable": false, "Url": "ftp://x"})")), "Url"));
  EXPECT_TRUE(
      IsErrorFor(ErrorFor(ParseJson(R"({"Enable": false, "ClientSecret": 5})")), "ClientSecret"));
}

// ---- The example files in Configuration/ must load, and "full" must state the defaults.

std::filesystem::path ExampleFile(const std::string& name) {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "Configuration" / name;
}

// Reads strict JSON (no comments) and expands ${VAR} as Orthanc would.
Json::Value LoadExample(const std::string& name) {
  std::ifstream in(ExampleFile(name));
  if (!in) throw std::runtime_error("cannot open " + ExampleFile(name).string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  const std::map<std::string, std::string> environment = {
      {"CLOUD_INGEST_URL", "http://127.0.0.1:8090"},
      {"CLOUD_INGEST_CLIENT_ID", "test-client"},
      {"CLOUD_INGEST_CLIENT_SECRET", "test-secret"},
      {"ORTHANC_ADMIN_PASSWORD", "test-password"}};
  for (size_t start = text.find("${"); start != std::string::npos; start = text.find("${")) {
    const size_t end = text.find('}', start);
    const std::string name = text.substr(start + 2, end - start - 2);
    const auto it = environment.find(name);
    if (it == environment.end()) throw std::runtime_error("unexpected variable " + name);
    text.replace(start, end - start + 1, it->second);
  }
  Json::CharReaderBuilder builder;
  Json::CharReaderBuilder::strictMode(&builder.settings_);
  Json::Value value;
  std::string errors;
  std::istringstream textIn(text);
  if (!Json::parseFromStream(builder, textIn, &value, &errors)) {
    throw std::runtime_error(name + " is not plain JSON: " + errors);
  }
  return value;
}

TEST(ConfigurationExamples, OrthancJsonLoads) {
  const Json::Value orthanc = LoadExample("orthanc.json");
  const auto c = ParseConfiguration(orthanc["CloudIngest"], Defaults());
  EXPECT_TRUE(c.enable);
  EXPECT_EQ("http://127.0.0.1:8090", c.url);
  EXPECT_EQ("test-secret", c.clientSecret);
  EXPECT_EQ(2u, c.orderMetadata.size());
  EXPECT_EQ("../build/libOrthancCloudIngest.so", orthanc["Plugins"][0].asString());
}

TEST(ConfigurationExamples, MinimalLoads) {
  const auto c =
      ParseConfiguration(LoadExample("cloud-ingest-minimal.json")["CloudIngest"], Defaults());
  EXPECT_TRUE(c.enable);
  EXPECT_EQ("https://ingest.example.com/api", c.url);
  EXPECT_EQ("test-client", c.clientId);
}

TEST(ConfigurationExamples, FullStatesEveryKeyWithItsDefault) {
  const Json::Value full = LoadExample("cloud-ingest-full.json")["CloudIngest"];
  // Every known key is present (the parser rejects unknown ones).
  for (const char* key : {"Enable",
                          "Url",
                          "TokenUrl",
                          "TokenMethod",
                          "ClientId",
                          "ClientSecret",
                          "Scope",
                          "AutoSend",
                          "UploadMode",
                          "Filters",
                          "OrderMetadata",
                          "Concurrency",
                          "MaxAttempts",
                          "RetryBaseDelay",
                          "RetryMaxDelay",
                          "Timeout",
                          "ConnectTimeout",
                          "HttpsVerifyPeers",
                          "HttpsCACertificates",
                          "HttpProxy",
                          "AllowedUploadHosts",
                          "AuditLog",
                          "Database",
                          "Endpoints",
                          "GroupWindow",
                          "LateInstances",
                          "StudyWorkers",
                          "MaxStudyAttempts",
                          "StudyRetryDelay",
                          "ChangesPollInterval",
                          "MaxMemory",
                          "MaxSendRate",
                          "QueueStalledAfter",
                          "Jobs",
                          "Labels"}) {
    EXPECT_TRUE(full.isMember(key)) << key;
  }
  // Orthanc's own defaults on Debian, as the plugin would receive them.
  OrthancDefaults orthanc;
  orthanc.httpTimeout = 60;
  orthanc.httpsVerifyPeers = true;
  orthanc.indexDirectory = "/var/lib/orthanc/db-v6";
  Json::Value minimal(Json::objectValue);
  for (const char* key : {"Url", "ClientId", "ClientSecret"}) minimal[key] = full[key];

  const auto a = ParseConfiguration(full, orthanc);
  const auto b = ParseConfiguration(minimal, orthanc);
  EXPECT_EQ(b.enable, a.enable);
  EXPECT_EQ(b.url, a.url);
  EXPECT_EQ(b.tokenUrl, a.tokenUrl);
  EXPECT_EQ(b.tokenMethod, a.tokenMethod);
  EXPECT_EQ(b.scope, a.scope);
  EXPECT_EQ(b.maxSendRate, a.maxSendRate);
  EXPECT_EQ(b.queueStalledAfter, a.queueStalledAfter);
  EXPECT_EQ(b.labels.enable, a.labels.enable);
  EXPECT_EQ(b.labels.sent, a.labels.sent);
  EXPECT_EQ(b.labels.failed, a.labels.failed);
  EXPECT_EQ(b.labels.sending, a.labels.sending);
  EXPECT_EQ(b.autoSend, a.autoSend);
  EXPECT_EQ(b.uploadMode, a.uploadMode);
  EXPECT_EQ(b.filters.modalities, a.filters.modalities);
  EXPECT_EQ(b.filters.callingAets, a.filters.callingAets);
  EXPECT_EQ(b.orderMetadata.size(), a.orderMetadata.size());
  EXPECT_EQ(b.concurrency, a.concurrency);
  EXPECT_EQ(b.retry.maxAttempts, a.retry.maxAttempts);
  EXPECT_EQ(b.retry.baseDelay, a.retry.baseDelay);
  EXPECT_EQ(b.retry.maxDelay, a.retry.maxDelay);
  EXPECT_EQ(b.retry.maxStudyAttempts, a.retry.maxStudyAttempts);
  EXPECT_EQ(b.retry.studyRetryDelay, a.retry.studyRetryDelay);
  EXPECT_EQ(b.timeout, a.timeout);
  EXPECT_EQ(b.connectTimeout, a.connectTimeout);
  EXPECT_EQ(b.httpsVerifyPeers, a.httpsVerifyPeers);
  EXPECT_EQ(b.httpsCaCertificates, a.httpsCaCertificates);
  EXPECT_EQ(b.httpProxy, a.httpProxy);
  EXPECT_EQ(b.allowedUploadHosts, a.allowedUploadHosts);
  EXPECT_EQ(b.allowInsecureUploads, a.allowInsecureUploads);
  EXPECT_EQ(b.auditLog, a.auditLog);
  EXPECT_EQ(b.database, a.database);
  for (const auto& [x, y] : {std::pair{&a.newOrder, &b.newOrder}, std::pair{&a.upload, &b.upload},
                             std::pair{&a.addMetadata, &b.addMetadata}}) {
    EXPECT_EQ(y->method, x->method);
    EXPECT_EQ(y->path, x->path);
  }
  EXPECT_EQ(b.groupWindow, a.groupWindow);
  EXPECT_EQ(b.lateInstances, a.lateInstances);
  EXPECT_EQ(b.studyWorkers, a.studyWorkers);
}

}  // namespace

TEST(Configuration, NiftiModeAndItsKeys) {
  Json::Value section;
  Json::CharReaderBuilder builder;
  std::string errors;
  std::istringstream in(R"({"Url": "https://ingest.example.com", "ClientId": "id",
    "ClientSecret": "s", "UploadMode": "Nifti", "NiftiFallback": "Skip",
    "Dcm2niixPath": "/opt/dcm2niix", "TemporaryDirectory": "/var/tmp/ci",
    "UploadModeRules": [{"Modalities": ["MR"], "UploadMode": "Nifti"},
                        {"CallingAets": ["CT1"], "UploadMode": "Zip"}]})");
  ASSERT_TRUE(Json::parseFromStream(builder, in, &section, &errors)) << errors;
  const CloudIngest::Configuration c = CloudIngest::ParseConfiguration(section, {});
  EXPECT_EQ(CloudIngest::UploadMode::Nifti, c.uploadMode);
  EXPECT_FALSE(c.niftiFallbackToDicom);
  EXPECT_EQ("/opt/dcm2niix", c.dcm2niixPath);
  EXPECT_EQ("/var/tmp/ci", c.temporaryDirectory);
  ASSERT_EQ(2u, c.uploadModeRules.size());
  EXPECT_EQ(CloudIngest::UploadMode::Nifti, c.uploadModeRules[0].mode);
  EXPECT_EQ(std::vector<std::string>{"MR"}, c.uploadModeRules[0].modalities);
  EXPECT_EQ(std::vector<std::string>{"CT1"}, c.uploadModeRules[1].callingAets);

  section["UploadModeRules"][1]["UploadMode"] = "Fast";
  try {
    CloudIngest::ParseConfiguration(section, {});
    FAIL() << "expected ConfigurationError";
  } catch (const CloudIngest::ConfigurationError& e) {
    EXPECT_EQ(0u, std::string(e.what()).find("CloudIngest.UploadModeRules[1].UploadMode: "))
        << e.what();
  }
}

// ---- Operations: SendWindows, MaxSendRate, Webhooks, QueueStalledAfter

namespace {

using CloudIngest::Configuration;

Configuration Parsed(const std::string& json) {
  return ParseConfiguration(With(json), Defaults());
}

}  // namespace

// ---- Permissions, AuditKey, NodeName, AuditSyslog

namespace {

OrthancDefaults WithAuthentication() {
  OrthancDefaults defaults = Defaults();
  defaults.authenticationEnabled = true;
  defaults.hostName = "host-1";
  defaults.httpPort = 8042;
  return defaults;
}

std::string SecurityErrorFor(const Json::Value& section,
                             const OrthancDefaults& defaults = WithAuthentication()) {
  try {
    ParseConfiguration(section, defaults);
  } catch (const CloudIngest::ConfigurationError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Configuration, OperationsKeysDefaultToOff) {
  const Configuration config = Parsed("{}");
  EXPECT_TRUE(config.sendWindows.empty());
  EXPECT_EQ(0u, config.maxSendRate);
  EXPECT_TRUE(config.webhooks.empty());
  EXPECT_DOUBLE_EQ(1800, config.queueStalledAfter);
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest-webhooks.db", config.webhookSpool);
}

TEST(Configuration, SendWindowsAreParsed) {
  const Configuration config = Parsed(
      R"({"SendWindows": [{"Days": ["Mon", "tue", "FRI"], "From": "19:00", "To": "07:00"},
                          {"Days": ["Sat", "Sun"], "From": "00:00", "To": "24:00"}]})");
  ASSERT_EQ(2u, config.sendWindows.size());
  EXPECT_EQ((1u << 1) | (1u << 2) | (1u << 5), config.sendWindows[0].days);
  EXPECT_EQ(19 * 60, config.sendWindows[0].fromMinute);
  EXPECT_EQ(7 * 60, config.sendWindows[0].toMinute);
  EXPECT_EQ((1u << 6) | 1u, config.sendWindows[1].days);
  EXPECT_EQ(1440, config.sendWindows[1].toMinute);
}

TEST(Configuration, SendWindowsErrorsNameTheWindowAndTheKey) {
  const std::string from =
      ErrorFor(With(R"({"SendWindows": [{"Days": ["Mon"], "From": "7pm", "To": "07:00"}]})"));
  EXPECT_EQ(
      "CloudIngest.SendWindows[0].From: expected a local time \"HH:MM\" (00:00..23:59), found "
      "\"7pm\"; write it as \"19:00\"",
      from);
  struct Case {
    const char* json;
    const char* key;
    const char* fragment;
  };
  const Case cases[] = {
      {R"({"SendWindows": {"Days": ["Mon"]}})", "SendWindows", "expected an array"},
      {R"({"SendWindows": []})", "SendWindows", "no automatic send could ever start"},
      {R"({"SendWindows": ["19:00-07:00"]})", "SendWindows[0]", "expected an object"},
      {R"({"SendWindows": [{"Days": ["Monday"], "From": "19:00", "To": "07:00"}]})",
       "SendWindows[0].Days[0]", "found \"Monday\""},
      {R"({"SendWindows": [{"Days": [], "From": "19:00", "To": "07:00"}]})", "SendWindows[0].Days",
       "missing or empty"},
      {R"({"SendWindows": [{"From": "19:00", "To": "07:00"}]})", "SendWindows[0].Days",
       "missing or empty"},
      {R"({"SendWindows": [{"Days": ["Mon"], "To": "07:00"}]})", "SendWindows[0].From", "missing"},
      {R"({"SendWindows": [{"Days": ["Mon"], "From": "24:00", "To": "07:00"}]})",
       "SendWindows[0].From", "found \"24:00\""},
      {R"({"SendWindows": [{"Days": ["Mon"], "From": "19:00", "To": "7:00"}]})",
       "SendWindows[0].To", "found \"7:00\""},
      {R"({"SendWindows": [{"Days": ["Mon"], "From": "08:00", "To": "08:00"}]})", "SendWindows[0]",
       "an empty window"},
      {R"({"SendWindows": [{"Days": ["Mon"], "From": "08:00", "To": "09:00", "Form": 1}]})",
       "SendWindows[0].Form", "unknown key"},
  };
  for (const Case& c : cases) {
    const std::string message = ErrorFor(With(c.json));
    EXPECT_TRUE(IsErrorFor(message, c.key)) << c.json;
    EXPECT_TRUE(Contains(message, c.fragment)) << message;
  }
}

TEST(Configuration, MaxSendRateIsBytesPerSecondZeroOrAtLeastOneKilobyte) {
  EXPECT_EQ(2'000'000u, Parsed(R"({"MaxSendRate": 2000000})").maxSendRate);
  EXPECT_EQ(0u, Parsed(R"({"MaxSendRate": 0})").maxSendRate);
  const std::string small = ErrorFor(With(R"({"MaxSendRate": 500})"));
  EXPECT_TRUE(IsErrorFor(small, "MaxSendRate"));
  EXPECT_TRUE(Contains(small, "at least 1024 bytes per second, found 500")) << small;
  EXPECT_TRUE(IsErrorFor(ErrorFor(With(R"({"MaxSendRate": "2 MB/s"})")), "MaxSendRate"));
  EXPECT_TRUE(IsErrorFor(ErrorFor(With(R"({"MaxSendRate": -1})")), "MaxSendRate"));
}

TEST(Configuration, WebhooksAreParsed) {
  const Configuration config = Parsed(
      R"({"Webhooks": [{"Url": "https://ops.example.org/hook", "Events": ["study_failed", "queue_stalled"],
                        "Secret": "s3cr3t-Hunter2-DoNotPrint"},
                       {"Url": "http://127.0.0.1:9000/hook", "Events": ["study_sent"],
                        "Secret": "x", "IncludePatientData": true}],
          "QueueStalledAfter": 600})");
  ASSERT_EQ(2u, config.webhooks.size());
  EXPECT_EQ("https://ops.example.org/hook", config.webhooks[0].url);
  EXPECT_EQ((std::vector<std::string>{"study_failed", "queue_stalled"}), config.webhooks[0].events);
  EXPECT_EQ(kSecret, config.webhooks[0].secret);
  EXPECT_FALSE(config.webhooks[0].includePatientData);
  EXPECT_TRUE(config.webhooks[1].includePatientData);
  EXPECT_DOUBLE_EQ(600, config.queueStalledAfter);
  EXPECT_EQ(1u, Parsed(R"({"Webhooks": [{"Url": "http://[::1]:9/h", "Events": ["study_sent"],
                                         "Secret": "x"}]})")
                    .webhooks.size());
}

TEST(Configuration, WebhooksErrorsNameTheHookAndNeverShowTheSecret) {
  struct Case {
    const char* json;
    const char* key;
    const char* fragment;
  };
  const Case cases[] = {
      {R"({"Webhooks": [{"Url": "http://ops.example.org/h", "Events": ["study_sent"], "Secret": "x"}]})",
       "Webhooks[0].Url", "must be https://"},
      {R"({"Webhooks": [{"Events": ["study_sent"], "Secret": "x"}]})", "Webhooks[0].Url",
       "missing"},
      {R"({"Webhooks": [{"Url": "https://h.example/h", "Events": ["study_lost"], "Secret": "x"}]})",
       "Webhooks[0].Events[0]", "found \"study_lost\""},
      {R"({"Webhooks": [{"Url": "https://h.example/h", "Events": [], "Secret": "x"}]})",
       "Webhooks[0].Events", "missing or empty"},
      {R"({"Webhooks": [{"Url": "https://h.example/h", "Events": ["study_sent"]}]})",
       "Webhooks[0].Secret", "missing or empty"},
      {R"({"Webhooks": [{"Url": "https://h.example/h", "Events": ["study_sent"], "Secret": ""}]})",
       "Webhooks[0].Secret", "missing or empty"},
      {R"({"Webhooks": [{"Url": "https://h.example/h", "Events": ["study_sent"], "Secret": ["s3cr3t-Hunter2-DoNotPrint"]}]})",
       "Webhooks[0].Secret", "found an array"},
      {R"({"Webhooks": [{"Url": "https://h.example/h", "Events": ["study_sent"], "Secret": "x", "IncludePatientData": "yes"}]})",
       "Webhooks[0].IncludePatientData", "expected true or false"},
      {R"({"Webhooks": [{"Url": "https://h.example/h", "Events": ["study_sent"], "Secret": "x", "Secrets": 1}]})",
       "Webhooks[0].Secrets", "unknown key"},
      {R"({"Webhooks": {"Url": "https://h.example/h"}})", "Webhooks", "expected an array"},
      {R"({"QueueStalledAfter": 0})", "QueueStalledAfter", "greater than 0"},
  };
  for (const Case& c : cases) {
    const std::string message = ErrorFor(With(c.json));
    EXPECT_TRUE(IsErrorFor(message, c.key)) << c.json;
    EXPECT_TRUE(Contains(message, c.fragment)) << message;
  }
}

TEST(ConfigurationSecurity, AbsentKeysKeepTodaysBehaviour) {
  const auto c = ParseConfiguration(Minimal(), WithAuthentication());
  EXPECT_FALSE(c.permissions.configured);
  EXPECT_TRUE(c.auditKey.empty());
  EXPECT_EQ("host-1:8042", c.cluster.nodeName);
  EXPECT_FALSE(c.auditSyslog.enabled);
}

TEST(ConfigurationSecurity, PermissionsAreParsed) {
  const auto c = ParseConfiguration(
      With(R"({"Permissions": {"Users": {"alice": "Admin", "bob": "viewer", "carol": "operator",
               "dave": "none"}, "Default": "viewer"}})"),
      WithAuthentication());
  using CloudIngest::Role;
  EXPECT_TRUE(c.permissions.configured);
  EXPECT_EQ(Role::Admin, c.permissions.users.at("alice"));
  EXPECT_EQ(Role::Viewer, c.permissions.users.at("bob"));
  EXPECT_EQ(Role::Operator, c.permissions.users.at("carol"));
  EXPECT_EQ(Role::None, c.permissions.users.at("dave"));
  EXPECT_EQ(Role::Viewer, c.permissions.defaultRole);
  const auto d = ParseConfiguration(With(R"({"Permissions": {}})"), WithAuthentication());
  EXPECT_EQ(Role::None, d.permissions.defaultRole);
}

TEST(ConfigurationSecurity, PermissionsWithoutOrthancsAuthenticationStopStartUp) {
  OrthancDefaults open = WithAuthentication();
  open.authenticationEnabled = false;
  const std::string message =
      SecurityErrorFor(With(R"({"Permissions": {"Users": {"a": "admin"}}})"), open);
  EXPECT_TRUE(IsErrorFor(message, "Permissions")) << message;
  EXPECT_TRUE(Contains(message, "AuthenticationEnabled")) << message;
}

TEST(ConfigurationSecurity, BadPermissionsNameTheKey) {
  EXPECT_TRUE(IsErrorFor(SecurityErrorFor(With(R"({"Permissions": {"Users": {"a": "root"}}})")),
                         "Permissions.Users.a"));
  EXPECT_TRUE(IsErrorFor(SecurityErrorFor(With(R"({"Permissions": {"Default": 3}})")),
                         "Permissions.Default"));
  EXPECT_TRUE(
      IsErrorFor(SecurityErrorFor(With(R"({"Permissions": {"Roles": {}}})")), "Permissions.Roles"));
  EXPECT_TRUE(IsErrorFor(SecurityErrorFor(With(R"({"Permissions": []})")), "Permissions"));
}

TEST(ConfigurationSecurity, AuditKeyIsReadAndNeverEchoed) {
  const auto c = ParseConfiguration(With(R"({"AuditKey": "k-123"})"), WithAuthentication());
  EXPECT_EQ("k-123", c.auditKey);
  const std::string empty = SecurityErrorFor(With(R"({"AuditKey": ""})"));
  EXPECT_TRUE(IsErrorFor(empty, "AuditKey")) << empty;
  const std::string wrongType = SecurityErrorFor(With(R"({"AuditKey": ["Hunter2"]})"));
  EXPECT_TRUE(IsErrorFor(wrongType, "AuditKey")) << wrongType;
}

TEST(ConfigurationSecurity, NodeNameOverridesTheDefault) {
  EXPECT_EQ("orthanc-a",
            ParseConfiguration(With(R"({"NodeName": "orthanc-a"})"), WithAuthentication())
                .cluster.nodeName);
  EXPECT_TRUE(IsErrorFor(SecurityErrorFor(With(R"({"NodeName": "has space"})")), "NodeName"));
}

TEST(ConfigurationSecurity, AuditSyslogIsParsedWithPerProtocolPorts) {
  using CloudIngest::SyslogProtocol;
  const auto tls = ParseConfiguration(
      With(R"({"AuditSyslog": {"Host": "siem", "Protocol": "TLS", "CACertificate": "/ca.pem"}})"),
      WithAuthentication());
  EXPECT_TRUE(tls.auditSyslog.enabled);
  EXPECT_EQ(SyslogProtocol::Tls, tls.auditSyslog.protocol);
  EXPECT_EQ(6514u, tls.auditSyslog.port);
  EXPECT_EQ("/ca.pem", tls.auditSyslog.caCertificate);
  EXPECT_EQ("orthanc-cloud-ingest", tls.auditSyslog.appName);
  const auto udp =
      ParseConfiguration(With(R"({"AuditSyslog": {"Host": "siem", "Protocol": "udp", "Port": 5140,
               "AppName": "pacs"}})"),
                         WithAuthentication());
  EXPECT_EQ(SyslogProtocol::Udp, udp.auditSyslog.protocol);
  EXPECT_EQ(5140u, udp.auditSyslog.port);
  EXPECT_EQ("pacs", udp.auditSyslog.appName);
  const auto tcp =
      ParseConfiguration(With(R"({"AuditSyslog": {"Host": "siem"}})"), WithAuthentication());
  EXPECT_EQ(SyslogProtocol::Tcp, tcp.auditSyslog.protocol);
  EXPECT_EQ(514u, tcp.auditSyslog.port);
}

TEST(ConfigurationSecurity, BadAuditSyslogNamesTheKey) {
  EXPECT_TRUE(IsErrorFor(SecurityErrorFor(With(R"({"AuditSyslog": {}})")), "AuditSyslog.Host"));
  EXPECT_TRUE(IsErrorFor(SecurityErrorFor(With(R"({"AuditSyslog": {"Host": "h",
      "Protocol": "relp"}})")),
                         "AuditSyslog.Protocol"));
  EXPECT_TRUE(IsErrorFor(SecurityErrorFor(With(R"({"AuditSyslog": {"Host": "h", "Port": 0}})")),
                         "AuditSyslog.Port"));
  EXPECT_TRUE(IsErrorFor(
      SecurityErrorFor(With(R"({"AuditSyslog": {"Host": "h", "CACertificate": "/ca.pem"}})")),
      "AuditSyslog.CACertificate"));
  EXPECT_TRUE(IsErrorFor(SecurityErrorFor(With(R"({"AuditSyslog": {"Host": "h", "AppName": ""}})")),
                         "AuditSyslog.AppName"));
}
