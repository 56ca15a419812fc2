#include "Core/Audit/AuditLog.h"

#include <fcntl.h>
#include <json/json.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "Core/Audit/AuditFiles.h"
#include "Core/Audit/AuditText.h"
#include "Core/Hashes.h"
#include "Core/Time.h"
#include "Core/Url.h"  // RedactUrl

namespace CloudIngest {

namespace {

uint64_t KillAfterSeqForTests() {
  const char* value = std::getenv("CLOUD_INGEST_TEST_KILL_AFTER_AUDIT_SEQ");
  return value != nullptr ? std::strtoull(value, nullptr, 10) : 0;
}

std::string ErrnoText(int error) {
  char buffer[256];
  // GNU strerror_r may return a static string instead of filling the buffer.
  return strerror_r(error, buffer, sizeof(buffer));
}

class LineBuilder {
 public:
  LineBuilder() {
    builder_["indentation"] = "";
    builder_["emitUTF8"] = true;
  }
  // Keys in a fixed, readable order (Json::Value would sort them).
  void Add(const char* key, const Json::Value& value) {
    line_ += line_.empty() ? "{" : ",";
    line_ += "\"";
    line_ += key;
    line_ += "\":";
    line_ += Json::writeString(builder_, value);
  }
  void AddText(const char* key, const std::string& value) {
    if (!value.empty()) {
      Add(key, ToValidUtf8(value));
    }
  }
  std::string Finish() { return (line_.empty() ? "{" : line_) + "}\n"; }

 private:
  Json::StreamWriterBuilder builder_;
  std::string line_;
};

}  // namespace

AuditLog::AuditLog(const std::string& path, AuditChainSettings chain)
    : path_(path), chain_(std::move(chain)), killAfterSeq_(KillAfterSeqForTests()) {
  Open();
  try {
    LoadHead();
  } catch (...) {
    ::close(fd_);  // no destructor runs
    throw;
  }
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) {
    ::fdatasync(fd_);  // a clean shutdown also survives a power cut
    ::close(fd_);
  }
}

void AuditLog::Open() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    throw AuditError("cannot open the audit log '" + path_ + "': " + ErrnoText(errno));
  }
  struct stat st {};
  if (::fstat(fd_, &st) == 0) {
    device_ = st.st_dev;
    inode_ = st.st_ino;
  }
}

void AuditLog::LoadHead() {
  struct stat st {};
  const bool known = ::fstat(fd_, &st) == 0;
  const bool emptyFile = known && st.st_size == 0;
  const bool regularFile = known && S_ISREG(st.st_mode);  // not e.g. a FIFO or /dev/full
  const std::vector<std::string> lastLines =
      regularFile && !emptyFile ? ReadLastAuditLines(path_) : std::vector<std::string>{};
  if (!lastLines.empty()) RefuseOtherNodesFile(lastLines.back());
  std::optional<AuditHead> stored;
  if (chain_.loadHead) {
    if (auto text = chain_.loadHead()) stored = AuditHead::Decode(*text);
  }
  if (stored) {
    head_ = *stored;
    if (emptyFile) head_.fileFirstSeq = head_.seq + 1;  // rotated while Orthanc was down
    head_ = ReconcileAuditHead(head_, lastLines, chain_.key);
  } else if (regularFile) {
    // No head stored (first start, or a database rebuilt): the file's last
    // chained record is where the chain stands.
    std::ifstream in(path_, std::ios::binary);
    std::string line;
    std::optional<uint64_t> first;
    while (std::getline(in, line)) {
      Json::Value record;
      if (ParseAuditLine(line, record) && record["seq"].isUInt64()) {
        head_.seq = record["seq"].asUInt64();
        head_.sha256 = Sha256Hex(line);
        if (!first) first = head_.seq;
      }
    }
    head_.fileFirstSeq = first.value_or(head_.seq + 1);
  }
  if (chain_.saveHead) chain_.saveHead(head_.Encode());
}

void AuditLog::RefuseOtherNodesFile(const std::string& lastLine) const {
  Json::Value record;
  if (chain_.otherNodesFile != OtherNodesFile::Refuse || !ParseAuditLine(lastLine, record) ||
      !record["node"].isString() || record["node"].asString() == chain_.node) {
    return;
  }
  const std::string other = record["node"].asString();
  throw AuditFileOfAnotherNode("the last record of '" + path_ + "' was written by node \"" + other +
                                   "\", not by this node \"" + chain_.node +
                                   "\" (two nodes appending to one file break its chain)",
                               other);
}

void AuditLog::FollowRotation() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && st.st_dev == device_ && st.st_ino == inode_) return;
  const int old = fd_;
  Open();  // throws: the old descriptor stays closed below either way
  ::fdatasync(old);
  ::close(old);
  head_.fileFirstSeq = head_.seq + 1;
  if (chain_.saveHead) chain_.saveHead(head_.Encode());
}

AuditHead AuditLog::Head() {
  std::lock_guard<std::mutex> lock(mutex_);
  return head_;
}

AuditVerification AuditLog::Verify() {
  AuditHead head;
  off_t size = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    head = head_;
    struct stat open {};
    if (::fstat(fd_, &open) != 0) {
      throw AuditError("cannot read the audit log '" + path_ + "': " + ErrnoText(errno));
    }
    struct stat atPath {};
    const bool exists = ::stat(path_.c_str(), &atPath) == 0;
    if (exists && atPath.st_dev == open.st_dev && atPath.st_ino == open.st_ino) {
      size = open.st_size;
    } else if (!exists && open.st_nlink == 0) {
      AuditVerification missing;
      missing.ok = false;
      missing.firstBadSeq = head.fileFirstSeq;
      missing.reason = "the audit file '" + path_ + "' is missing (deleted?)";
      if (head.seq >= head.fileFirstSeq) {
        missing.reason += ": records " + std::to_string(head.fileFirstSeq) + " to " +
                          std::to_string(head.seq) + " were in it";
      }
      return missing;
    } else {
      // Renamed away (rotated): checked as the next record will find it.
      head.fileFirstSeq = head.seq + 1;
      size = exists ? atPath.st_size : 0;
    }
  }
  // Read outside the lock up to the size the head belongs to: sends go on.
  std::string text;
  if (size > 0) {
    std::ifstream in(path_, std::ios::binary);
    if (!in) throw AuditError("cannot read the audit log '" + path_ + "'");
    text.assign(static_cast<size_t>(size), '\0');
    in.read(&text[0], size);
    text.resize(static_cast<size_t>(in.gcount()));
  }
  return VerifyAuditText(text, chain_.key, head, [this](const AuditLink& last) {
    return FindRotatedAuditFile(path_, last, chain_.key);
  });
}

void AuditLog::Record(const AuditEvent& event, double now) {
  LineBuilder line;
  line.Add("time", FormatIsoTime(now));
  line.Add("event", ToValidUtf8(event.event));
  line.AddText("orthanc_study_id", event.orthancStudyId);
  line.AddText("study_instance_uid", event.studyInstanceUid);
  line.AddText("pseudonymous_study_instance_uid", event.pseudonymousStudyInstanceUid);
  line.AddText("order_id", event.orderId);
  line.AddText("sop_instance_uid", event.sopInstanceUid);
  line.AddText("url", RedactUrl(event.url));
  if (event.bytes >= 0) {
    line.Add("bytes", Json::Value(static_cast<Json::Int64>(event.bytes)));
  }
  line.AddText("sha256", event.sha256);
  if (event.httpStatus != 0) {
    line.Add("http_status", Json::Value(static_cast<Json::Int64>(event.httpStatus)));
  }
  if (event.attempt != 0) {
    line.Add("attempt", Json::Value(static_cast<Json::UInt>(event.attempt)));
  }
  line.AddText("user", event.user);
  line.AddText("method", event.method);
  line.AddText("route", event.route);
  if (!event.detail.empty()) {
    line.Add("detail", CleanAuditDetail(event.detail));
  }

  std::lock_guard<std::mutex> lock(mutex_);
  FollowRotation();
  // The chain's fields come last, so a record reads as before up to them.
  line.Add("seq", Json::Value(static_cast<Json::UInt64>(head_.seq + 1)));
  line.AddText("node", chain_.node);
  line.Add("prev_sha256", head_.sha256);
  std::string record = line.Finish();
  record.pop_back();  // the newline
  if (!chain_.key.empty()) record = SignAuditLine(record, chain_.key);
  WriteLocked(record + "\n");
  if (killAfterSeq_ == head_.seq + 1) ::kill(::getpid(), SIGKILL);  // the test hook
  head_.seq++;
  head_.sha256 = Sha256Hex(record);
  if (chain_.saveHead) {
    try {
      chain_.saveHead(head_.Encode());
    } catch (const std::exception& e) {
      // The line is written; the step is reported as failed and done again.
      throw AuditError(std::string("cannot keep the audit chain's head: ") + e.what());
    }
  }
  if (chain_.forward) chain_.forward(record, event, now);
}

void AuditLog::WriteLocked(const std::string& text) {
  // Where this line starts, to take a half-written line back if the disk fills.
  const off_t start = ::lseek(fd_, 0, SEEK_END);
  const char* data = text.data();
  size_t remaining = text.size();
  while (remaining > 0) {
    const ssize_t written = ::write(fd_, data, remaining);
    if (written <= 0) {
      if (written < 0 && errno == EINTR) {
        continue;
      }
      const int error = written < 0 ? errno : EIO;  // 0 would loop forever
      if (start >= 0 && remaining != text.size()) {
        (void)::ftruncate(fd_, start);
      }
      throw AuditError("cannot write to the audit log '" + path_ + "': " + ErrnoText(error));
    }
    data += written;
    remaining -= static_cast<size_t>(written);
  }
  // write() has handed the line to the kernel: it survives the process being
  // killed. No fdatasync per line (thousands of instances per study).
}

}  // namespace CloudIngest
