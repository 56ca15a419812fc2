#pragma once
// Owns a file on disk (a study's ZIP while it is written and sent): the file
// is removed when its owner goes away, on success and on exception alike,
// unless the owner releases it.
#include <string>
#include <utility>

namespace CloudIngest {

class TempFile {
 public:
  TempFile() = default;
  // Takes ownership of an existing path.
  explicit TempFile(std::string path) noexcept : path_(std::move(path)) {}
  ~TempFile() { Remove(); }
  TempFile(TempFile&& other) noexcept;
  TempFile& operator=(TempFile&& other) noexcept;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  // Creates a new, empty file `<directory>/<prefix><16 random hex digits><suffix>`
  // (mode 0600, O_EXCL, so the name is reserved). Throws std::runtime_error.
  static TempFile Create(const std::string& directory, const std::string& prefix,
                         const std::string& suffix);

  const std::string& Path() const { return path_; }
  bool Owns() const { return !path_.empty(); }
  // Renames the file and keeps owning it under the new name; throws
  // std::runtime_error (and keeps the old name) when rename(2) fails.
  void RenameTo(const std::string& newPath);
  // Gives up ownership: the file stays on disk. Returns its path.
  std::string Release() noexcept;
  // Removes the file now; a file already gone is not an error.
  void Remove() noexcept;

 private:
  std::string path_;
};

}  // namespace CloudIngest
