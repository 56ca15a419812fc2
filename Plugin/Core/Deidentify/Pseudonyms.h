#pragma once
// Deterministic pseudonyms: HMAC-SHA256 under the site's PseudonymKey of the
// original value, so one original always gives one pseudonym (a resend
// overwrites, a patient keeps one pseudonym across studies) while nobody
// without the key can go back or test a guess.
#include <string>

namespace CloudIngest {

class Pseudonyms {
 public:
  explicit Pseudonyms(std::string key) : key_(std::move(key)) {}

  // "2.25." and the first 16 bytes of the HMAC read as an unsigned 128-bit
  // big-endian integer, in decimal: a valid UID (at most 44 characters, no
  // leading zero).
  std::string Uid(const std::string& original) const;
  // The first 16 bytes of the HMAC in upper-case hex (32 characters): fits
  // PatientID's 64 and reads as an identifier.
  std::string PatientId(const std::string& original) const;

 private:
  std::string key_;
};

}  // namespace CloudIngest
