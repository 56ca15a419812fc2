#include "Core/Packaging/NiftiConverter.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <boost/algorithm/string/predicate.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>

#include "Core/Hashes.h"
#include "Core/Packaging/ChildProcess.h"
#include "Core/Packaging/Dcm2niixOutput.h"

namespace CloudIngest {

using namespace Dcm2niixOutput;

namespace {

const char* const kOutputName = "dwi";  // dcm2niix's -f: fixed, so the outputs are predictable

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
  const std::string& Path() const { return path_; }

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

// Orthanc's environment holds secrets (${ENV} values of its configuration,
// such as the client secret): dcm2niix gets only what it needs to run, with
// its home and temporary files in the work folder.
std::vector<std::string> MinimalEnvironment(const std::string& workFolder) {
  const char* const path = std::getenv("PATH");
  return {std::string("PATH=") + (path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin"),
          "HOME=" + workFolder, "TMPDIR=" + workFolder, "LC_ALL=C"};
}

// Stores the files (path, entry name) into the archive at `zipPath`.
void WriteZip(const std::string& zipPath,
              const std::vector<std::pair<std::string, std::string>>& files) {
  ZipWriter writer(zipPath);
  for (const auto& [path, entryName] : files) writer.AddFile(entryName, path, ZipMethod::Store);
  writer.Close();
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
  // In the order of the enumeration.
  static const char* const kNames[] = {"tool_missing", "no_instances", "not_diffusion",
                                       "tool_failed",  "timed_out",    "bad_output"};
  const auto index = static_cast<size_t>(failure);
  return index < std::size(kNames) ? kNames[index] : "unknown";
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
      MinimalEnvironment(work.Path()), stdoutPath, stderrPath);
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
  const std::string imageSuffix =
      boost::algorithm::ends_with(image, ".nii.gz") ? ".nii.gz" : ".nii";
  bundle.entryNames = {stem + imageSuffix, stem + ".bvec", stem + ".bval"};

  ThrowIfStopped(shouldStop, what);
  TempFile file =
      CreatePartFile(tempDirectory_, std::string(StudyZipper::kFilePrefix) + "nifti-" + stem + "-");
  WriteZip(file.Path(), {{imagePath, bundle.entryNames[0]},
                         {bvecPath, bundle.entryNames[1]},
                         {bvalPath, bundle.entryNames[2]}});
  HashBundle(file.Path(), bundle, shouldStop, what);
  FinishPartFile(file);
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
