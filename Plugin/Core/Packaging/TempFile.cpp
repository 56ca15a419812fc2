#include "Core/Packaging/TempFile.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <utility>

namespace CloudIngest {

namespace {

std::string RandomHex(std::random_device& random) {
  static const char* const kHex = "0123456789abcdef";
  std::string hex;
  for (int word = 0; word < 2; ++word) {
    uint32_t value = random();
    for (int i = 0; i < 8; ++i, value >>= 4) hex.push_back(kHex[value & 0x0f]);
  }
  return hex;
}

}  // namespace

TempFile::TempFile(TempFile&& other) noexcept : path_(std::exchange(other.path_, std::string())) {}

TempFile& TempFile::operator=(TempFile&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, std::string());
  }
  return *this;
}

TempFile TempFile::Create(const std::string& directory, const std::string& prefix,
                          const std::string& suffix) {
  std::random_device random;
  // O_EXCL makes a clash impossible; a few retries make one harmless.
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string path = directory + "/" + prefix + RandomHex(random) + suffix;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::close(fd);
      return TempFile(std::move(path));
    }
    if (errno != EEXIST) {
      throw std::runtime_error("cannot create a temporary file in " + directory + ": " +
                               std::strerror(errno));
    }
  }
  throw std::runtime_error("cannot find a free temporary file name in " + directory);
}

void TempFile::RenameTo(const std::string& newPath) {
  if (path_.empty()) {
    throw std::runtime_error("no temporary file to rename");
  }
  if (std::rename(path_.c_str(), newPath.c_str()) != 0) {
    throw std::runtime_error("cannot rename " + path_ + " to " + newPath + ": " +
                             std::strerror(errno));
  }
  path_ = newPath;
}

std::string TempFile::Release() noexcept {
  return std::exchange(path_, std::string());
}

void TempFile::Remove() noexcept {
  if (!path_.empty()) {
    ::unlink(path_.c_str());  // ENOENT is fine: nothing left to clean
    path_.clear();
  }
}

}  // namespace CloudIngest
