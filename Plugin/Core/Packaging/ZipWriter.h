#pragma once
// One ZIP archive written with libzip: entries are added, then Close() writes
// them all. An archive not closed is discarded, so no half-written file stays.
#include <zip.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace CloudIngest {

// libzip or the file system failed; nothing is left on disk.
class ZipError : public std::runtime_error {
 public:
  explicit ZipError(const std::string& what) : std::runtime_error(what) {}
};

enum class ZipMethod { Store, Deflate };

class ZipWriter {
 public:
  explicit ZipWriter(const std::string& path);  // creates or truncates; throws ZipError
  ZipWriter(const ZipWriter&) = delete;
  ZipWriter& operator=(const ZipWriter&) = delete;

  // Adds an entry read from `source` (the archive adopts it, or frees it when
  // adding fails).
  void Add(const std::string& entryName, zip_source_t* source, ZipMethod method);
  // Adds the whole file at `filePath`.
  void AddFile(const std::string& entryName, const std::string& filePath, ZipMethod method);
  // For zip_source_function and friends, which need the archive.
  zip_t* Archive() { return archive_.get(); }
  // Writes the archive (libzip reads every source now). Throws ZipError.
  void Close();

 private:
  struct Discard {
    void operator()(zip_t* archive) const { zip_discard(archive); }
  };
  std::string path_;
  std::unique_ptr<zip_t, Discard> archive_;
};

}  // namespace CloudIngest
