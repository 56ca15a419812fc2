#include "NiftiConverter.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>

#include "Core/Hashes.h"

extern char** environ;

namespace CloudIngest {

namespace {

const char* const kOutputName = "dwi";  // dcm2niix's -f: fixed, so the outputs are predictable
const auto kPollInterval = std::chrono::milliseconds(50);
const size_t kMaxReasonLength = 300;

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One file-name component made of [A-Za-z0-9._-], never "." or "..".
std::string SafeComponent(const std::string& text, const std::string& fallback) {
  std::string safe;
  for (const char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    safe.push_back(ok ? c : '_');
  }
  if (safe.empty()) return fallback;
  if (safe.find_first_not_of('.') == std::string::npos) safe.assign(safe.size(), '_');
  return safe;
}

void ThrowIfStopped(const std::function<bool()>& shouldStop, const std::string& what) {
  if (shouldStop && shouldStop()) {
    throw NiftiCancelled("converting " + what + " to NIfTI was cancelled");
  }
}

bool IsExecutableFile(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
         ::access(path.c_str(), X_OK) == 0;
}

// A private folder, removed with everything in it when this goes away.
class WorkFolder {
 public:
  explicit WorkFolder(const std::string& parent) {
    std::string pattern = parent + "/" + NiftiConverter::kWorkFolderPrefix + "XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw ZipError("cannot create a work folder in " + parent + ": " + std::strerror(errno));
    }
    path_ = pattern;
  }
  ~WorkFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);  // does not follow links inside
  }
  WorkFolder(const WorkFolder&) = delete;
  WorkFolder& operator=(const WorkFolder&) = delete;
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void MakeFolder(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0) {
    throw ZipError("cannot create " + path + ": " + std::strerror(errno));
  }
}

void WriteWholeFile(const std::string& path, const std::string& content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw ZipError("cannot create " + path + ": " + std::strerror(errno));
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t count = ::write(fd, content.data() + done, content.size() - done);
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) {
      const int error = errno;
      ::close(fd);
      throw ZipError("cannot write " + path + ": " + std::strerror(error));
    }
    done += static_cast<size_t>(count);
  }
  if (::close(fd) != 0) {
    throw ZipError("cannot write " + path + ": " + std::strerror(errno));
  }
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The last non-empty line of a log, printable, trimmed and bounded: what
// dcm2niix said last before failing.
std::string LastLine(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = std::max<std::streamoff>(0, size - 8192);
  in.seekg(start);
  const std::string tail(std::istreambuf_iterator<char>(in), {});
  std::string last;
  std::istringstream lines(tail);
  for (std::string line; std::getline(lines, line);) {
    for (char& c : line) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    }
    const size_t first = line.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    last = line.substr(first, line.find_last_not_of(' ') - first + 1);
  }
  if (last.size() > kMaxReasonLength) last = last.substr(0, kMaxReasonLength) + "...";
  return last;
}

// dcm2niix as a child process in its own process group (so that whatever it
// starts, e.g. pigz, is killed with it). The destructor kills and reaps a
// child that is still running, so no exception path leaves one behind.
class ChildProcess {
 public:
  enum class End { Exited, Signalled, TimedOut, Stopped, Unknown };

  ChildProcess(const std::vector<std::string>& argv, const std::string& stdoutPath,
               const std::string& stderrPath) {
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);

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
    posix_spawnattr_setflags(
        &attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    // posix_spawnp searches PATH for a bare name and takes a path as is.
    const int error = ::posix_spawnp(&pid_, args[0], &actions, &attributes, args.data(), environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
      pid_ = -1;
      spawnError_ = error;
    }
  }
  ~ChildProcess() { Kill(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int SpawnError() const { return spawnError_; }

  // Waits until the child ends, the time is up or shouldStop says so (then
  // the child is killed).
  End Wait(std::chrono::milliseconds timeout, const std::function<bool()>& shouldStop) {
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

  int ExitCode() const { return exitCode_; }
  int Signal() const { return signal_; }

 private:
  void Kill() noexcept {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);  // the whole group it leads
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  pid_t pid_ = -1;
  int spawnError_ = 0;
  int exitCode_ = -1;
  int signal_ = 0;
};

struct Outputs {
  std::vector<std::string> images;  // names in the output folder
  std::vector<std::string> bvals;
  std::vector<std::string> bvecs;
};

Outputs ListOutputs(const std::string& folder) {
  Outputs outputs;
  std::error_code error;
  for (const auto& item : std::filesystem::directory_iterator(folder, error)) {
    if (!item.is_regular_file()) continue;
    const std::string name = item.path().filename().string();
    if (EndsWith(name, ".nii.gz") || EndsWith(name, ".nii")) {
      outputs.images.push_back(name);
    } else if (EndsWith(name, ".bval")) {
      outputs.bvals.push_back(name);
    } else if (EndsWith(name, ".bvec")) {
      outputs.bvecs.push_back(name);
    }
  }
  std::sort(outputs.images.begin(), outputs.images.end());
  return outputs;
}

// Rows of whitespace-separated numbers; throws on anything else.
std::vector<std::vector<double>> ParseNumbers(const std::string& text, const std::string& name) {
  std::vector<std::vector<double>> rows;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream tokens(line);
    std::vector<double> row;
    for (std::string token; tokens >> token;) {
      char* end = nullptr;
      errno = 0;
      const double value = std::strtod(token.c_str(), &end);
      if (end != token.c_str() + token.size() || errno == ERANGE || !std::isfinite(value)) {
        throw NiftiNotConvertible(NiftiFailure::BadOutput, "dcm2niix wrote a non-number in " +
                                                               name + ": " + token.substr(0, 40));
      }
      row.push_back(value);
    }
    if (!row.empty()) rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<double> CheckBvalBvec(const std::string& bvalPath, const std::string& bvecPath) {
  const auto bvalRows = ParseNumbers(ReadWholeFile(bvalPath), ".bval");
  if (bvalRows.size() != 1) {
    throw NiftiNotConvertible(NiftiFailure::BadOutput,
                              "dcm2niix wrote a .bval that is not one line of b-values");
  }
  const std::vector<double>& bvals = bvalRows.front();
  const auto bvecRows = ParseNumbers(ReadWholeFile(bvecPath), ".bvec");
  if (bvecRows.size() != 3 ||
      std::any_of(bvecRows.begin(), bvecRows.end(),
                  [&](const std::vector<double>& row) { return row.size() != bvals.size(); })) {
    throw NiftiNotConvertible(NiftiFailure::BadOutput,
                              "dcm2niix wrote a .bvec that is not 3 rows of " +
                                  std::to_string(bvals.size()) + " values (one per b-value)");
  }
  return bvals;
}

struct ZipDiscarder {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
using ZipHandle = std::unique_ptr<zip_t, ZipDiscarder>;

std::string ZipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

// Stores the files (path, entry name) into the archive at `zipPath`.
void WriteZip(const std::string& zipPath,
              const std::vector<std::pair<std::string, std::string>>& files) {
  int openError = 0;
  ZipHandle archive(zip_open(zipPath.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &openError));
  if (!archive) {
    throw ZipError("cannot create " + zipPath + ": " + ZipErrorText(openError));
  }
  for (const auto& [path, entryName] : files) {
    // Length -1: the whole file (libzip 1.7 and later).
    zip_source_t* const source = zip_source_file(archive.get(), path.c_str(), 0, -1);
    if (source == nullptr) {
      throw ZipError("cannot read " + path + ": " + zip_strerror(archive.get()));
    }
    const zip_int64_t index =
        zip_file_add(archive.get(), entryName.c_str(), source, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(source);  // not adopted by the archive when adding fails
      throw ZipError("cannot add " + entryName + " to " + zipPath + ": " +
                     zip_strerror(archive.get()));
    }
    if (zip_set_file_compression(archive.get(), static_cast<zip_uint64_t>(index), ZIP_CM_STORE,
                                 0) != 0) {
      throw ZipError("cannot store " + entryName + ": " + zip_strerror(archive.get()));
    }
  }
  if (zip_close(archive.get()) != 0) {
    throw ZipError("cannot write " + zipPath + ": " + zip_strerror(archive.get()));
  }
  archive.release();  // zip_close() freed it
}

void HashBundle(const std::string& path, NiftiBundle& bundle,
                const std::function<bool()>& shouldStop, const std::string& what) {
  const FileDigests digests = HashZipFile(path, [&] { ThrowIfStopped(shouldStop, what); });
  bundle.size = digests.size;
  bundle.md5Hex = digests.md5Hex;
  bundle.sha256Hex = digests.sha256Hex;
}

}  // namespace

std::string ToString(NiftiFailure failure) {
  switch (failure) {
    case NiftiFailure::ToolMissing:
      return "tool_missing";
    case NiftiFailure::NoInstances:
      return "no_instances";
    case NiftiFailure::NotDiffusion:
      return "not_diffusion";
    case NiftiFailure::ToolFailed:
      return "tool_failed";
    case NiftiFailure::TimedOut:
      return "timed_out";
    case NiftiFailure::BadOutput:
      return "bad_output";
  }
  return "unknown";
}

NiftiConverter::NiftiConverter(IStudySource& source, std::string tempDirectory,
                               std::string dcm2niixPath, std::chrono::milliseconds timeout)
    : source_(source),
      tempDirectory_(std::move(tempDirectory)),
      dcm2niixPath_(std::move(dcm2niixPath)),
      timeout_(timeout) {}

bool NiftiConverter::IsAvailable(const std::string& dcm2niixPath) {
  if (dcm2niixPath.empty()) return false;
  if (dcm2niixPath.find('/') != std::string::npos) return IsExecutableFile(dcm2niixPath);
  const char* const pathVariable = std::getenv("PATH");
  // glibc's posix_spawnp uses this default when PATH is unset.
  std::istringstream folders(pathVariable != nullptr ? pathVariable : "/bin:/usr/bin");
  for (std::string folder; std::getline(folders, folder, ':');) {
    if (IsExecutableFile((folder.empty() ? "." : folder) + "/" + dcm2niixPath)) return true;
  }
  return false;
}

NiftiBundle NiftiConverter::Convert(const StudyInfo& study, const std::string& seriesKey,
                                    const std::function<bool()>& shouldStop) const {
  const std::string what = "series " + seriesKey + " of study " + study.orthancId;
  ThrowIfStopped(shouldStop, what);
  if (!IsAvailable(dcm2niixPath_)) {
    throw NiftiNotConvertible(NiftiFailure::ToolMissing, "dcm2niix not found: " + dcm2niixPath_);
  }
  std::vector<const InstanceInfo*> instances;
  for (const InstanceInfo& instance : study.instances) {
    if (instance.seriesInstanceUid == seriesKey) instances.push_back(&instance);
  }
  if (instances.empty()) {
    throw NiftiNotConvertible(
        NiftiFailure::NoInstances,
        "study " + study.orthancId + " has no instance in series " + seriesKey);
  }

  std::error_code ignored;
  std::filesystem::create_directories(tempDirectory_, ignored);  // WorkFolder reports failures
  const WorkFolder work(tempDirectory_);
  const std::string inFolder = work / "in";
  const std::string outFolder = work / "out";
  MakeFolder(inFolder);
  MakeFolder(outFolder);

  // One file at a time: only one instance is in memory.
  for (size_t i = 0; i < instances.size(); ++i) {
    ThrowIfStopped(shouldStop, what);
    char name[32];
    std::snprintf(name, sizeof(name), "/%06zu.dcm", i + 1);
    WriteWholeFile(inFolder + name, source_.ReadInstance(instances[i]->orthancId));
  }
  ThrowIfStopped(shouldStop, what);

  const std::string stdoutPath = work / "dcm2niix.out";
  const std::string stderrPath = work / "dcm2niix.err";
  ChildProcess child(
      {dcm2niixPath_, "-z", "y", "-b", "n", "-f", kOutputName, "-o", outFolder, inFolder},
      stdoutPath, stderrPath);
  if (child.SpawnError() != 0) {
    if (child.SpawnError() == ENOENT || child.SpawnError() == EACCES) {
      throw NiftiNotConvertible(NiftiFailure::ToolMissing, "dcm2niix not found: " + dcm2niixPath_);
    }
    throw NiftiNotConvertible(
        NiftiFailure::ToolFailed,
        "cannot start dcm2niix: " + std::string(std::strerror(child.SpawnError())));
  }
  const ChildProcess::End end = child.Wait(timeout_, shouldStop);
  switch (end) {
    case ChildProcess::End::Stopped:
      throw NiftiCancelled("converting " + what + " to NIfTI was cancelled");
    case ChildProcess::End::TimedOut: {
      const auto ms = timeout_.count();
      const std::string limit =
          ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
      throw NiftiNotConvertible(NiftiFailure::TimedOut, "dcm2niix timed out after " + limit);
    }
    case ChildProcess::End::Signalled:
      throw NiftiNotConvertible(NiftiFailure::ToolFailed, "dcm2niix failed (killed by signal " +
                                                              std::to_string(child.Signal()) + ")");
    case ChildProcess::End::Exited:
      if (child.ExitCode() != 0) {
        std::string last = LastLine(stderrPath);
        if (last.empty()) last = LastLine(stdoutPath);
        throw NiftiNotConvertible(NiftiFailure::ToolFailed,
                                  "dcm2niix failed (exit " + std::to_string(child.ExitCode()) +
                                      "): " + (last.empty() ? "no message" : last));
      }
      break;
    case ChildProcess::End::Unknown:
      break;  // judged by its outputs below
  }

  const Outputs outputs = ListOutputs(outFolder);
  if (outputs.images.empty()) {
    const std::string last = LastLine(stderrPath);
    throw NiftiNotConvertible(NiftiFailure::BadOutput,
                              "dcm2niix produced no image" + (last.empty() ? "" : ": " + last));
  }
  if (outputs.images.size() > 1) {
    std::string names;
    for (const std::string& image : outputs.images) names += (names.empty() ? "" : ", ") + image;
    throw NiftiNotConvertible(NiftiFailure::BadOutput,
                              "dcm2niix produced " + std::to_string(outputs.images.size()) +
                                  " images from one series, expected one (" + names + ")");
  }
  if (outputs.bvals.empty() && outputs.bvecs.empty()) {
    throw NiftiNotConvertible(NiftiFailure::NotDiffusion,
                              "not a diffusion series: no .bval/.bvec produced");
  }
  if (outputs.bvals.size() != 1 || outputs.bvecs.size() != 1) {
    throw NiftiNotConvertible(NiftiFailure::BadOutput,
                              "dcm2niix produced " + std::to_string(outputs.bvals.size()) +
                                  " .bval and " + std::to_string(outputs.bvecs.size()) +
                                  " .bvec files, expected one of each");
  }
  const std::string& image = outputs.images.front();
  const std::string imagePath = outFolder + "/" + image;
  const std::string bvalPath = outFolder + "/" + outputs.bvals.front();
  const std::string bvecPath = outFolder + "/" + outputs.bvecs.front();
  NiftiBundle bundle;
  bundle.bvals = CheckBvalBvec(bvalPath, bvecPath);
  bundle.instanceCount = instances.size();
  bundle.seriesInstanceUid = seriesKey;

  const std::string stem = SafeComponent(seriesKey, "series");
  const std::string imageSuffix = EndsWith(image, ".nii.gz") ? ".nii.gz" : ".nii";
  bundle.entryNames = {stem + imageSuffix, stem + ".bvec", stem + ".bval"};

  ThrowIfStopped(shouldStop, what);
  TempFile file;
  try {
    file = TempFile::Create(
        tempDirectory_,
        std::string(StudyZipper::kFilePrefix) + "nifti-" + SafeComponent(seriesKey, "series") + "-",
        ".zip.part");
  } catch (const std::runtime_error& e) {
    throw ZipError(e.what());
  }
  WriteZip(file.Path(), {{imagePath, bundle.entryNames[0]},
                         {bvecPath, bundle.entryNames[1]},
                         {bvalPath, bundle.entryNames[2]}});
  HashBundle(file.Path(), bundle, shouldStop, what);
  const std::string partPath = file.Path();
  try {
    file.RenameTo(partPath.substr(0, partPath.size() - std::strlen(".part")));
  } catch (const std::runtime_error& e) {
    throw ZipError(e.what());
  }
  bundle.file = std::move(file);
  return bundle;
}

size_t NiftiConverter::CleanStaleWorkFolders(const std::string& directory) {
  const std::unique_ptr<DIR, int (*)(DIR*)> folder(::opendir(directory.c_str()), ::closedir);
  if (!folder) return 0;
  const std::string prefix = kWorkFolderPrefix;
  std::vector<std::string> stale;
  while (const dirent* item = ::readdir(folder.get())) {
    const std::string name = item->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string path = directory + "/" + name;
    struct stat info {};
    // Only real folders: a link is never followed.
    if (::lstat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) stale.push_back(path);
  }
  size_t removed = 0;
  for (const std::string& path : stale) {
    std::error_code error;
    std::filesystem::remove_all(path, error);
    if (!error) ++removed;
  }
  return removed;
}

}  // namespace CloudIngest
