#pragma once
// What the audit tests share: a temporary audit file, a store of one head as
// the plugin's database keeps it, and reading and writing the file's lines.
#include <gtest/gtest.h>
#include <json/json.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "Core/Audit/AuditChain.h"
#include "Core/Audit/AuditLog.h"
#include "TempDir.h"

namespace CloudIngest::Testing::Audit {

inline constexpr double kT0 = 1'700'000'000.0;
inline const char* const kKey = "audit-secret";

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline std::string Join(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  return text;
}

inline Json::Value Parse(const std::string& line) {
  Json::Value v;
  EXPECT_TRUE(ParseAuditLine(line, v)) << line;
  return v;
}

// A store of one head, as the plugin's database keeps it.
struct HeadStore {
  std::optional<std::string> head;
  AuditChainSettings Settings(const std::string& key = kKey) {
    AuditChainSettings s;
    s.node = "node-a:8042";
    s.key = key;
    s.loadHead = [this] { return head; };
    s.saveHead = [this](const std::string& text) { head = text; };
    return s;
  }
};

inline AuditEvent Event(const std::string& name) {
  AuditEvent e;
  e.event = name;
  e.orthancStudyId = "study-1";
  return e;
}

class AuditChainTest : public ::testing::Test {
 protected:
  // Writes `count` records with the key (or without); returns the file's lines.
  std::vector<std::string> Write(unsigned count, const std::string& key = kKey) {
    AuditLog log(Path(), store_.Settings(key));
    for (unsigned i = 0; i < count; i++) log.Record(Event("upload_ok"), kT0 + i);
    return Lines(ReadAll(Path()));
  }
  std::string Path() const { return dir_.File("audit.jsonl"); }
  std::optional<AuditHead> Head() const { return AuditHead::Decode(store_.head.value_or("")); }

  Testing::TempDir dir_{"chain-test"};
  HeadStore store_;
};

}  // namespace CloudIngest::Testing::Audit
