#pragma once
// Streams a file as a request body (a study's ZIP for its single PUT) in
// chunks, so a multi-gigabyte upload never sits in memory.
#include <string>

#include "Core/Cloud/Http.h"

namespace CloudIngest {

class FileBodySource : public IBodySource {
 public:
  // Opens the file and fixes its size (the exact Content-Length). Throws
  // std::runtime_error when it cannot be opened. The descriptor stays open,
  // so the bytes stay readable even if the path is unlinked meanwhile.
  explicit FileBodySource(const std::string& path);
  ~FileBodySource() override;
  FileBodySource(const FileBodySource&) = delete;
  FileBodySource& operator=(const FileBodySource&) = delete;

  uint64_t Size() const override { return size_; }
  // Never returns more than Size() in total; throws std::runtime_error when
  // the file turns out shorter than it was at opening or cannot be read.
  size_t Read(char* buffer, size_t max) override;
  void Rewind() override { position_ = 0; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t position_ = 0;
};

}  // namespace CloudIngest
