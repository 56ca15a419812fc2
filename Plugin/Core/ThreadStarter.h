#pragma once
// Starts worker threads, and keeps going with fewer when the system refuses
// one (std::thread throws std::system_error: unhandled, that would end
// Orthanc through std::terminate). Tests inject a launcher that refuses.
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "Core/Logger.h"

namespace CloudIngest {

class ThreadStarter {
 public:
  using Launcher = std::function<std::thread(std::function<void()>)>;
  explicit ThreadStarter(ILogger& log, Launcher launcher = nullptr);

  // Up to `count` threads running `body`; fewer (maybe none) when the system
  // refuses more. The first refusal is logged, later ones are not.
  std::vector<std::thread> Start(size_t count, const std::function<void()>& body,
                                 const std::string& purpose);
  // One thread, or an empty (not joinable) one when refused.
  std::thread StartOne(std::function<void()> body, const std::string& purpose);

 private:
  ILogger& log_;
  Launcher launcher_;
  std::atomic<bool> refusalLogged_{false};
};

}  // namespace CloudIngest
