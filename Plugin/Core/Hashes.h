#pragma once
// Incremental MD5 (checked against the store's ETag) and SHA-256 (for the
// audit log) of the bytes actually sent.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace CloudIngest {

class Digest {
 public:
  enum class Algorithm { Md5, Sha256 };
  explicit Digest(Algorithm algorithm);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void Update(const void* data, size_t size);
  std::string HexFinal();  // lower-case hex; the object is spent afterwards

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

struct FileDigests {
  uint64_t size = 0;
  std::string md5Hex;
  std::string sha256Hex;
};

// MD5 and SHA-256 of a file, read in 256 KiB chunks (bounded memory).
// `afterChunk` (optional) runs after each chunk and may throw to stop early.
// Throws std::runtime_error when the file cannot be read.
FileDigests HashFile(const std::string& path, const std::function<void()>& afterChunk = {});

std::string Md5Hex(const std::string& data);
std::string Sha256Hex(const std::string& data);
// Lower-case hex HMAC-SHA256 of `data` under `key` (webhook signatures,
// audit records, receipts).
std::string HmacSha256Hex(const std::string& key, const std::string& data);

}  // namespace CloudIngest
