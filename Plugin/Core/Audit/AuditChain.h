#pragma once
// The audit log's hash chain (docs/REFERENCE.md, Audit log): every record
// carries `seq`, `node`, `prev_sha256` (SHA-256 of the previous line as
// written) and, with AuditKey, `hmac` (HMAC-SHA256 of the record written
// without its `hmac`, which is always the last key). Resources/verify-audit.py
// checks the same rules without Orthanc.
#include <json/value.h>

#include <cstdint>
#include <optional>
#include <string>

namespace CloudIngest {

// The first record's prev_sha256.
extern const char* const kAuditZeroHash;

// Where the chain stands, kept in the plugin's store after every record so
// that a cut tail shows. `fileFirstSeq` is the seq the current file starts at
// (1, or the next seq after a rotation), so lines cut from its start show too.
struct AuditHead {
  uint64_t seq = 0;  // of the last record written (0: none yet)
  std::string sha256 = kAuditZeroHash;
  uint64_t fileFirstSeq = 1;

  std::string Encode() const;
  // nullopt when `text` is not an encoded head.
  static std::optional<AuditHead> Decode(const std::string& text);
};

// One line of the audit file as a JSON object; false when it is not one.
bool ParseAuditLine(const std::string& line, Json::Value& record);

// `unsignedLine` is a complete record without `hmac` ("{...}", no newline);
// returns it with `"hmac":"<hex>"` appended as its last key.
std::string SignAuditLine(const std::string& unsignedLine, const std::string& key);

struct AuditVerification {
  bool ok = true;
  uint64_t records = 0;                 // chained records read
  std::optional<uint64_t> firstBadSeq;  // set when !ok
  std::string reason;                   // what is wrong, or notes when ok
};

// Checks the text of an audit file. `key` empty: hmacs are not checked.
// `head` (the store's): also finds a cut tail and lines cut from the start.
// Lines before the first record with `seq` (written by an older version)
// are counted as not covered; such a line after it is an insertion.
AuditVerification VerifyAuditText(const std::string& text, const std::string& key,
                                  const std::optional<AuditHead>& head);

}  // namespace CloudIngest
