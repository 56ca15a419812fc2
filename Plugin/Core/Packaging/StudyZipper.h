#pragma once
// Writes a whole study into one ZIP file (UploadMode "Zip") in a temporary
// directory, for a single presigned PUT.
//
// Bounded memory: every instance becomes a libzip callback source that reads
// nothing until libzip opens it inside zip_close(). libzip writes entries one
// after the other (open, read in 8 KiB chunks, close), and the callback drops
// the instance's bytes on close, so at most one instance is in memory at a
// time, plus libzip's copy buffers (and zlib's state when deflating) and a
// few hundred bytes of bookkeeping per entry. The finished file is then read
// back in 256 KiB chunks for its MD5 and SHA-256. libzip switches to ZIP64 by
// itself: for an entry or offset beyond 4 GiB and for more than 65535 entries.
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "Core/Hashes.h"
#include "Core/Orthanc/StudySource.h"
#include "Core/Packaging/TempFile.h"
#include "Core/Packaging/ZipWriter.h"

namespace CloudIngest {

enum class ZipCompression {
  Store,    // ZIP_CM_STORE: DICOM pixel data rarely shrinks, and speed matters
  Deflate,  // ZIP_CM_DEFLATE at zlib's default level
};

struct StudyZip {
  TempFile file;  // the finished `.zip`: removed when this goes away, unless released
  uint64_t size = 0;
  std::string md5Hex;     // of the whole file: what the store's ETag must be
  std::string sha256Hex;  // of the whole file: for the audit log
  size_t entryCount = 0;
  uint64_t contentBytes = 0;                 // instance bytes put into the ZIP
  std::vector<std::string> sopInstanceUids;  // in entry order
  std::vector<std::string> entryNames;       // in entry order

  const std::string& Path() const { return file.Path(); }
};

// The stop callback asked to stop; nothing is left on disk.
class ZipCancelled : public std::runtime_error {
 public:
  explicit ZipCancelled(const std::string& what) : std::runtime_error(what) {}
};

// HashFile for a finished ZIP: a read error is a ZipError; what `afterChunk`
// throws (a ZipCancelled) passes through.
FileDigests HashZipFile(const std::string& path, const std::function<void()>& afterChunk);

// One path component of [A-Za-z0-9._-] that cannot escape its folder or
// confuse an unzipper ("." and ".." become "_"); `fallback` when `text` is empty.
std::string SafeComponent(const std::string& text, const std::string& fallback);
// A new "<prefix><random>.zip.part" in `directory`; throws ZipError.
TempFile CreatePartFile(const std::string& directory, const std::string& prefix);
// Renames the finished "<name>.zip.part" to "<name>.zip"; throws ZipError.
void FinishPartFile(TempFile& file);

class StudyZipper {
 public:
  // Every file the zipper creates starts with this; CleanStaleTempFiles
  // relies on it.
  static constexpr const char* kFilePrefix = "cloud-ingest-";

  StudyZipper(IStudySource& source, std::string tempDirectory,
              ZipCompression compression = ZipCompression::Store);

  // Writes `cloud-ingest-<orthancStudyId>-<random>.zip.part` in the temporary
  // directory (created if missing), renamed to `.zip` once complete and hashed.
  // `shouldStop` is asked before each entry (and while hashing): when it
  // returns true, Zip throws ZipCancelled. What IStudySource::ReadInstance
  // throws (e.g. StudyNotFound) propagates unchanged; other failures throw
  // ZipError. Whatever it throws, no file of this call is left behind.
  StudyZip Zip(const StudyInfo& study, const std::function<bool()>& shouldStop = {}) const;

  // Entry names in instance order: `<SeriesInstanceUID>/<SOPInstanceUID>.dcm`,
  // limited to [A-Za-z0-9._-] per component, never "." or "..", made unique
  // with a "-2", "-3" suffix. A missing SeriesInstanceUID gives
  // "unknown-series", a missing SOPInstanceUID the Orthanc instance id.
  static std::vector<std::string> EntryNames(const StudyInfo& study);

  // An upper bound of the ZIP's size computed from the instance sizes,
  // before zipping: lets the caller fall back to per-instance mode when a
  // single PUT (5 GB) cannot hold the study, without writing the file first.
  static uint64_t MaximumSize(const StudyInfo& study, ZipCompression compression);

  // Removes leftovers of a previous run (a crash, kill -9): regular files
  // named `cloud-ingest-*.zip`, `cloud-ingest-*.zip.part` and libzip's own
  // `cloud-ingest-*.zip.part.XXXXXX`. Returns how many were removed; a
  // missing directory removes none.
  static size_t CleanStaleTempFiles(const std::string& directory);
  static bool IsTempFileName(const std::string& fileName);

 private:
  IStudySource& source_;
  std::string tempDirectory_;
  ZipCompression compression_;
};

}  // namespace CloudIngest
