#include "Core/Hashes.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <stdexcept>

namespace CloudIngest {

namespace {

std::string ToHex(const unsigned char* value, size_t length) {
  static const char* const kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (size_t i = 0; i < length; i++) {
    hex.push_back(kHex[value[i] >> 4]);
    hex.push_back(kHex[value[i] & 0x0f]);
  }
  return hex;
}

}  // namespace

struct Digest::Context {
  EVP_MD_CTX* ctx = nullptr;
  ~Context() { EVP_MD_CTX_free(ctx); }
};

Digest::Digest(Algorithm algorithm) : context_(std::make_unique<Context>()) {
  context_->ctx = EVP_MD_CTX_new();
  const EVP_MD* md = algorithm == Algorithm::Md5 ? EVP_md5() : EVP_sha256();
  if (context_->ctx == nullptr || EVP_DigestInit_ex(context_->ctx, md, nullptr) != 1) {
    throw std::runtime_error("cannot initialise digest");
  }
}

Digest::~Digest() = default;

void Digest::Update(const void* data, size_t size) {
  if (EVP_DigestUpdate(context_->ctx, data, size) != 1) {
    throw std::runtime_error("digest update failed");
  }
}

std::string Digest::HexFinal() {
  unsigned char value[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context_->ctx, value, &length) != 1) {
    throw std::runtime_error("digest final failed");
  }
  return ToHex(value, length);
}

std::string HmacSha256Hex(const std::string& key, const std::string& data) {
  unsigned char value[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), value,
           &length) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return ToHex(value, length);
}

static std::string HexOf(Digest::Algorithm algorithm, const std::string& data) {
  Digest digest(algorithm);
  digest.Update(data.data(), data.size());
  return digest.HexFinal();
}

FileDigests HashFile(const std::string& path, const std::function<void()>& afterChunk) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot read back " + path + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  Digest md5(Digest::Algorithm::Md5);
  Digest sha256(Digest::Algorithm::Sha256);
  std::vector<char> buffer(256 * 1024);
  FileDigests digests;
  for (;;) {
    const ssize_t count = ::read(fd, buffer.data(), buffer.size());
    if (count < 0 && errno == EINTR) continue;
    if (count < 0)
      throw std::runtime_error("cannot read back " + path + ": " + std::strerror(errno));
    if (count == 0) break;
    md5.Update(buffer.data(), static_cast<size_t>(count));
    sha256.Update(buffer.data(), static_cast<size_t>(count));
    digests.size += static_cast<uint64_t>(count);
    if (afterChunk) afterChunk();
  }
  digests.md5Hex = md5.HexFinal();
  digests.sha256Hex = sha256.HexFinal();
  return digests;
}

std::string Md5Hex(const std::string& data) {
  return HexOf(Digest::Algorithm::Md5, data);
}
std::string Sha256Hex(const std::string& data) {
  return HexOf(Digest::Algorithm::Sha256, data);
}

}  // namespace CloudIngest
