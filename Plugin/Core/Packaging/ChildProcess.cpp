#include "Core/Packaging/ChildProcess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <thread>

namespace CloudIngest {

namespace {
constexpr std::chrono::milliseconds kPollInterval{50};  // how often Wait looks at the child
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::vector<std::string>& environment,
                           const std::string& stdoutPath, const std::string& stderrPath) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (const std::string& entry : environment) env.push_back(const_cast<char*>(entry.c_str()));
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdoutPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, stderrPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  // A clean signal state: the host may block or ignore signals in its threads.
  sigset_t none;
  sigemptyset(&none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  // posix_spawnp searches PATH for a bare name and takes a path as is.
  const int error = ::posix_spawnp(&pid_, args[0], &actions, &attributes, args.data(), env.data());
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    pid_ = -1;
    spawnError_ = error;
  }
}

ChildProcess::End ChildProcess::Wait(std::chrono::milliseconds timeout,
                                     const std::function<bool()>& shouldStop) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) {
        exitCode_ = WEXITSTATUS(status);
        return End::Exited;
      }
      signal_ = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      return End::Signalled;
    }
    if (done < 0 && errno != EINTR) {
      // ECHILD: the host reaps children itself (SIGCHLD ignored); the
      // outputs will tell whether it worked.
      pid_ = -1;
      return End::Unknown;
    }
    if (shouldStop && shouldStop()) {
      Kill();
      return End::Stopped;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      Kill();
      return End::TimedOut;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

void ChildProcess::Kill() noexcept {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);  // the whole group it leads
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

}  // namespace CloudIngest
