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

// Whether a file whose last record another node wrote may be continued.
enum class OtherNodesFile {
  Continue,  // one node: NodeName changed (its default follows the host name)
  Refuse,    // a cluster: two nodes on one file would break its chain
};

// How records are chained and where they also go (Core/Audit/AuditChain.h).
struct AuditChainSettings {
  std::string node;  // this node's name, in every record
  OtherNodesFile otherNodesFile = OtherNodesFile::Continue;
  std::string key;  // AuditKey; empty: no hmac
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

// With OtherNodesFile::Refuse: the file's last record names another node.
class AuditFileOfAnotherNode : public AuditError {
 public:
  AuditFileOfAnotherNode(const std::string& what, std::string node)
      : AuditError(what), node_(std::move(node)) {}
  const std::string& Node() const { return node_; }

 private:
  std::string node_;
};

class AuditLog {
 public:
  // Opens (creates) the file in append mode and reconciles the stored head
  // with its last records (ReconcileAuditHead). Throws AuditError.
  // Test hook: with CLOUD_INGEST_TEST_KILL_AFTER_AUDIT_SEQ=N in the
  // environment, the process kills itself (SIGKILL) right after writing
  // record N, before its head is stored (UnitTests/Integration/test_security.py).
  explicit AuditLog(const std::string& path, AuditChainSettings chain = {});
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  // Throws AuditError when the line cannot be written and flushed (disk full):
  // the caller must not report the step as done.
  void Record(const AuditEvent& event, double now);
  const std::string& Path() const { return path_; }
  // Checks the file at Path() against the chain's head (GET /audit/verify),
  // and that the file its first record chains to is beside it. Never creates
  // or follows a file: one renamed away is checked as the next record finds it.
  AuditVerification Verify();
  AuditHead Head();

 private:
  void Open();
  // A file renamed away (logrotate) or removed: a new one is started, its
  // first record continuing the chain. Called with the lock held.
  void FollowRotation();
  void LoadHead();
  void RefuseOtherNodesFile(const std::string& lastLine) const;
  void WriteLocked(const std::string& text);

  std::string path_;
  AuditChainSettings chain_;
  std::mutex mutex_;
  int fd_ = -1;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  AuditHead head_;
  uint64_t killAfterSeq_ = 0;  // the test hook; 0: off
};

}  // namespace CloudIngest
