// The cluster keys: Database as a PostgreSQL URI, DatabaseSchema, NodeName,
// LeaseDuration, and Orthanc's StableAge taken as the cluster's.
#include <gtest/gtest.h>

#include <string>

#include "Core/Configuration/Configuration.h"

namespace {

using CloudIngest::ConfigurationError;
using CloudIngest::IsPostgresUri;
using CloudIngest::OrthancDefaults;
using CloudIngest::ParseConfiguration;

Json::Value Section() {
  Json::Value section(Json::objectValue);
  section["Url"] = "https://ingest.example.com/api";
  section["ClientId"] = "site-7";
  section["ClientSecret"] = "s3cret";
  return section;
}

OrthancDefaults Defaults() {
  OrthancDefaults defaults;
  defaults.indexDirectory = "/var/lib/orthanc/db";
  defaults.hostName = "pacs-2";
  defaults.httpPort = 8043;
  defaults.stableAge = 45;
  return defaults;
}

std::string ErrorFor(const Json::Value& section) {
  try {
    ParseConfiguration(section, Defaults());
  } catch (const ConfigurationError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ConfigurationCluster, DefaultsNameTheNodeAfterHostAndPortAndUseSqlite) {
  const auto config = ParseConfiguration(Section(), Defaults());
  EXPECT_EQ("pacs-2:8043", config.cluster.nodeName);
  EXPECT_EQ(30, config.cluster.leaseDuration);
  EXPECT_EQ("cloud_ingest", config.cluster.databaseSchema);
  EXPECT_EQ(45, config.cluster.stableAge);
  EXPECT_FALSE(config.cluster.sharedStore);
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest.db", config.database);
  EXPECT_FALSE(IsPostgresUri(config.database));
}

TEST(ConfigurationCluster, APostgresUriIsTheSharedStore) {
  for (const char* uri : {"postgresql://orthanc@db.local:5432/pacs", "postgres://db/pacs",
                          "postgresql://db/pacs?sslmode=verify-full"}) {
    Json::Value section = Section();
    section["Database"] = uri;
    section["DatabaseSchema"] = "ingest_2";
    section["NodeName"] = "orthanc-b";
    section["LeaseDuration"] = 12;
    const auto config = ParseConfiguration(section, Defaults());
    EXPECT_TRUE(IsPostgresUri(config.database)) << uri;
    EXPECT_TRUE(config.cluster.sharedStore) << uri;
    EXPECT_EQ(uri, config.database);
    EXPECT_EQ("ingest_2", config.cluster.databaseSchema);
    EXPECT_EQ("orthanc-b", config.cluster.nodeName);
    EXPECT_EQ(12, config.cluster.leaseDuration);
  }
  EXPECT_FALSE(IsPostgresUri("/var/lib/postgresql-data/cloud.db"));
  EXPECT_FALSE(IsPostgresUri("POSTGRESQL://db/pacs"));  // libpq's prefixes are case-sensitive
}

TEST(ConfigurationCluster, NodesOnAPostgresStoreKeepTheirOwnFilesByDefault) {
  // Nodes often share IndexDirectory (Docker/docker-compose.cluster.yml).
  const auto single = ParseConfiguration(Section(), Defaults());
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest-audit.jsonl", single.auditLog);
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest-tmp", single.temporaryDirectory);
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest-webhooks.db", single.webhookSpool);

  Json::Value section = Section();
  section["Database"] = "postgresql://orthanc@db.local:5432/pacs";
  section["NodeName"] = "orthanc-b";
  const auto node = ParseConfiguration(section, Defaults());
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest-audit-orthanc-b.jsonl", node.auditLog);
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest-tmp-orthanc-b", node.temporaryDirectory);
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest-webhooks-orthanc-b.db", node.webhookSpool);

  section.removeMember("NodeName");  // host name and port
  const auto unnamed = ParseConfiguration(section, Defaults());
  EXPECT_EQ("/var/lib/orthanc/db/cloud-ingest-audit-pacs-2:8043.jsonl", unnamed.auditLog);

  section["AuditLog"] = "/audit/orthanc.jsonl";  // set keys stay as they are
  section["TemporaryDirectory"] = "/scratch/ingest";
  const auto set = ParseConfiguration(section, Defaults());
  EXPECT_EQ("/audit/orthanc.jsonl", set.auditLog);
  EXPECT_EQ("/scratch/ingest", set.temporaryDirectory);
}

TEST(ConfigurationCluster, BadValuesStopWithOneLineNamingTheKey) {
  struct Case {
    const char* key;
    Json::Value value;
    const char* expected;
  };
  const Case cases[] = {
      {"Database", "postgresql://[db/pacs", "CloudIngest.Database: is not a valid PostgreSQL URI"},
      {"Database", "postgresql://db/pacs?nosuchoption=1", "CloudIngest.Database: is not a valid"},
      {"DatabaseSchema", "Cloud-Ingest",
       "CloudIngest.DatabaseSchema: expected a lower-case SQL name"},
      {"DatabaseSchema", "", "CloudIngest.DatabaseSchema: expected a lower-case SQL name"},
      {"NodeName", "two words", "CloudIngest.NodeName: expected 1 to 100 letters"},
      {"NodeName", 7, "CloudIngest.NodeName: expected a string"},
      {"LeaseDuration", 2, "CloudIngest.LeaseDuration: must be at least 5 seconds, found 2"},
      {"LeaseDuration", -1, "CloudIngest.LeaseDuration:"},
  };
  for (const auto& c : cases) {
    Json::Value section = Section();
    section[c.key] = c.value;
    const std::string message = ErrorFor(section);
    EXPECT_EQ(0u, message.find(c.expected)) << c.key << ": " << message;
    EXPECT_EQ(std::string::npos, message.find('\n')) << message;
    EXPECT_NE(std::string::npos, message.find("; ")) << message;
  }
}

TEST(ConfigurationCluster, AUriErrorNeverEchoesThePassword) {
  Json::Value section = Section();
  section["Database"] = "postgresql://orthanc:Hunter2Secret@[db/pacs";  // quoted by libpq
  const std::string message = ErrorFor(section);
  EXPECT_EQ(0u, message.find("CloudIngest.Database:")) << message;
  EXPECT_EQ(std::string::npos, message.find("Hunter2Secret")) << message;
}

}  // namespace
