#pragma once
// AuditSyslog: every audit record also goes to a syslog collector. Records
// are appended to a spool file first (never blocking a send), and one thread
// delivers them in order, keeping how far it got in "<spool>.sent"; while the
// collector is down they wait in the spool, across restarts too.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "Core/Configuration/Configuration.h"
#include "Core/Logger.h"
#include "Core/ThreadStarter.h"

namespace CloudIngest {

class SyslogForwarder {
 public:
  // Opens (creates) the spool; throws AuditError when it cannot. Starts the
  // delivery thread.
  SyslogForwarder(const SyslogSettings& settings, const std::string& spoolPath, ILogger& log,
                  ThreadStarter& threads);
  ~SyslogForwarder();  // stops the thread; what is not delivered stays spooled
  SyslogForwarder(const SyslogForwarder&) = delete;
  SyslogForwarder& operator=(const SyslogForwarder&) = delete;

  // Appends one formatted message (no newline in it). Throws AuditError.
  void Enqueue(const std::string& message);
  // Messages spooled and not yet delivered.
  uint64_t Pending();

  // Longest wait between two connection attempts while the collector is down.
  static constexpr double kMaxRetryDelay = 5.0;

 private:
  void Run();
  // The next undelivered message and where the one after it starts.
  bool ReadNextLocked(std::string& message, uint64_t& next);
  void SaveOffsetLocked();
  void CompactLocked();

  const SyslogSettings settings_;
  const std::string spoolPath_;
  ILogger& log_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  int spool_ = -1;
  int offsetFile_ = -1;
  uint64_t offset_ = 0;  // of the first undelivered message
  uint64_t size_ = 0;    // of the spool
  uint64_t pending_ = 0;
  std::thread thread_;
};

}  // namespace CloudIngest
