#include "Core/Packaging/StudyZipper.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <boost/algorithm/string/predicate.hpp>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <unordered_set>
#include <utility>

#include "Core/Hashes.h"

namespace CloudIngest {

namespace {

const char* const kPartSuffix = ".zip.part";

bool IsSafeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// State shared by all entry callbacks while zip_close() writes the archive.
struct ZipRun {
  IStudySource& source;
  const std::function<bool()>& shouldStop;
  const std::string& studyId;
  std::exception_ptr failure;  // first exception caught in a callback
  uint64_t contentBytes = 0;
};

// One entry: libzip calls back into it; it holds the instance's bytes only
// between OPEN and CLOSE.
struct EntrySource {
  EntrySource(ZipRun& run, const InstanceInfo& instance) : run(run), instance(instance) {
    zip_error_init(&error);
  }
  ~EntrySource() { zip_error_fini(&error); }
  EntrySource(const EntrySource&) = delete;
  EntrySource& operator=(const EntrySource&) = delete;

  ZipRun& run;
  const InstanceInfo& instance;
  std::string data;
  size_t position = 0;
  zip_error_t error;
};

// Never lets an exception cross libzip: it is kept in the run and rethrown
// once zip_close() has failed.
zip_int64_t EntryCallback(void* userData, void* data, zip_uint64_t length,
                          zip_source_cmd_t command) {
  auto& entry = *static_cast<EntrySource*>(userData);
  switch (command) {
    case ZIP_SOURCE_OPEN:
      try {
        if (entry.run.shouldStop && entry.run.shouldStop()) {
          throw ZipCancelled("zipping study " + entry.run.studyId + " was cancelled");
        }
        entry.data = entry.run.source.ReadInstance(entry.instance.orthancId);
        entry.position = 0;
        entry.run.contentBytes += entry.data.size();
        return 0;
      } catch (...) {
        if (!entry.run.failure) entry.run.failure = std::current_exception();
        zip_error_set(&entry.error, ZIP_ER_READ, 0);
        return -1;
      }
    case ZIP_SOURCE_READ: {
      const size_t count =
          static_cast<size_t>(std::min<zip_uint64_t>(length, entry.data.size() - entry.position));
      std::memcpy(data, entry.data.data() + entry.position, count);
      entry.position += count;
      return static_cast<zip_int64_t>(count);
    }
    case ZIP_SOURCE_CLOSE:
      std::string().swap(entry.data);  // release now, not at zip_close's end
      entry.position = 0;
      return 0;
    case ZIP_SOURCE_STAT: {
      zip_stat_t* const stat = ZIP_SOURCE_GET_ARGS(zip_stat_t, data, length, &entry.error);
      if (stat == nullptr) {
        return -1;
      }
      zip_stat_init(stat);
      // The announced size lets libzip write a plain (non-ZIP64) local header
      // for ordinary instances; it rewrites the header with the real size and
      // CRC after the data. Unknown, estimated or huge sizes are left unsaid,
      // which makes libzip reserve a ZIP64 header for that entry: libzip 1.10
      // and newer refuse an entry whose bytes differ from the announced size.
      if (entry.instance.sizeIs == SizeIs::Exact && entry.instance.size > 0 &&
          entry.instance.size < 0xffff0000ULL) {
        stat->valid |= ZIP_STAT_SIZE;
        stat->size = entry.instance.size;
      }
      return sizeof(*stat);
    }
    case ZIP_SOURCE_ERROR:
      return zip_error_to_data(&entry.error, data, length);
    case ZIP_SOURCE_FREE:
      return 0;  // the zipper owns the EntrySource
    case ZIP_SOURCE_SUPPORTS:
      return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                            ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE,
                                            ZIP_SOURCE_SUPPORTS, -1);
    default:
      zip_error_set(&entry.error, ZIP_ER_OPNOTSUPP, 0);
      return -1;
  }
}

void ThrowIfStopped(const std::function<bool()>& shouldStop, const std::string& studyId) {
  if (shouldStop && shouldStop()) {
    throw ZipCancelled("zipping study " + studyId + " was cancelled");
  }
}

}  // namespace

StudyZipper::StudyZipper(IStudySource& source, std::string tempDirectory,
                         ZipCompression compression)
    : source_(source), tempDirectory_(std::move(tempDirectory)), compression_(compression) {}

std::vector<std::string> StudyZipper::EntryNames(const StudyInfo& study) {
  std::vector<std::string> names;
  names.reserve(study.instances.size());
  std::unordered_set<std::string> taken;
  taken.reserve(study.instances.size());
  for (size_t i = 0; i < study.instances.size(); ++i) {
    const InstanceInfo& instance = study.instances[i];
    const std::string folder = SafeComponent(instance.seriesInstanceUid, "unknown-series");
    const std::string stem =
        SafeComponent(instance.sopInstanceUid,
                      SafeComponent(instance.orthancId, "instance-" + std::to_string(i + 1)));
    std::string name = folder + "/" + stem + ".dcm";
    for (unsigned n = 2; taken.count(name) > 0; ++n) {
      name = folder + "/" + stem + "-" + std::to_string(n) + ".dcm";
    }
    taken.insert(name);
    names.push_back(std::move(name));
  }
  return names;
}

uint64_t StudyZipper::MaximumSize(const StudyInfo& study, ZipCompression compression) {
  // Local header 30 + central header 46 + the name twice + generous room for
  // extra fields (ZIP64, timestamps) per entry; end records with ZIP64.
  const uint64_t kPerEntry = 30 + 46 + 2 * 64;
  uint64_t total = 22 + 56 + 20;
  const std::vector<std::string> names = EntryNames(study);
  for (size_t i = 0; i < names.size(); ++i) {
    const uint64_t size = study.instances[i].size;
    total += kPerEntry + 2 * names[i].size() + size;
    if (compression == ZipCompression::Deflate) {
      total += (size >> 10) + 64;  // above zlib's deflateBound for incompressible data
    }
  }
  return total;
}

StudyZip StudyZipper::Zip(const StudyInfo& study, const std::function<bool()>& shouldStop) const {
  if (study.instances.empty()) {
    throw ZipError("study " + study.orthancId + " has no instance to zip");
  }
  ThrowIfStopped(shouldStop, study.orthancId);

  std::error_code ignored;
  std::filesystem::create_directories(tempDirectory_, ignored);  // Create() reports failures

  // Declaration order is destruction order in reverse: the archive is
  // discarded first, then the entry sources it points to, then the file.
  TempFile file = CreatePartFile(
      tempDirectory_, std::string(kFilePrefix) + SafeComponent(study.orthancId, "study") + "-");
  ZipRun run{source_, shouldStop, study.orthancId, nullptr, 0};
  std::vector<std::unique_ptr<EntrySource>> entries;
  entries.reserve(study.instances.size());

  ZipWriter writer(file.Path());
  StudyZip result;
  result.entryNames = EntryNames(study);
  const ZipMethod method =
      compression_ == ZipCompression::Deflate ? ZipMethod::Deflate : ZipMethod::Store;
  for (size_t i = 0; i < study.instances.size(); ++i) {
    entries.push_back(std::make_unique<EntrySource>(run, study.instances[i]));
    writer.Add(result.entryNames[i],
               zip_source_function(writer.Archive(), EntryCallback, entries.back().get()), method);
    result.sopInstanceUids.push_back(study.instances[i].sopInstanceUid);
  }

  // The actual writing: libzip pulls every instance through EntryCallback.
  try {
    writer.Close();
  } catch (const ZipError&) {
    if (run.failure) {
      std::rethrow_exception(run.failure);  // the archive and file are cleaned on the way out
    }
    throw;
  }

  ThrowIfStopped(shouldStop, study.orthancId);
  const FileDigests digests =
      HashZipFile(file.Path(), [&] { ThrowIfStopped(shouldStop, study.orthancId); });

  FinishPartFile(file);

  result.file = std::move(file);
  result.size = digests.size;
  result.md5Hex = digests.md5Hex;
  result.sha256Hex = digests.sha256Hex;
  result.entryCount = study.instances.size();
  result.contentBytes = run.contentBytes;
  return result;
}

bool StudyZipper::IsTempFileName(const std::string& name) {
  const std::string prefix = kFilePrefix;
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) {
    return false;
  }
  if (boost::algorithm::ends_with(name, ".zip") || boost::algorithm::ends_with(name, kPartSuffix)) {
    return true;
  }
  // libzip writes `<archive>.XXXXXX` and renames it on success.
  const std::string libzipPart = std::string(kPartSuffix) + ".";
  const size_t at = name.rfind(libzipPart);
  if (at == std::string::npos || at + libzipPart.size() + 6 != name.size()) {
    return false;
  }
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(at + libzipPart.size()), name.end(),
                     [](char c) { return IsSafeChar(c) && c != '.'; });
}

size_t StudyZipper::CleanStaleTempFiles(const std::string& directory) {
  const std::unique_ptr<DIR, int (*)(DIR*)> folder(::opendir(directory.c_str()), ::closedir);
  if (!folder) {
    return 0;
  }
  size_t removed = 0;
  while (const dirent* item = ::readdir(folder.get())) {
    const std::string name = item->d_name;
    if (!IsTempFileName(name)) continue;
    const std::string path = directory + "/" + name;
    struct stat info {};
    // Only regular files: never follow a link or touch a folder.
    if (::lstat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::unlink(path.c_str()) == 0) {
      ++removed;
    }
  }
  return removed;
}

FileDigests HashZipFile(const std::string& path, const std::function<void()>& afterChunk) {
  try {
    return HashFile(path, afterChunk);
  } catch (const ZipCancelled&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw ZipError(e.what());
  }
}

std::string SafeComponent(const std::string& text, const std::string& fallback) {
  std::string safe;
  safe.reserve(text.size());
  for (const char c : text) safe.push_back(IsSafeChar(c) ? c : '_');
  if (safe.empty()) {
    return fallback;
  }
  if (safe.find_first_not_of('.') == std::string::npos) {
    safe.assign(safe.size(), '_');  // "." and ".." are not names
  }
  return safe;
}

TempFile CreatePartFile(const std::string& directory, const std::string& prefix) {
  try {
    return TempFile::Create(directory, prefix, kPartSuffix);
  } catch (const std::runtime_error& e) {
    throw ZipError(e.what());
  }
}

void FinishPartFile(TempFile& file) {
  const std::string partPath = file.Path();
  try {
    file.RenameTo(partPath.substr(0, partPath.size() - std::strlen(".part")));
  } catch (const std::runtime_error& e) {
    throw ZipError(e.what());
  }
}

}  // namespace CloudIngest
