#pragma once
// Starts worker threads, and keeps going with fewer when the system refuses
// one (std::thread throws std::system_error: unhandled, that would end
// Orthanc through std::terminate). Tests inject a launcher that refuses.
// Each thread is named first ("ci-send-1" in `top -H` and, from Orthanc
// 1.12.2, in Orthanc's log) through the namer the SDK layer gives.
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "Core/Logger.h"

namespace CloudIngest {

// Service threads live until Stop(); Attempt threads for one send attempt
// only (Orthanc's log keeps a name for a thread id that a later thread of
// Orthanc's own may reuse, so the SDK layer names those for the system only).
enum class ThreadLifetime { Service, Attempt };

struct ThreadName {
  std::string text;  // at most kMaxLength characters, "ci-" first
  ThreadLifetime lifetime = ThreadLifetime::Service;
  static constexpr size_t kMaxLength = 15;  // Linux's limit
};

class ThreadStarter {
 public:
  using Launcher = std::function<std::thread(std::function<void()>)>;
  // Called first on each new thread, with its name; may be null.
  using Namer = std::function<void(const ThreadName&)>;
  explicit ThreadStarter(ILogger& log, Launcher launcher = nullptr, Namer namer = nullptr);

  // Up to `count` threads running `body`, named "<name>-1", "<name>-2"...;
  // fewer (maybe none) when the system refuses more. The first refusal is
  // logged, later ones are not.
  std::vector<std::thread> Start(size_t count, const std::function<void()>& body,
                                 const std::string& purpose, const ThreadName& name);
  // One thread, or an empty (not joinable) one when refused.
  std::thread StartOne(std::function<void()> body, const std::string& purpose,
                       const ThreadName& name);

 private:
  ILogger& log_;
  Launcher launcher_;
  Namer namer_;
  std::atomic<bool> refusalLogged_{false};
};

}  // namespace CloudIngest
