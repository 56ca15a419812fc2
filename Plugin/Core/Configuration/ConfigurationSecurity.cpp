#include "Core/Configuration/ConfigurationSecurity.h"

#include <algorithm>

#include "Core/Configuration/ConfigurationReaders.h"

namespace CloudIngest {

namespace {

using namespace ConfigurationReaders;

const std::vector<std::pair<std::string, Role>> kRoles = {{"none", Role::None},
                                                          {"viewer", Role::Viewer},
                                                          {"operator", Role::Operator},
                                                          {"admin", Role::Admin}};

const char* const kRoleList = "\"none\", \"viewer\", \"operator\" or \"admin\"";

Role ReadRole(const Json::Value& value, const std::string& path) {
  if (!value.isString()) {
    Fail(path, "expected a role (string), found " + Describe(value),
         std::string("use ") + kRoleList);
  }
  const auto role = ParseRole(value.asString());
  if (!role) {
    Fail(path, "unknown role " + Quote(value.asString()), std::string("use ") + kRoleList);
  }
  return *role;
}

void ReadPermissions(const Json::Value& section, const OrthancDefaults& defaults,
                     PermissionSettings& permissions) {
  const Json::Value* object = nullptr;
  const std::string example =
      "{\"Users\": {\"alice\": \"admin\", \"bob\": \"viewer\"}, \"Default\": \"none\"}";
  if (!ReadObject(section, "Permissions", "CloudIngest", example, object)) return;
  const std::string path = "CloudIngest.Permissions";
  CheckKeys(*object, {"Users", "Default"}, path);
  if (!defaults.authenticationEnabled) {
    Fail(path, "set while Orthanc's AuthenticationEnabled is false, so no request names its user",
         "set \"AuthenticationEnabled\": true with \"RegisteredUsers\" in Orthanc's "
         "configuration, or remove Permissions");
  }
  permissions.configured = true;
  if (const Json::Value* users = Find(*object, "Users")) {
    if (!users->isObject()) {
      Fail(path + ".Users", "expected an object, found " + Describe(*users),
           "write it as {\"alice\": \"admin\"}");
    }
    for (const std::string& user : users->getMemberNames()) {
      permissions.users[user] = ReadRole((*users)[user], Child(path + ".Users", user));
    }
  }
  if (const Json::Value* fallback = Find(*object, "Default")) {
    permissions.defaultRole = ReadRole(*fallback, path + ".Default");
  }
}

bool IsPrintableAscii(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

void ReadSyslog(const Json::Value& section, SyslogSettings& syslog) {
  const Json::Value* object = nullptr;
  const std::string example =
      "{\"Host\": \"siem.example.com\", \"Port\": 6514, \"Protocol\": \"tls\", "
      "\"CACertificate\": \"/etc/ssl/siem-ca.pem\"}";
  if (!ReadObject(section, "AuditSyslog", "CloudIngest", example, object)) return;
  const std::string path = "CloudIngest.AuditSyslog";
  CheckKeys(*object, {"Host", "Port", "Protocol", "CACertificate", "AppName"}, path);
  syslog.enabled = true;
  if (!ReadString(*object, "Host", path, syslog.host, "\"siem.example.com\"") ||
      syslog.host.empty()) {
    Fail(path + ".Host", "missing or empty", "set it to the collector's host name or address");
  }
  std::string protocol = "tcp";
  ReadString(*object, "Protocol", path, protocol, "\"tls\"");
  const std::string lower = Lower(protocol);
  if (lower == "udp") {
    syslog.protocol = SyslogProtocol::Udp;
  } else if (lower == "tcp") {
    syslog.protocol = SyslogProtocol::Tcp;
  } else if (lower == "tls") {
    syslog.protocol = SyslogProtocol::Tls;
  } else {
    Fail(path + ".Protocol", "expected \"udp\", \"tcp\" or \"tls\", found " + Quote(protocol),
         "use one of these");
  }
  syslog.port = syslog.protocol == SyslogProtocol::Tls ? 6514 : 514;
  ReadInteger(*object, "Port", path, 1, 65535, syslog.port, syslog.port);
  if (ReadString(*object, "CACertificate", path, syslog.caCertificate,
                 "\"/etc/ssl/siem-ca.pem\"") &&
      syslog.protocol != SyslogProtocol::Tls) {
    Fail(path + ".CACertificate", "only used with \"Protocol\": \"tls\"",
         "remove it, or set Protocol to \"tls\"");
  }
  if (ReadString(*object, "AppName", path, syslog.appName, "\"orthanc-cloud-ingest\"") &&
      (syslog.appName.empty() || syslog.appName.size() > 48 || !IsPrintableAscii(syslog.appName))) {
    Fail(path + ".AppName", "must be 1 to 48 printable ASCII characters without spaces",
         "use a name such as \"orthanc-cloud-ingest\"");
  }
}

}  // namespace

const char* ToString(Role role) {
  for (const auto& [name, value] : kRoles) {
    if (value == role) return name.c_str();
  }
  return "none";
}

std::optional<Role> ParseRole(const std::string& text) {
  for (const auto& [name, value] : kRoles) {
    if (Lower(text) == name) return value;
  }
  return std::nullopt;
}

void ReadSecurity(const Json::Value& section, const OrthancDefaults& defaults,
                  Configuration& config) {
  ReadPermissions(section, defaults, config.permissions);
  if (ReadString(section, "AuditKey", "CloudIngest", config.auditKey,
                 "\"${CLOUD_INGEST_AUDIT_KEY}\"", Echo::TypeOnly) &&
      config.auditKey.empty()) {
    Fail("CloudIngest.AuditKey",
         "is empty (an unset ${VARIABLE} in Orthanc's configuration expands to \"\")",
         "export the variable before starting Orthanc, or remove AuditKey");
  }
  ReadSyslog(section, config.auditSyslog);
}

}  // namespace CloudIngest
