#include <gtest/gtest.h>
#include <json/json.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "Core/Audit/AuditLog.h"
#include "Core/Time.h"
#include "Fakes/TempDir.h"

namespace CloudIngest {
namespace {

constexpr double kT0 = 1'700'000'000.123;  // 2023-11-14T22:13:20.123Z

using AuditTempDir = Testing::TempDir;

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
  }
  return lines;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Strict parse: the whole line must be exactly one JSON object.
Json::Value ParseLine(const std::string& line) {
  Json::CharReaderBuilder builder;
  Json::Value strict;
  Json::CharReaderBuilder::strictMode(&strict);
  builder.settings_ = strict;
  std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  Json::Value value;
  std::string errors;
  if (!reader->parse(line.data(), line.data() + line.size(), &value, &errors) ||
      !value.isObject()) {
    ADD_FAILURE() << "not a JSON object: " << line << " (" << errors << ")";
    return Json::Value(Json::objectValue);
  }
  return value;
}

bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) {
      return false;
    }
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        return false;
      }
    }
    i += n;
  }
  return true;
}

AuditEvent Named(const std::string& name) {
  AuditEvent event;
  event.event = name;
  return event;
}

class AuditLogTest : public ::testing::Test {
 protected:
  std::string LogPath() const { return dir_.File("audit.jsonl"); }
  AuditTempDir dir_;
};

TEST(AuditTime, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(FormatIsoTime(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTime(kT0), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatIsoTime(1'700'000'000.9996), "2023-11-14T22:13:21.000Z");  // rounds, carries
  EXPECT_EQ(FormatIsoTime(951'782'400.5), "2000-02-29T00:00:00.500Z");
  EXPECT_EQ(FormatIsoTime(-0.5), "1969-12-31T23:59:59.500Z");
}

TEST_F(AuditLogTest, WritesOneCompleteObjectPerLine) {
  AuditLog log(LogPath());
  EXPECT_EQ(log.Path(), LogPath());
  AuditEvent event;
  event.event = "upload_ok";
  event.orthancStudyId = "6b9e19d9-62094390-5f9ddb01-4a191ae7-9766b715";
  event.studyInstanceUid = "1.2.840.113619.2.1";
  event.orderId = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
  event.sopInstanceUid = "1.2.840.113619.2.1.1";
  event.url = "https://bucket.s3.example.com/key/1.dcm";
  event.bytes = 524288;
  event.sha256 = std::string(64, 'a');
  event.httpStatus = 200;
  event.attempt = 2;
  event.user = "alice";
  event.detail = "ETag matched";
  log.Record(event, kT0);

  const std::string all = ReadAll(LogPath());
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back(), '\n');
  const auto lines = ReadLines(LogPath());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("{\"time\":\"2023-11-14T22:13:20.123Z\",\"event\":\"upload_ok\"", 0), 0u)
      << lines[0];
  const Json::Value v = ParseLine(lines[0]);
  EXPECT_EQ(v["time"].asString(), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(v["event"].asString(), "upload_ok");
  EXPECT_EQ(v["orthanc_study_id"].asString(), event.orthancStudyId);
  EXPECT_EQ(v["study_instance_uid"].asString(), event.studyInstanceUid);
  EXPECT_EQ(v["order_id"].asString(), event.orderId);
  EXPECT_EQ(v["sop_instance_uid"].asString(), event.sopInstanceUid);
  EXPECT_EQ(v["url"].asString(), event.url);
  ASSERT_TRUE(v["bytes"].isIntegral());
  EXPECT_EQ(v["bytes"].asInt64(), 524288);
  EXPECT_EQ(v["sha256"].asString(), event.sha256);
  ASSERT_TRUE(v["http_status"].isIntegral());
  EXPECT_EQ(v["http_status"].asInt(), 200);
  ASSERT_TRUE(v["attempt"].isIntegral());
  EXPECT_EQ(v["attempt"].asInt(), 2);
  EXPECT_EQ(v["user"].asString(), "alice");
  EXPECT_EQ(v["detail"].asString(), "ETag matched");
  EXPECT_EQ(v["seq"].asUInt64(), 1u);  // the chain's fields (AuditChainTests.cpp)
  EXPECT_EQ(v["prev_sha256"].asString(), std::string(64, '0'));
  EXPECT_EQ(v.size(), 15u);
}

TEST_F(AuditLogTest, OmitsUnsetFields) {
  AuditLog log(LogPath());
  AuditEvent event;
  event.event = "token_issued";
  log.Record(event, kT0);
  AuditEvent zeroBytes;
  zeroBytes.event = "upload_ok";
  zeroBytes.bytes = 0;  // an empty file is still a size worth logging
  log.Record(zeroBytes, kT0);
  const auto lines = ReadLines(LogPath());
  ASSERT_EQ(lines.size(), 2u);
  const Json::Value first = ParseLine(lines[0]);
  EXPECT_EQ(first.getMemberNames(),
            (std::vector<std::string>{"event", "prev_sha256", "seq", "time"}));
  const Json::Value second = ParseLine(lines[1]);
  EXPECT_TRUE(second.isMember("bytes"));
  EXPECT_EQ(second["bytes"].asInt64(), 0);
  EXPECT_FALSE(second.isMember("http_status"));
  EXPECT_FALSE(second.isMember("attempt"));
  EXPECT_FALSE(second.isMember("url"));
}

TEST_F(AuditLogTest, StripsQueryStringsFromUrlAndDetail) {
  AuditLog log(LogPath());
  AuditEvent event;
  event.event = "url_issued";
  event.url =
      "https://s3.example.com/bucket/a%20b.dcm?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-"
      "Signature=deadbeef#frag";
  event.detail =
      "PUT failed for HTTPS://s3.example.com/b/k.dcm?X-Amz-Signature=cafebabe: 403; "
      "also \"http://127.0.0.1:9000/x?token=secret1\" and <https://h/p#sig=secret2> "
      "and plain text? with a question mark";
  log.Record(event, kT0);
  const std::string all = ReadAll(LogPath());
  EXPECT_EQ(all.find("deadbeef"), std::string::npos);
  EXPECT_EQ(all.find("cafebabe"), std::string::npos);
  EXPECT_EQ(all.find("secret1"), std::string::npos);
  EXPECT_EQ(all.find("secret2"), std::string::npos);
  EXPECT_EQ(all.find("X-Amz"), std::string::npos);
  const Json::Value v = ParseLine(ReadLines(LogPath()).at(0));
  EXPECT_EQ(v["url"].asString(), "https://s3.example.com/bucket/a%20b.dcm");
  EXPECT_EQ(v["detail"].asString(),
            "PUT failed for HTTPS://s3.example.com/b/k.dcm 403; also "
            "\"http://127.0.0.1:9000/x\" and <https://h/p> and plain text? with a question mark");
}

TEST_F(AuditLogTest, RemovesCredentialsFromUrls) {
  AuditLog log(LogPath());
  AuditEvent event;
  event.event = "upload_failed";
  event.url = "https://user:hunter2@store.example.com/k.dcm?sig=1";
  event.detail = "proxy http://proxyuser:pa55@10.0.0.1:3128/ refused";
  log.Record(event, kT0);
  const std::string all = ReadAll(LogPath());
  EXPECT_EQ(all.find("hunter2"), std::string::npos);
  EXPECT_EQ(all.find("pa55"), std::string::npos);
  const Json::Value v = ParseLine(ReadLines(LogPath()).at(0));
  EXPECT_EQ(v["url"].asString(), "https://store.example.com/k.dcm");
  EXPECT_EQ(v["detail"].asString(), "proxy http://10.0.0.1:3128/ refused");
}

TEST_F(AuditLogTest, RedactsBearerTokensInDetail) {
  AuditLog log(LogPath());
  AuditEvent event;
  event.event = "upload_failed";
  event.detail = "server echoed Authorization: Bearer eyJhbGciOi.secretpart, then closed";
  log.Record(event, kT0);
  const std::string all = ReadAll(LogPath());
  EXPECT_EQ(all.find("eyJhbGciOi"), std::string::npos);
  EXPECT_EQ(ParseLine(ReadLines(LogPath()).at(0))["detail"].asString(),
            "server echoed Authorization: Bearer [redacted], then closed");
}

TEST_F(AuditLogTest, ControlCharactersAndBadUtf8StayOnOneValidLine) {
  AuditLog log(LogPath());
  AuditEvent event;
  event.event = "study_failed";
  event.user = "J\xC3\xBCrgen";                                      // valid UTF-8 (ü)
  event.detail = "line1\nline2\r\t\"quoted\" \\ bad:\xFF\xC3( end";  // invalid bytes
  log.Record(event, kT0);
  const std::string all = ReadAll(LogPath());
  EXPECT_TRUE(IsValidUtf8(all));
  const auto lines = ReadLines(LogPath());
  ASSERT_EQ(lines.size(), 1u);
  const Json::Value v = ParseLine(lines[0]);
  EXPECT_EQ(v["user"].asString(), "J\xC3\xBCrgen");
  EXPECT_NE(all.find("J\xC3\xBCrgen"), std::string::npos);  // emitted as UTF-8, not \u escapes
  EXPECT_EQ(v["detail"].asString(),
            "line1\nline2\r\t\"quoted\" \\ bad:\xEF\xBF\xBD\xEF\xBF\xBD( end");
}

TEST_F(AuditLogTest, LongDetailIsTruncated) {
  AuditLog log(LogPath());
  AuditEvent event;
  event.event = "upload_failed";
  event.detail = std::string(100000, 'x');
  log.Record(event, kT0);
  const Json::Value v = ParseLine(ReadLines(LogPath()).at(0));
  EXPECT_LT(v["detail"].asString().size(), 5000u);
  EXPECT_GT(v["detail"].asString().size(), 1000u);
}

TEST_F(AuditLogTest, AppendsAcrossReopenWithRestrictedMode) {
  const mode_t previous = umask(022);
  {
    AuditLog log(LogPath());
    log.Record(Named("order_created"), kT0);
  }
  umask(previous);
  struct stat info {};
  ASSERT_EQ(stat(LogPath().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0640u);
  {
    AuditLog log(LogPath());
    log.Record(Named("study_sent"), kT0 + 1);
  }
  const auto lines = ReadLines(LogPath());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(ParseLine(lines[0])["event"].asString(), "order_created");
  EXPECT_EQ(ParseLine(lines[1])["event"].asString(), "study_sent");
}

TEST_F(AuditLogTest, ConcurrentWritersProduceWholeLines) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  AuditLog first(LogPath());
  AuditLog second(LogPath());  // two handles on one file, as after a reload
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AuditLog& log = t % 2 == 0 ? first : second;
      for (int i = 0; i < kPerThread; ++i) {
        AuditEvent event;
        event.event = "upload_ok";
        event.sopInstanceUid = std::to_string(t) + "." + std::to_string(i);
        event.detail = std::string(500 + (i % 7) * 300, static_cast<char>('a' + t));
        log.Record(event, kT0 + i);
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  const auto lines = ReadLines(LogPath());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<std::string> seen;
  for (const auto& line : lines) {
    const Json::Value v = ParseLine(line);
    const std::string uid = v["sop_instance_uid"].asString();
    const char expected = static_cast<char>('a' + (uid.at(0) - '0'));
    EXPECT_EQ(v["detail"].asString().find_first_not_of(expected), std::string::npos);
    seen.insert(uid);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(AuditLogTest, LineSurvivesKill9) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    AuditLog log(LogPath());
    AuditEvent event;
    event.event = "study_sent";
    event.orthancStudyId = "abc";
    log.Record(event, kT0);
    raise(SIGKILL);  // no destructor, no flush at exit
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  const auto lines = ReadLines(LogPath());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(ParseLine(lines[0])["orthanc_study_id"].asString(), "abc");
}

TEST_F(AuditLogTest, FullDiskThrowsAuditError) {
  AuditLog log("/dev/full");
  try {
    log.Record(Named("upload_ok"), kT0);
    FAIL() << "expected AuditError";
  } catch (const AuditError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("/dev/full"), std::string::npos) << what;
    EXPECT_NE(what.find("No space left on device"), std::string::npos) << what;
  }
}

TEST_F(AuditLogTest, UnopenablePathThrowsAuditError) {
  const std::string path = dir_.File("missing-dir/audit.jsonl");
  try {
    AuditLog log(path);
    FAIL() << "expected AuditError";
  } catch (const AuditError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("No such file or directory"), std::string::npos) << what;
  }
  EXPECT_THROW(AuditLog log(dir_.File("")), AuditError);  // a directory
}

}  // namespace
}  // namespace CloudIngest
