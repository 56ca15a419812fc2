#include "Core/Audit/SyslogForwarder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "Core/Audit/AuditLog.h"  // AuditError
#include "Core/Audit/SyslogConnection.h"

namespace CloudIngest {

namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr double kFirstRetryDelay = 0.2;

int OpenOrThrow(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    throw AuditError("cannot open the syslog spool '" + path + "': " + std::strerror(errno));
  }
  return fd;
}

uint64_t FileSize(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

SyslogForwarder::SyslogForwarder(const SyslogSettings& settings, const std::string& spoolPath,
                                 ILogger& log, ThreadStarter& threads)
    : settings_(settings), spoolPath_(spoolPath), log_(log) {
  spool_ = OpenOrThrow(spoolPath_, O_RDWR | O_APPEND);
  offsetFile_ = OpenOrThrow(spoolPath_ + ".sent", O_RDWR);
  size_ = FileSize(spool_);
  // A line cut by a crash would join the next one: drop it.
  std::vector<char> tail(std::min<uint64_t>(size_, kReadChunk));
  if (!tail.empty() &&
      ::pread(spool_, tail.data(), tail.size(), static_cast<off_t>(size_ - tail.size())) ==
          static_cast<ssize_t>(tail.size()) &&
      tail.back() != '\n') {
    const auto lastNewline = std::find(tail.rbegin(), tail.rend(), '\n');
    const uint64_t keep = size_ - static_cast<uint64_t>(lastNewline - tail.rbegin());
    if (::ftruncate(spool_, static_cast<off_t>(keep)) == 0) size_ = keep;
  }
  char text[32] = {};
  if (::pread(offsetFile_, text, sizeof(text) - 1, 0) > 0) {
    offset_ = std::strtoull(text, nullptr, 10);
  }
  if (offset_ > size_) offset_ = 0;  // the spool was replaced: send it all
  std::string message;
  for (uint64_t at = offset_, next = 0; at < size_; at = next) {
    const uint64_t saved = offset_;
    offset_ = at;
    const bool found = ReadNextLocked(message, next);
    offset_ = saved;
    if (!found) break;
    pending_++;
  }
  thread_ = threads.StartOne([this] { Run(); }, "audit syslog delivery", {"ci-syslog"});
  if (!thread_.joinable()) {
    log_.Error("CloudIngest: audit records are spooled in '" + spoolPath_ +
               "' but cannot be delivered (no thread)");
  }
}

SyslogForwarder::~SyslogForwarder() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  ::close(spool_);
  ::close(offsetFile_);
}

void SyslogForwarder::Enqueue(const std::string& message) {
  const std::string line = message + "\n";
  std::lock_guard<std::mutex> lock(mutex_);
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(spool_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      if (done > 0) (void)::ftruncate(spool_, static_cast<off_t>(size_));
      throw AuditError("cannot write to the syslog spool '" + spoolPath_ +
                       "': " + std::strerror(error));
    }
    done += static_cast<size_t>(n);
  }
  size_ += line.size();
  pending_++;
  wake_.notify_all();
}

uint64_t SyslogForwarder::Pending() {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_;
}

bool SyslogForwarder::ReadNextLocked(std::string& message, uint64_t& next) {
  message.clear();
  std::vector<char> buffer(kReadChunk);
  for (uint64_t at = offset_; at < size_;) {
    const ssize_t n = ::pread(spool_, buffer.data(),
                              static_cast<size_t>(std::min<uint64_t>(kReadChunk, size_ - at)),
                              static_cast<off_t>(at));
    if (n <= 0) return false;
    const auto end = buffer.begin() + n;
    const auto newline = std::find(buffer.begin(), end, '\n');
    message.append(buffer.begin(), newline);
    if (newline != end) {
      next = offset_ + message.size() + 1;
      return true;
    }
    at += static_cast<uint64_t>(n);
  }
  return false;
}

void SyslogForwarder::SaveOffsetLocked() {
  char text[32];
  const int length =
      std::snprintf(text, sizeof(text), "%020llu\n", static_cast<unsigned long long>(offset_));
  if (::pwrite(offsetFile_, text, static_cast<size_t>(length), 0) != length) {
    // Harmless but for duplicates after a restart: the spool is read again.
    log_.Warning("CloudIngest: cannot record syslog delivery progress in '" + spoolPath_ +
                 ".sent': " + std::strerror(errno));
  }
}

void SyslogForwarder::CompactLocked() {
  // Everything delivered: start the spool again instead of letting it grow.
  if (offset_ == 0 || offset_ != size_) return;
  if (::ftruncate(spool_, 0) != 0) return;
  offset_ = size_ = 0;
  SaveOffsetLocked();
}

void SyslogForwarder::Run() {
  std::unique_ptr<SyslogConnection> connection;
  double delay = kFirstRetryDelay;
  bool down = false;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    std::string message;
    uint64_t next = 0;
    if (!ReadNextLocked(message, next)) {
      CompactLocked();
      wake_.wait_for(lock, std::chrono::seconds(1));
      continue;
    }
    lock.unlock();
    std::string error;
    try {
      if (!connection) connection = std::make_unique<SyslogConnection>(settings_);
      connection->Send(message);
    } catch (const std::exception& e) {
      error = e.what();
      connection.reset();
    }
    lock.lock();
    if (!error.empty()) {
      if (!down) {
        log_.Warning("CloudIngest: the audit syslog collector is unreachable (" + error +
                     "); records are spooled in '" + spoolPath_ + "' until it is back");
      }
      down = true;
      wake_.wait_for(lock, std::chrono::duration<double>(delay), [this] { return stopping_; });
      delay = std::min(delay * 2, kMaxRetryDelay);
      continue;
    }
    if (down) {
      log_.Warning("CloudIngest: the audit syslog collector is reachable again; sending the " +
                   std::to_string(pending_) + " spooled record(s)");
    }
    down = false;
    delay = kFirstRetryDelay;
    offset_ = next;
    if (pending_ > 0) pending_--;
    SaveOffsetLocked();
  }
}

}  // namespace CloudIngest
