#pragma once
// CONTRACT section 4: one JSON object per line, appended and flushed before
// the step it records is reported as done. Thread-safe.
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>

namespace CloudIngest {

struct AuditEvent {
  std::string event;  // token_issued, order_created, url_issued, upload_ok, upload_failed,
                      // metadata_added, study_sent, study_failed, manual_send
  std::string orthancStudyId;
  std::string studyInstanceUid;
  std::string orderId;
  std::string sopInstanceUid;
  std::string url;     // logged without its query string
  int64_t bytes = -1;  // omitted when < 0
  std::string sha256;
  long httpStatus = 0;   // omitted when 0
  unsigned attempt = 0;  // omitted when 0
  std::string user;
  std::string detail;  // free text (error message), never a secret
};

class AuditError : public std::runtime_error {
 public:
  explicit AuditError(const std::string& what) : std::runtime_error(what) {}
};

class AuditLog {
 public:
  // Opens (creates) the file in append mode. Throws AuditError.
  explicit AuditLog(const std::string& path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  // Throws AuditError when the line cannot be written and flushed (disk full):
  // the caller must not report the step as done.
  void Record(const AuditEvent& event, double now);
  const std::string& Path() const { return path_; }

 private:
  std::string path_;
  std::mutex mutex_;
  int fd_ = -1;
};

// "2026-11-28T17:04:26.123Z"
std::string FormatIsoTime(double unixSeconds);

}  // namespace CloudIngest
