// The SQLite store's audit chain head (a settings row per node) and receipts.
#include <sqlite3.h>

#include "Core/Store/SqliteStatement.h"
#include "Core/Store/SqliteStudyStore.h"

namespace CloudIngest {

namespace {

const char* const kGetSetting = "SELECT value FROM settings WHERE key = :key";
const char* const kSetSetting =
    "INSERT INTO settings(key, value) VALUES (:key, :value) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value";
const char* const kGetReceipt = "SELECT receipt FROM receipts WHERE orthanc_id = :id";
const char* const kSetReceipt =
    "INSERT INTO receipts(orthanc_id, receipt) VALUES (:id, :receipt) "
    "ON CONFLICT(orthanc_id) DO UPDATE SET receipt = excluded.receipt";

std::string HeadKey(const std::string& node) {
  return "audit_head:" + node;
}

}  // namespace

std::optional<std::string> SqliteStudyStore::GetAuditHead(const std::string& node) {
  static const std::string op = "GetAuditHead";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_, kGetSetting, op);
  s.Bind(":key", HeadKey(node));
  if (!s.Step() || s.IsNull(0)) return std::nullopt;
  return s.Text(0);
}

void SqliteStudyStore::SetAuditHead(const std::string& node, const std::string& head) {
  static const std::string op = "SetAuditHead";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement(db_, kSetSetting, op).Bind(":key", HeadKey(node)).Bind(":value", head).Run();
}

void SqliteStudyStore::SaveReceipt(const std::string& orthancId, const std::string& receipt) {
  static const std::string op = "SaveReceipt";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement(db_, kSetReceipt, op).Bind(":id", orthancId).Bind(":receipt", receipt).Run();
}

std::optional<std::string> SqliteStudyStore::GetReceipt(const std::string& orthancId) {
  static const std::string op = "GetReceipt";
  std::lock_guard<std::mutex> lock(mutex_);
  SqliteStatement s(db_, kGetReceipt, op);
  s.Bind(":id", orthancId);
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

}  // namespace CloudIngest
