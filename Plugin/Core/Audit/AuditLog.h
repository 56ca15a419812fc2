#pragma once
// The audit log (docs/REFERENCE.md, Audit log): one JSON object per line,
// appended and flushed before the step it records is reported as done. Thread-safe.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "Core/Audit/AuditChain.h"

namespace CloudIngest {

struct AuditEvent {
  std::string event;  // token_issued, order_created, url_issued, upload_ok, upload_failed,
                      // metadata_added, study_sent, study_failed, manual_send
  std::string orthancStudyId;
  std::string studyInstanceUid;
  std::string pseudonymousStudyInstanceUid;  // the UID the cloud saw, when de-identified
  std::string orderId;
  std::string sopInstanceUid;
  std::string url;     // logged without its query string
  int64_t bytes = -1;  // omitted when < 0
  std::string sha256;
  long httpStatus = 0;   // omitted when 0
  unsigned attempt = 0;  // omitted when 0
  std::string user;
  std::string method;  // access_denied: the refused request
  std::string route;
  std::string detail;  // free text (error message), never a secret
};

// How records are chained and where they also go (Core/Audit/AuditChain.h).
struct AuditChainSettings {
  std::string node;  // this node's name, in every record
  std::string key;   // AuditKey; empty: no hmac
  // The chain's head in the plugin's store (Encode()d); both may be empty
  // (then the head is read back from the file at start-up).
  std::function<std::optional<std::string>()> loadHead;
  std::function<void(const std::string&)> saveHead;
  // Called with each line as written (no newline), in seq order, under the
  // log's lock: must only queue it (the syslog spool).
  std::function<void(const std::string& line, const AuditEvent& event, double now)> forward;
};

class AuditError : public std::runtime_error {
 public:
  explicit AuditError(const std::string& what) : std::runtime_error(what) {}
};

class AuditLog {
 public:
  // Opens (creates) the file in append mode. Throws AuditError.
  explicit AuditLog(const std::string& path, AuditChainSettings chain = {});
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  // Throws AuditError when the line cannot be written and flushed (disk full):
  // the caller must not report the step as done.
  void Record(const AuditEvent& event, double now);
  const std::string& Path() const { return path_; }
  // Checks the current file against the chain's head (GET /audit/verify).
  AuditVerification Verify();
  AuditHead Head();

 private:
  void Open();
  // A file renamed away (logrotate) or removed: a new one is started, its
  // first record continuing the chain. Called with the lock held.
  void FollowRotation();
  void LoadHead();
  void WriteLocked(const std::string& text);

  std::string path_;
  AuditChainSettings chain_;
  std::mutex mutex_;
  int fd_ = -1;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  AuditHead head_;
};

}  // namespace CloudIngest
