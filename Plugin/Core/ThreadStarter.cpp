#include "Core/ThreadStarter.h"

#include <system_error>

namespace CloudIngest {

ThreadStarter::ThreadStarter(ILogger& log, Launcher launcher)
    : log_(log), launcher_(std::move(launcher)) {
  if (!launcher_) {
    launcher_ = [](std::function<void()> body) { return std::thread(std::move(body)); };
  }
}

std::vector<std::thread> ThreadStarter::Start(size_t count, const std::function<void()>& body,
                                              const std::string& purpose) {
  std::vector<std::thread> threads;
  threads.reserve(count);
  for (size_t i = 0; i < count; i++) {
    std::thread t = StartOne(body, purpose);
    if (!t.joinable()) break;
    threads.push_back(std::move(t));
  }
  return threads;
}

std::thread ThreadStarter::StartOne(std::function<void()> body, const std::string& purpose) {
  try {
    return launcher_(std::move(body));
  } catch (const std::system_error& e) {
    if (!refusalLogged_.exchange(true)) {
      log_.Error("CloudIngest: the system refused a new thread for " + purpose + " (" + e.what() +
                 "); going on with the threads that exist (logged once)");
    }
    return {};
  }
}

}  // namespace CloudIngest
