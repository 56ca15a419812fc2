#include "Core/Deidentify/Pseudonyms.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <boost/multiprecision/cpp_int.hpp>
#include <stdexcept>

namespace CloudIngest {

namespace {

constexpr size_t kPseudonymBytes = 16;

std::array<unsigned char, EVP_MAX_MD_SIZE> Hmac(const std::string& key, const std::string& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
           &length) == nullptr ||
      length < kPseudonymBytes) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return out;
}

}  // namespace

std::string Pseudonyms::Uid(const std::string& original) const {
  const auto digest = Hmac(key_, original);
  boost::multiprecision::uint128_t value = 0;
  for (size_t i = 0; i < kPseudonymBytes; ++i) value = (value << 8) | digest[i];
  return "2.25." + value.str();
}

std::string Pseudonyms::PatientId(const std::string& original) const {
  static const char kHex[] = "0123456789ABCDEF";
  const auto digest = Hmac(key_, original);
  std::string hex;
  hex.reserve(2 * kPseudonymBytes);
  for (size_t i = 0; i < kPseudonymBytes; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0x0f]);
  }
  return hex;
}

}  // namespace CloudIngest
