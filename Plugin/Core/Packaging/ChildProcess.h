#pragma once
// A child process run without a shell, in its own process group (so that
// whatever it starts, e.g. pigz under dcm2niix, is killed with it), with only
// the environment it is given. The destructor kills and reaps a child that is
// still running, so no exception path leaves one behind.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace CloudIngest {

class ChildProcess {
 public:
  enum class End { Exited, Signalled, TimedOut, Stopped, Unknown };

  // argv[0] is searched in PATH when it holds no '/'. `environment` ("NAME=value"
  // entries) is all the child gets; stdin is /dev/null, stdout and stderr go
  // to the files named. SpawnError() is the errno when it could not start.
  ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& environment,
               const std::string& stdoutPath, const std::string& stderrPath);
  ~ChildProcess() { Kill(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int SpawnError() const { return spawnError_; }

  // Waits until the child ends, the time is up or shouldStop says so (then
  // the child is killed).
  End Wait(std::chrono::milliseconds timeout, const std::function<bool()>& shouldStop);

  int ExitCode() const { return exitCode_; }
  int Signal() const { return signal_; }

 private:
  void Kill() noexcept;

  pid_t pid_ = -1;
  int spawnError_ = 0;
  int exitCode_ = -1;
  int signal_ = 0;
};

}  // namespace CloudIngest
