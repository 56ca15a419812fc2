#pragma once
// The audit log's hash chain (docs/REFERENCE.md, Audit log): every record
// carries `seq`, `node`, `prev_sha256` (SHA-256 of the previous line as
// written) and, with AuditKey, `hmac` (HMAC-SHA256 of the record written
// without its `hmac`, which is always the last key). Resources/verify-audit.py
// checks the same rules without Orthanc.
#include <json/value.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

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

// A record as the next one names it: its seq and the SHA-256 of its line.
struct AuditLink {
  uint64_t seq = 0;
  std::string sha256;
};

// True when `line` is the record `link` names (its seq and hash) and, with a
// key, its hmac is right: the last line of a file the next file chains to.
bool IsAuditRecord(const std::string& line, const AuditLink& link, const std::string& key);

// Where the chain stands at start-up, from the stored head and the file's
// last lines (oldest first). A crash between writing a line and storing the
// head leaves records that chain to the head (seq + 1, prev_sha256, hmac):
// they are adopted. Records beyond the head that do not chain to it only move
// the seq on (no seq is written twice); the next record then chains to the
// stored head, so that the break shows in Verify.
AuditHead ReconcileAuditHead(const AuditHead& stored, const std::vector<std::string>& lastLines,
                             const std::string& key);

// `unsignedLine` is a complete record without `hmac` ("{...}", no newline);
// returns it with `"hmac":"<hex>"` appended as its last key.
std::string SignAuditLine(const std::string& unsignedLine, const std::string& key);

struct AuditVerification {
  bool ok = true;
  uint64_t records = 0;                 // chained records read
  std::optional<uint64_t> firstBadSeq;  // set when !ok
  std::string reason;                   // what is wrong, or notes when ok
};

// The name of an earlier (rotated) file that ends with the record `last`
// names; nullopt when there is none.
using AuditPredecessorFinder = std::function<std::optional<std::string>(const AuditLink& last)>;

// Checks the text of an audit file. `key` empty: hmacs are not checked.
// `head` (the store's): also finds a cut tail and lines cut from the start.
// Lines before the first record with `seq` (written by an older version)
// are counted as not covered; such a line after it is an insertion. A text
// that starts after seq 1 is intact only when `findPredecessor` finds the
// file its first record chains to (records deleted, truncated or rotated away).
AuditVerification VerifyAuditText(const std::string& text, const std::string& key,
                                  const std::optional<AuditHead>& head,
                                  const AuditPredecessorFinder& findPredecessor = nullptr);

}  // namespace CloudIngest
