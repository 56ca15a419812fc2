#include "Core/Cloud/FileBodySource.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace CloudIngest {

FileBodySource::FileBodySource(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat info {};
  const bool statted = ::fstat(fd_, &info) == 0;
  if (!statted || !S_ISREG(info.st_mode)) {
    const std::string reason = statted ? "not a regular file" : std::strerror(errno);
    ::close(fd_);
    throw std::runtime_error("cannot read " + path + ": " + reason);
  }
  size_ = static_cast<uint64_t>(info.st_size);
}

FileBodySource::~FileBodySource() {
  ::close(fd_);
}

size_t FileBodySource::Read(char* buffer, size_t max) {
  if (position_ >= size_ || max == 0) {
    return 0;
  }
  const size_t wanted = static_cast<size_t>(std::min<uint64_t>(max, size_ - position_));
  // pread keeps the position ours: Rewind needs no system call.
  ssize_t count;
  do {
    count = ::pread(fd_, buffer, wanted, static_cast<off_t>(position_));
  } while (count < 0 && errno == EINTR);
  if (count < 0) {
    throw std::runtime_error("cannot read " + path_ + ": " + std::strerror(errno));
  }
  if (count == 0) {
    throw std::runtime_error(path_ + " became shorter while it was being sent");
  }
  position_ += static_cast<uint64_t>(count);
  return static_cast<size_t>(count);
}

}  // namespace CloudIngest
