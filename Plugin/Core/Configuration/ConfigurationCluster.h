#pragma once
// The keys of a node in a cluster (several Orthanc nodes on one PostgreSQL
// store): Database as a postgresql:// URI, DatabaseSchema, NodeName and
// LeaseDuration (docs/REFERENCE.md, "Several nodes").
#include <json/value.h>

#include <string>

namespace CloudIngest {

struct ClusterSettings {
  std::string nodeName;       // how this node appears in status, history and the audit log
  double leaseDuration = 30;  // seconds a claim lasts without renewal
  std::string databaseSchema = "cloud_ingest";  // PostgreSQL only
  // Orthanc's StableAge: a study is sent once no node added an instance for so long.
  double stableAge = 60;
  // Database names a store shared by several nodes (PostgreSQL): Orthanc's
  // per-node StableStudy then needs the cluster-wide check.
  bool sharedStore = false;
};

// A postgresql:// or postgres:// URI (libpq's syntax): the shared store of a
// cluster. Anything else names the embedded SQLite file.
bool IsPostgresUri(const std::string& database);

struct Configuration;

// With a shared store, the defaults of the files a node keeps for itself
// carry its NodeName: nodes often share IndexDirectory (one storage volume,
// Docker/docker-compose.cluster.yml). AuditLog (and so its syslog spool),
// TemporaryDirectory and the webhook outbox; keys set in `section` stay.
void UseNodeFileNames(const Json::Value& section, const std::string& indexDirectory,
                      Configuration& config);

// Reads the cluster keys of the CloudIngest section into `out` (whose
// nodeName and stableAge hold Orthanc's defaults) and checks `database`.
void ReadClusterSettings(const Json::Value& section, const std::string& database,
                         ClusterSettings& out);

}  // namespace CloudIngest
