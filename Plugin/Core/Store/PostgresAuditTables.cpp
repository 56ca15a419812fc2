// The PostgreSQL store's audit chain heads (a settings row per node: each node
// keeps its own audit file) and the studies' receipts.
#include "Core/Store/PostgresStudyStore.h"

namespace CloudIngest {

namespace {

std::string HeadKey(const std::string& node) {
  return "audit_head:" + node;
}

}  // namespace

std::optional<std::string> PostgresStudyStore::GetAuditHead(const std::string& node) {
  return Run("GetAuditHead", Access::Read, [&](PgSession& session) -> std::optional<std::string> {
    const PgResult result =
        session.Exec("SELECT value FROM settings WHERE key = $1", {HeadKey(node)}, "GetAuditHead");
    if (result.Rows() == 0 || result.IsNull(0, 0)) return std::nullopt;
    return result.Text(0, 0);
  });
}

void PostgresStudyStore::SetAuditHead(const std::string& node, const std::string& head) {
  Run("SetAuditHead", Access::Write, [&](PgSession& session) {
    session.Exec(
        "INSERT INTO settings(key, value) VALUES ($1, $2) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        {HeadKey(node), head}, "SetAuditHead");
  });
}

void PostgresStudyStore::SaveReceipt(const std::string& orthancId, const std::string& receipt) {
  Run("SaveReceipt", Access::Write, [&](PgSession& session) {
    session.Exec(
        "INSERT INTO receipts(orthanc_id, receipt) VALUES ($1, $2) "
        "ON CONFLICT (orthanc_id) DO UPDATE SET receipt = excluded.receipt",
        {orthancId, receipt}, "SaveReceipt");
  });
}

std::optional<std::string> PostgresStudyStore::GetReceipt(const std::string& orthancId) {
  return Run("GetReceipt", Access::Read, [&](PgSession& session) -> std::optional<std::string> {
    const PgResult result = session.Exec("SELECT receipt FROM receipts WHERE orthanc_id = $1",
                                         {orthancId}, "GetReceipt");
    if (result.Rows() == 0) return std::nullopt;
    return result.Text(0, 0);
  });
}

}  // namespace CloudIngest
