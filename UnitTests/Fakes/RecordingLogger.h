#pragma once
// A logger that keeps every line, thread-safe (workers log from their own
// threads), for tests that look for what was logged.
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "Core/Logger.h"

namespace CloudIngest::Testing {

class RecordingLogger : public ILogger {
 public:
  enum class Level { Info, Warning, Error };

  void Info(const std::string& m) override { Add(Level::Info, m); }
  void Warning(const std::string& m) override { Add(Level::Warning, m); }
  void Error(const std::string& m) override { Add(Level::Error, m); }

  // Lines of any level that contain `text`.
  size_t Count(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t n = 0;
    for (const auto& [level, line] : lines_) n += line.find(text) != std::string::npos;
    return n;
  }
  bool Logged(const std::string& text) { return Count(text) > 0; }
  std::vector<std::string> Errors() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> errors;
    for (const auto& [level, line] : lines_) {
      if (level == Level::Error) errors.push_back(line);
    }
    return errors;
  }

 private:
  void Add(Level level, const std::string& m) {
    std::lock_guard<std::mutex> lock(mutex_);
    lines_.emplace_back(level, m);
  }
  std::mutex mutex_;
  std::vector<std::pair<Level, std::string>> lines_;
};

}  // namespace CloudIngest::Testing
