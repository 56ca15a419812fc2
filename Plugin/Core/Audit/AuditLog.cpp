#include "Core/Audit/AuditLog.h"

#include <fcntl.h>
#include <json/json.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/algorithm/string/predicate.hpp>
#include <boost/range/iterator_range.hpp>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <stdexcept>

#include "Core/Hashes.h"
#include "Core/Time.h"
#include "Core/Url.h"  // RedactUrl

namespace CloudIngest {

namespace {

// Longest `detail` kept: a whole HTML error page has no place in the log.
constexpr size_t kMaxDetailBytes = 4096;

std::string ErrnoText(int error) {
  char buffer[256];
  // GNU strerror_r may return a static string instead of filling the buffer.
  return strerror_r(error, buffer, sizeof(buffer));
}

bool StartsWithNoCase(const std::string& text, size_t position, const char* prefix) {
  return boost::algorithm::istarts_with(
      boost::make_iterator_range(text.begin() + static_cast<std::ptrdiff_t>(position), text.end()),
      prefix, std::locale::classic());
}

bool EndsUrl(char c) {
  return std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\'' || c == '<' ||
         c == '>' || c == '`';
}

// Redacts every http(s) URL in free text (query, fragment, user:password):
// a presigned URL's signature must not reach the log. (A hand-written scan,
// not std::regex, whose libstdc++ implementation recurses per character.)
std::string StripUrlQueries(const std::string& text) {
  std::string result;
  result.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (StartsWithNoCase(text, i, "http://") || StartsWithNoCase(text, i, "https://")) {
      size_t end = i;
      while (end < text.size() && !EndsUrl(text[end])) {
        ++end;
      }
      result += RedactUrl(text.substr(i, end - i));
      i = end;
    } else {
      result += text[i++];
    }
  }
  return result;
}

// "Bearer <token>" -> "Bearer [redacted]", in case an error message echoes a header.
std::string RedactBearer(const std::string& text) {
  std::string result;
  result.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const bool wordStart = i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1]));
    if (wordStart && StartsWithNoCase(text, i, "bearer ")) {
      result.append(text, i, 7);
      size_t end = i + 7;
      while (end < text.size() && text[end] == ' ') {
        ++end;
      }
      const size_t tokenStart = end;
      while (end < text.size() && !EndsUrl(text[end]) && text[end] != ',' && text[end] != ';') {
        ++end;
      }
      if (end > tokenStart) {
        result += "[redacted]";
      }
      i = end;
    } else {
      result += text[i++];
    }
  }
  return result;
}

// Replaces invalid UTF-8 with U+FFFD so every line stays valid JSON text.
std::string ToValidUtf8(const std::string& text) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string result;
  result.reserve(text.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t i = 0;
  while (i < size) {
    const unsigned char c = bytes[i];
    size_t length = 0;
    uint32_t minimum = 0;
    if (c < 0x80) {
      result += static_cast<char>(c);
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2;
      minimum = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      minimum = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      minimum = 0x10000;
    }
    bool valid = length != 0 && i + length <= size;
    uint32_t codePoint = length != 0 ? (c & (0x7F >> length)) : 0;
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (bytes[i + k] & 0xC0) == 0x80;
      codePoint = (codePoint << 6) | (bytes[i + k] & 0x3F);
    }
    valid = valid && codePoint >= minimum && codePoint <= 0x10FFFF &&
            !(codePoint >= 0xD800 && codePoint <= 0xDFFF);
    if (valid) {
      result.append(text, i, length);
      i += length;
    } else {
      result += kReplacement;
      ++i;
    }
  }
  return result;
}

std::string CleanDetail(std::string detail) {
  if (detail.size() > kMaxDetailBytes) {
    detail.resize(kMaxDetailBytes);  // a cut UTF-8 sequence is repaired below
    detail += "...";
  }
  return ToValidUtf8(RedactBearer(StripUrlQueries(detail)));
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
    : path_(path), chain_(std::move(chain)) {
  Open();
  LoadHead();
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
  std::optional<AuditHead> stored;
  if (chain_.loadHead) {
    if (auto text = chain_.loadHead()) stored = AuditHead::Decode(*text);
  }
  if (stored) {
    head_ = *stored;
    if (emptyFile) head_.fileFirstSeq = head_.seq + 1;  // rotated while Orthanc was down
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
    FollowRotation();
    head = head_;
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      throw AuditError("cannot read the audit log '" + path_ + "': " + ErrnoText(errno));
    }
    size = st.st_size;
  }
  // Read outside the lock up to the size the head belongs to: sends go on.
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw AuditError("cannot read the audit log '" + path_ + "'");
  std::string text(static_cast<size_t>(size), '\0');
  in.read(&text[0], size);
  text.resize(static_cast<size_t>(in.gcount()));
  return VerifyAuditText(text, chain_.key, head);
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
    line.Add("detail", CleanDetail(event.detail));
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
