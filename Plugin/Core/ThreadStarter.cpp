#include "Core/ThreadStarter.h"

#include <algorithm>
#include <system_error>

namespace CloudIngest {

ThreadStarter::ThreadStarter(ILogger& log, Launcher launcher, Namer namer)
    : log_(log), launcher_(std::move(launcher)), namer_(std::move(namer)) {
  if (!launcher_) {
    launcher_ = [](std::function<void()> body) { return std::thread(std::move(body)); };
  }
}

std::vector<std::thread> ThreadStarter::Start(size_t count, const std::function<void()>& body,
                                              const std::string& purpose, const ThreadName& name) {
  std::vector<std::thread> threads;
  threads.reserve(count);
  for (size_t i = 0; i < count; i++) {
    ThreadName numbered = name;
    numbered.text += "-" + std::to_string(i + 1);
    std::thread t = StartOne(body, purpose, numbered);
    if (!t.joinable()) break;
    threads.push_back(std::move(t));
  }
  return threads;
}

std::thread ThreadStarter::StartOne(std::function<void()> body, const std::string& purpose,
                                    const ThreadName& name) {
  if (namer_) {
    ThreadName shortened = name;
    shortened.text.resize(std::min(shortened.text.size(), ThreadName::kMaxLength));
    body = [namer = namer_, shortened, body = std::move(body)] {
      namer(shortened);
      body();
    };
  }
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
