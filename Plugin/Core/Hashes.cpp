#include "Hashes.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace CloudIngest {

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
  static const char* const kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; i++) {
    hex.push_back(kHex[value[i] >> 4]);
    hex.push_back(kHex[value[i] & 0x0f]);
  }
  return hex;
}

static std::string HexOf(Digest::Algorithm algorithm, const std::string& data) {
  Digest digest(algorithm);
  digest.Update(data.data(), data.size());
  return digest.HexFinal();
}

std::string Md5Hex(const std::string& data) {
  return HexOf(Digest::Algorithm::Md5, data);
}
std::string Sha256Hex(const std::string& data) {
  return HexOf(Digest::Algorithm::Sha256, data);
}

}  // namespace CloudIngest
