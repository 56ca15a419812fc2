#include "Core/Configuration/ConfigurationCluster.h"

#include <libpq-fe.h>

#include <boost/algorithm/string/predicate.hpp>
#include <filesystem>
#include <memory>
#include <regex>

#include "Core/Configuration/Configuration.h"
#include "Core/Configuration/ConfigurationReaders.h"

namespace CloudIngest {

using namespace ConfigurationReaders;

bool IsPostgresUri(const std::string& database) {
  // As libpq: its URI prefixes are case-sensitive.
  return boost::algorithm::starts_with(database, "postgresql://") ||
         boost::algorithm::starts_with(database, "postgres://");
}

namespace {

// libpq's messages may quote the whole URI: its password becomes "***".
std::string WithoutPassword(std::string text, const std::string& uri) {
  static const std::regex kUserInfo("^postgres(?:ql)?://[^:@/]*:([^@/]+)@");
  std::smatch password;
  if (!std::regex_search(uri, password, kUserInfo)) return text;
  for (size_t at = text.find(password[1]); at != std::string::npos;
       at = text.find(password[1], at + 3)) {
    text.replace(at, password[1].length(), "***");
  }
  return text;
}

// libpq's own parser, so that what passes here is what the store connects
// with (the port and the host are checked when it connects).
void CheckPostgresUri(const std::string& uri) {
  char* error = nullptr;
  const std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
      PQconninfoParse(uri.c_str(), &error), &PQconninfoFree);
  if (options) return;
  std::string problem = WithoutPassword(error != nullptr ? error : "cannot be parsed", uri);
  PQfreemem(error);
  while (!problem.empty() && (problem.back() == '\n' || problem.back() == ' ')) problem.pop_back();
  Fail("CloudIngest.Database", "is not a valid PostgreSQL URI (" + problem + ")",
       "write it as \"postgresql://user@host:5432/database\" (the password in PGPASSWORD or "
       "~/.pgpass)");
}

}  // namespace

void UseNodeFileNames(const Json::Value& section, const std::string& indexDirectory,
                      Configuration& config) {
  if (!config.cluster.sharedStore) return;
  const std::string node = config.cluster.nodeName;
  const auto inIndex = [&](const std::string& name) {
    return (std::filesystem::path(indexDirectory) / name).string();
  };
  if (Find(section, "AuditLog") == nullptr) {
    config.auditLog = inIndex("cloud-ingest-audit-" + node + ".jsonl");
  }
  if (Find(section, "TemporaryDirectory") == nullptr) {
    config.temporaryDirectory = inIndex("cloud-ingest-tmp-" + node);
  }
  config.webhookSpool = inIndex("cloud-ingest-webhooks-" + node + ".db");
}

void ReadClusterSettings(const Json::Value& section, const std::string& database,
                         ClusterSettings& out) {
  const std::string root = "CloudIngest";
  out.sharedStore = IsPostgresUri(database);
  if (out.sharedStore) CheckPostgresUri(database);

  std::string schema;
  if (ReadString(section, "DatabaseSchema", root, schema, "\"cloud_ingest\"")) {
    // Lower case, so that the name means the same quoted or not in psql.
    static const std::regex kIdentifier("[a-z_][a-z0-9_]{0,62}");
    if (!std::regex_match(schema, kIdentifier)) {
      Fail("CloudIngest.DatabaseSchema",
           "expected a lower-case SQL name of at most 63 letters, digits and '_', found " +
               Quote(schema),
           "use a name such as \"cloud_ingest\"");
    }
    out.databaseSchema = schema;
  }

  std::string node;
  if (ReadString(section, "NodeName", root, node, "\"orthanc-a\"")) {
    static const std::regex kNodeName("[A-Za-z0-9._:@-]{1,100}");
    if (!std::regex_match(node, kNodeName)) {
      Fail("CloudIngest.NodeName",
           "expected 1 to 100 letters, digits or . _ : @ -, found " + Quote(node),
           "use a short name that tells the nodes apart, such as \"orthanc-a\"");
    }
    out.nodeName = node;
  }

  // At least 5 s: leases are renewed every second, and a shorter lease would
  // hand a study to another node on a brief database hiccup.
  if (ReadSeconds(section, "LeaseDuration", root, 3600, "30", out.leaseDuration) &&
      out.leaseDuration < 5) {
    Fail("CloudIngest.LeaseDuration",
         "must be at least 5 seconds, found " + NumberText(out.leaseDuration),
         "use 30 (the default) or more");
  }
}

}  // namespace CloudIngest
