#pragma once
// UploadMode "Nifti": turns one diffusion MR series into the NIfTI bundle the
// service accepts (one ZIP holding `.nii.gz` + `.bvec` + `.bval`), using the
// external `dcm2niix` tool.
//
// The series' instances are written into a fresh work folder
// `<tempDirectory>/cloud-ingest-nifti-XXXXXX/` (removed whatever happens),
// dcm2niix runs there as a child process without a shell, bounded in time and
// killed (with its process group) on timeout or when asked to stop, and its
// three output files are stored (not deflated: `.nii.gz` is already
// compressed) into `cloud-ingest-nifti-<series>-<random>.zip`, a name that
// StudyZipper::CleanStaleTempFiles removes after a crash.
//
// dcm2niix is run as:
//   dcm2niix -z y -b n -f dwi -o <work>/out <work>/in
// (gzip output, no BIDS sidecar, fixed output name), stdin from /dev/null,
// stdout and stderr into files in the work folder.
#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "Core/Orthanc/StudySource.h"
#include "Core/Packaging/StudyZipper.h"
#include "Core/Packaging/TempFile.h"

namespace CloudIngest {

struct NiftiBundle {
  TempFile file;  // the finished `.zip`: removed when this goes away, unless released
  uint64_t size = 0;
  std::string md5Hex;                   // of the whole file: what the store's ETag must be
  std::string sha256Hex;                // of the whole file: for the audit log
  std::vector<std::string> entryNames;  // image, .bvec, .bval: `<series>.nii.gz`, ...
  std::vector<double> bvals;            // parsed from the `.bval`, one per volume
  size_t instanceCount = 0;             // DICOM instances of the series that were converted
  std::string seriesInstanceUid;        // the series key that was converted

  const std::string& Path() const { return file.Path(); }
};

// Why a series was not converted (for the audit record and metrics; the
// message says it in words).
enum class NiftiFailure {
  ToolMissing,   // "dcm2niix not found"
  NoInstances,   // the study holds no instance of that series
  NotDiffusion,  // "not a diffusion series: no .bval/.bvec produced"
  ToolFailed,    // "dcm2niix failed (exit N): <last stderr line>"
  TimedOut,      // "dcm2niix timed out after N s"
  BadOutput,     // several images, none, or .bval/.bvec that do not agree
};

std::string ToString(NiftiFailure failure);

// The series cannot be sent as NIfTI; the caller may send it as DICOM instead.
// Nothing of the call is left on disk.
class NiftiNotConvertible : public std::runtime_error {
 public:
  NiftiNotConvertible(NiftiFailure failure, const std::string& reason)
      : std::runtime_error(reason), failure_(failure) {}
  NiftiFailure Failure() const { return failure_; }

 private:
  NiftiFailure failure_;
};

// The stop callback asked to stop (dcm2niix, if running, was killed); nothing
// is left on disk. A ZipCancelled, so a caller that handles a cancelled ZIP
// handles this too.
class NiftiCancelled : public ZipCancelled {
 public:
  explicit NiftiCancelled(const std::string& what) : ZipCancelled(what) {}
};

class NiftiConverter {
 public:
  static constexpr std::chrono::seconds kDefaultTimeout{300};
  // The work folders start with this (files: StudyZipper::kFilePrefix).
  static constexpr const char* kWorkFolderPrefix = "cloud-ingest-nifti-";

  // `dcm2niixPath`: a path (with a '/') or a name looked up in PATH.
  NiftiConverter(IStudySource& source, std::string tempDirectory,
                 std::string dcm2niixPath = "dcm2niix",
                 std::chrono::milliseconds timeout = kDefaultTimeout);

  // Converts the instances of `study` whose InstanceInfo::seriesInstanceUid is
  // `seriesKey`. Throws NiftiNotConvertible (with the reason), NiftiCancelled
  // when `shouldStop` returns true (asked between instances, every 50 ms
  // while dcm2niix runs, and while zipping and hashing), ZipError when the
  // file system or libzip fails; what IStudySource::ReadInstance throws
  // (e.g. StudyNotFound) propagates unchanged. Whatever it throws, no file or
  // folder of this call is left behind and no child process is left running.
  NiftiBundle Convert(const StudyInfo& study, const std::string& seriesKey,
                      const std::function<bool()>& shouldStop = {}) const;

  // True when `dcm2niixPath` names an executable regular file (directly, or
  // through PATH for a bare name).
  static bool IsAvailable(const std::string& dcm2niixPath);

  // Removes work folders `cloud-ingest-nifti-*` left in `directory` by a
  // crash (the ZIPs themselves are StudyZipper::CleanStaleTempFiles' job).
  // Never follows a symbolic link. Returns how many were removed.
  static size_t CleanStaleWorkFolders(const std::string& directory);

 private:
  IStudySource& source_;
  std::string tempDirectory_;
  std::string dcm2niixPath_;
  std::chrono::milliseconds timeout_;
};

}  // namespace CloudIngest
