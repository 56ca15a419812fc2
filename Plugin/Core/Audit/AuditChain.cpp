#include "Core/Audit/AuditChain.h"

#include <json/json.h>

#include <sstream>
#include <vector>

#include "Core/Hashes.h"
#include "Core/JsonText.h"

namespace CloudIngest {

const char* const kAuditZeroHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

namespace {

const std::string kHmacKey = ",\"hmac\":\"";
constexpr size_t kHexLength = 64;

bool IsHex64(const std::string& text) {
  return text.size() == kHexLength &&
         text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The record as it was signed (without its trailing `hmac`), and the hmac;
// both empty-hmac when the line has none.
std::pair<std::string, std::string> SplitHmac(const std::string& line) {
  const size_t at = line.rfind(kHmacKey);
  const size_t expectedEnd = at + kHmacKey.size() + kHexLength + 2;  // "}
  if (at == std::string::npos || expectedEnd != line.size() ||
      line.compare(line.size() - 2, 2, "\"}") != 0) {
    return {line, ""};
  }
  return {line.substr(0, at) + "}", line.substr(at + kHmacKey.size(), kHexLength)};
}

// With no key, every line passes.
bool HmacValid(const std::string& line, const std::string& key) {
  if (key.empty()) return true;
  const auto [signedPart, hmac] = SplitHmac(line);
  return IsHex64(hmac) && HmacSha256Hex(key, signedPart) == hmac;
}

// The record's seq; nullopt for a line that is not a chained record.
std::optional<uint64_t> SeqOf(const Json::Value& record) {
  if (!record.isMember("seq") || !record["seq"].isUInt64()) return std::nullopt;
  return record["seq"].asUInt64();
}

class Checker {
 public:
  Checker(const std::string& key, const std::optional<AuditHead>& head,
          const AuditPredecessorFinder& findPredecessor)
      : key_(key), head_(head), findPredecessor_(findPredecessor) {}

  // False once a bad line was found (the rest is not read).
  bool Line(const std::string& line, size_t lineNumber) {
    Json::Value record;
    const bool parsed = ParseAuditLine(line, record);
    if (!parsed || !record.isMember("seq")) {
      if (!expected_) {
        legacy_++;
        return true;
      }
      return Bad(*expected_, "line " + std::to_string(lineNumber) +
                                 (parsed ? " has no seq (inserted)" : " is not a JSON record"));
    }
    if (!record["seq"].isUInt64() || !record["prev_sha256"].isString()) {
      return Bad(expected_.value_or(0),
                 "line " + std::to_string(lineNumber) + " has a malformed seq or prev_sha256");
    }
    const uint64_t seq = record["seq"].asUInt64();
    const std::string prev = record["prev_sha256"].asString();
    if (!expected_) {
      firstSeq_ = seq;
      firstPrevious_ = prev;
      if (seq == 1 && prev != kAuditZeroHash) {
        return Bad(1, "record 1 must have prev_sha256 of 64 zeros");
      }
    } else if (seq != *expected_) {
      return Bad(*expected_, seq > *expected_
                                 ? "record " + std::to_string(*expected_) +
                                       " is missing (found seq " + std::to_string(seq) + ")"
                                 : "seq " + std::to_string(seq) + " out of order where " +
                                       std::to_string(*expected_) + " was expected");
    }
    if (!key_.empty()) {
      if (SplitHmac(line).second.empty()) {
        return Bad(seq, "record " + std::to_string(seq) + " has no hmac");
      }
      if (!HmacValid(line, key_)) {
        return Bad(seq, "record " + std::to_string(seq) + " has a wrong hmac (edited or forged)");
      }
    }
    if (expected_ && prev != previousHash_) {
      // The line before changed (or this one's prev_sha256 did).
      return Bad(seq - 1, "record " + std::to_string(seq - 1) + " was changed (record " +
                              std::to_string(seq) + "'s prev_sha256 does not match it)");
    }
    previousHash_ = Sha256Hex(line);
    expected_ = seq + 1;
    result_.records++;
    return true;
  }

  AuditVerification Finish() {
    if (!result_.ok) return result_;
    const uint64_t last = expected_ ? *expected_ - 1 : 0;
    if (head_) {
      if (expected_ && firstSeq_ > head_->fileFirstSeq) {
        return BadResult(head_->fileFirstSeq, "records " + std::to_string(head_->fileFirstSeq) +
                                                  " to " + std::to_string(firstSeq_ - 1) +
                                                  " were cut from the start of the file");
      }
      if (expected_ && firstSeq_ < head_->fileFirstSeq) {
        return BadResult(firstSeq_, "the file starts at seq " + std::to_string(firstSeq_) +
                                        " but the plugin started it at seq " +
                                        std::to_string(head_->fileFirstSeq));
      }
      const uint64_t floor = expected_ ? last : head_->fileFirstSeq - 1;
      if (floor < head_->seq) {
        return BadResult(floor + 1, "the tail was cut: records " + std::to_string(floor + 1) +
                                        " to " + std::to_string(head_->seq) +
                                        " are missing (the plugin's database knows seq " +
                                        std::to_string(head_->seq) + ")");
      }
      if (expected_ && last > head_->seq) {
        return BadResult(head_->seq + 1, "records after seq " + std::to_string(head_->seq) +
                                             " were added outside the plugin");
      }
      if (expected_ && last == head_->seq && previousHash_ != head_->sha256) {
        return BadResult(last, "record " + std::to_string(last) +
                                   " was changed (its hash differs from the database's)");
      }
    }
    std::string notes;
    if (legacy_ > 0) {
      notes += std::to_string(legacy_) +
               " earlier line(s) without seq (written before the chain) are not covered; ";
    }
    // The record this text's first one chains to (for an empty file, the head).
    std::optional<AuditLink> before;
    if (expected_ && firstSeq_ > 1) before = AuditLink{firstSeq_ - 1, firstPrevious_};
    if (!expected_ && head_ && head_->seq > 0) before = AuditLink{head_->seq, head_->sha256};
    if (before) {
      const std::string starts = "the file starts at seq " + std::to_string(before->seq + 1);
      const auto file = findPredecessor_ ? findPredecessor_(*before) : std::nullopt;
      if (!file) {
        return BadResult(before->seq, starts + " but no earlier file beside it ends with record " +
                                          std::to_string(before->seq) + ": records 1 to " +
                                          std::to_string(before->seq) +
                                          " were deleted, truncated or rotated away");
      }
      notes +=
          starts + " (records up to " + std::to_string(before->seq) + " are in '" + *file + "'); ";
    }
    if (key_.empty()) notes += "hmacs not checked (no key); ";
    result_.reason = notes.empty() ? "intact" : notes.substr(0, notes.size() - 2);
    return result_;
  }

 private:
  bool Bad(uint64_t seq, const std::string& reason) {
    result_ = BadResult(seq, reason);
    return false;
  }
  AuditVerification BadResult(uint64_t seq, const std::string& reason) const {
    AuditVerification bad = result_;
    bad.ok = false;
    bad.firstBadSeq = seq;
    bad.reason = reason;
    return bad;
  }

  const std::string& key_;
  const std::optional<AuditHead>& head_;
  const AuditPredecessorFinder& findPredecessor_;
  AuditVerification result_;
  std::optional<uint64_t> expected_;
  uint64_t firstSeq_ = 0;
  std::string firstPrevious_;
  std::string previousHash_ = kAuditZeroHash;
  size_t legacy_ = 0;
};

}  // namespace

bool ParseAuditLine(const std::string& line, Json::Value& record) {
  static const Json::CharReaderBuilder builder;
  std::string errors;
  return ParseJsonText(builder, line, record, errors) && record.isObject();
}

std::string AuditHead::Encode() const {
  return std::to_string(seq) + " " + sha256 + " " + std::to_string(fileFirstSeq);
}

std::optional<AuditHead> AuditHead::Decode(const std::string& text) {
  std::istringstream in(text);
  AuditHead head;
  if (!(in >> head.seq >> head.sha256 >> head.fileFirstSeq) || !IsHex64(head.sha256)) {
    return std::nullopt;
  }
  return head;
}

std::string SignAuditLine(const std::string& unsignedLine, const std::string& key) {
  return unsignedLine.substr(0, unsignedLine.size() - 1) + kHmacKey +
         HmacSha256Hex(key, unsignedLine) + "\"}";
}

bool IsAuditRecord(const std::string& line, const AuditLink& link, const std::string& key) {
  Json::Value record;
  return ParseAuditLine(line, record) && SeqOf(record) == link.seq &&
         Sha256Hex(line) == link.sha256 && HmacValid(line, key);
}

AuditHead ReconcileAuditHead(const AuditHead& stored, const std::vector<std::string>& lastLines,
                             const std::string& key) {
  Json::Value record;
  if (lastLines.empty() || !ParseAuditLine(lastLines.back(), record)) return stored;
  const auto lastSeq = SeqOf(record);
  if (!lastSeq || *lastSeq <= stored.seq) return stored;  // a cut tail: Verify reports it
  // Follow the chain from the stored head's record to the last line.
  AuditLink link{stored.seq, stored.sha256};
  bool linked = stored.seq == 0;
  for (const std::string& line : lastLines) {
    if (!linked) {
      linked = IsAuditRecord(line, link, key);
      continue;
    }
    const auto seq = ParseAuditLine(line, record) ? SeqOf(record) : std::nullopt;
    if (!seq || *seq != link.seq + 1 || record["prev_sha256"] != link.sha256 ||
        !HmacValid(line, key)) {
      break;
    }
    link = AuditLink{*seq, Sha256Hex(line)};
  }
  AuditHead head = stored;
  head.seq = *lastSeq;  // never a seq twice
  // Not chained: the next record names what the plugin wrote, so the break shows.
  if (linked && link.seq == *lastSeq) head.sha256 = link.sha256;
  return head;
}

AuditVerification VerifyAuditText(const std::string& text, const std::string& key,
                                  const std::optional<AuditHead>& head,
                                  const AuditPredecessorFinder& findPredecessor) {
  Checker checker(key, head, findPredecessor);
  size_t begin = 0;
  size_t lineNumber = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    lineNumber++;
    if (end > begin && !checker.Line(text.substr(begin, end - begin), lineNumber)) break;
    begin = end + 1;
  }
  return checker.Finish();
}

}  // namespace CloudIngest
