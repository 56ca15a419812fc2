#pragma once
// Incremental MD5 (checked against the store's ETag) and SHA-256 (for the
// audit log) of the bytes actually sent.
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

std::string Md5Hex(const std::string& data);
std::string Sha256Hex(const std::string& data);

}  // namespace CloudIngest
