#include "PluginConfiguration.h"

#include <json/json.h>

#include <unistd.h>

#include <filesystem>

#include "OrthancHandles.h"
#include "OrthancRest.h"

namespace CloudIngest::Sdk {

namespace {

// Orthanc reads relative paths against the folder of its configuration.
std::string Absolute(const std::string& path, const std::filesystem::path& base) {
  if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (base / path).lexically_normal().string();
}

Json::Value ReadGlobal(OrthancPluginContext* context) {
  const OrthancString text(context, OrthancPluginGetConfiguration(context));
  if (text.IsNull()) throw ConfigurationError("CloudIngest: cannot read Orthanc's configuration");
  return ParseJson(text.ToString());
}

// The configuration file or folder Orthanc was started with: its one argument
// that is not an option (GetConfigurationPath is deprecated from SDK 1.12).
// Empty when Orthanc runs on its defaults.
std::string ConfigurationArgument(OrthancPluginContext* context) {
  std::string path;
  const uint32_t count = OrthancPluginGetCommandLineArgumentsCount(context);
  for (uint32_t i = 0; i < count; i++) {  // argument i is argv[i + 1]
    const OrthancString argument(context, OrthancPluginGetCommandLineArgument(context, i));
    const std::string text = argument.ToString();
    if (!text.empty() && text[0] != '-') path = text;
  }
  return path;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

bool ReadGlobalBool(OrthancPluginContext* context, const char* key, bool fallback) {
  const Json::Value value = ReadGlobal(context)[key];
  return value.isBool() ? value.asBool() : fallback;
}

Configuration ReadConfiguration(OrthancPluginContext* context) {
  const Json::Value global = ReadGlobal(context);

  std::filesystem::path base = std::filesystem::current_path();
  const std::string configPath = ConfigurationArgument(context);
  if (!configPath.empty()) {
    const std::filesystem::path p = std::filesystem::absolute(configPath);
    base = std::filesystem::is_directory(p) ? p : p.parent_path();
    if (base.empty()) base = std::filesystem::current_path();
    base = std::filesystem::absolute(base);
  }

  OrthancDefaults defaults;
  if (global["HttpTimeout"].isNumeric()) defaults.httpTimeout = global["HttpTimeout"].asDouble();
  if (global["HttpsVerifyPeers"].isBool())
    defaults.httpsVerifyPeers = global["HttpsVerifyPeers"].asBool();
  if (global["HttpsCACertificates"].isString()) {
    defaults.httpsCaCertificates = Absolute(global["HttpsCACertificates"].asString(), base);
  }
  if (global["HttpProxy"].isString()) defaults.httpProxy = global["HttpProxy"].asString();
  defaults.indexDirectory =
      Absolute(global["IndexDirectory"].isString()     ? global["IndexDirectory"].asString()
               : global["StorageDirectory"].isString() ? global["StorageDirectory"].asString()
                                                       : std::string("OrthancStorage"),
               base);

  if (global["HttpPort"].isUInt()) defaults.httpPort = global["HttpPort"].asUInt();
  if (global["StableAge"].isNumeric()) defaults.stableAge = global["StableAge"].asDouble();
  defaults.hostName = HostName();
  // Orthanc turns authentication on by itself when remote access is allowed
  // and AuthenticationEnabled is not set.
  defaults.authenticationEnabled =
      global["AuthenticationEnabled"].isBool() ? global["AuthenticationEnabled"].asBool()
      : global["RemoteAccessAllowed"].isBool() ? global["RemoteAccessAllowed"].asBool()
                                               : false;

  Configuration config = ParseConfiguration(global["CloudIngest"], defaults);
  config.auditLog = Absolute(config.auditLog, base);
  const bool sharedDatabase = config.cluster.sharedStore;
  if (!sharedDatabase) config.database = Absolute(config.database, base);
  config.temporaryDirectory = Absolute(config.temporaryDirectory, base);
  config.httpsCaCertificates = Absolute(config.httpsCaCertificates, base);
  config.auditSyslog.caCertificate = Absolute(config.auditSyslog.caCertificate, base);
  // Plugins load before Orthanc creates its index folder, where our files
  // live by default; create their folders as Orthanc would. A failure here
  // surfaces as a clear error when the file is opened.
  if (config.enable) {
    for (const auto& file : {config.auditLog, config.database}) {
      if (sharedDatabase && file == config.database) continue;
      std::error_code ignored;
      std::filesystem::create_directories(std::filesystem::path(file).parent_path(), ignored);
    }
  }
  return config;
}

}  // namespace CloudIngest::Sdk
