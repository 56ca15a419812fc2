// The audit log's hash chain: fields on every record, the head kept in a
// store, and VerifyAuditText finding each kind of tampering.
#include <gtest/gtest.h>
#include <json/json.h>

#include <filesystem>

#include "Core/Audit/AuditChain.h"
#include "Core/Audit/AuditLog.h"
#include "Core/Hashes.h"
#include "Fakes/AuditFixture.h"

namespace CloudIngest {
namespace {

using namespace Testing::Audit;

TEST_F(AuditChainTest, EveryRecordCarriesSeqNodePrevHashAndHmac) {
  const auto lines = Write(3);
  ASSERT_EQ(3u, lines.size());
  std::string previous = kAuditZeroHash;
  for (size_t i = 0; i < lines.size(); i++) {
    const Json::Value r = Parse(lines[i]);
    EXPECT_EQ(i + 1, r["seq"].asUInt64());
    EXPECT_EQ("node-a:8042", r["node"].asString());
    EXPECT_EQ(previous, r["prev_sha256"].asString());
    // hmac: over the line as written without it, which is the last key.
    const std::string hmac = r["hmac"].asString();
    const std::string suffix = ",\"hmac\":\"" + hmac + "\"}";
    ASSERT_EQ(suffix, lines[i].substr(lines[i].size() - suffix.size()));
    EXPECT_EQ(HmacSha256Hex(kKey, lines[i].substr(0, lines[i].size() - suffix.size()) + "}"), hmac);
    previous = Sha256Hex(lines[i]);
  }
  ASSERT_TRUE(Head());
  EXPECT_EQ(3u, Head()->seq);
  EXPECT_EQ(previous, Head()->sha256);
}

TEST_F(AuditChainTest, WithoutKeyThereIsNoHmac) {
  const auto lines = Write(1, "");
  EXPECT_FALSE(Parse(lines[0]).isMember("hmac"));
}

TEST_F(AuditChainTest, SeqContinuesAcrossRestartsFromTheStoredHead) {
  Write(2);
  const auto lines = Write(2);
  ASSERT_EQ(4u, lines.size());
  EXPECT_EQ(3u, Parse(lines[2])["seq"].asUInt64());
  EXPECT_EQ(Sha256Hex(lines[1]), Parse(lines[2])["prev_sha256"].asString());
  EXPECT_TRUE(VerifyAuditText(ReadAll(Path()), kKey, Head()).ok);
}

TEST_F(AuditChainTest, ALostHeadIsReadBackFromTheFile) {
  Write(2);
  store_.head.reset();  // a database rebuilt after corruption
  const auto lines = Write(1);
  EXPECT_EQ(3u, Parse(lines[2])["seq"].asUInt64());
  EXPECT_TRUE(VerifyAuditText(ReadAll(Path()), kKey, Head()).ok);
}

TEST_F(AuditChainTest, UntouchedLogVerifies) {
  Write(5);
  AuditLog log(Path(), store_.Settings());
  const AuditVerification v = log.Verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(5u, v.records);
  EXPECT_FALSE(v.firstBadSeq.has_value());
}

struct Tamper {
  const char* name;
  bool withKey;
  uint64_t firstBad;
  void (*apply)(std::vector<std::string>& lines);
};

class AuditTamperTest : public AuditChainTest, public ::testing::WithParamInterface<Tamper> {};

TEST_P(AuditTamperTest, IsFoundAtTheFirstBadSeq) {
  const Tamper& t = GetParam();
  auto lines = Write(5, t.withKey ? kKey : "");
  t.apply(lines);
  WriteAll(Path(), Join(lines));
  const AuditVerification v = VerifyAuditText(ReadAll(Path()), t.withKey ? kKey : "", Head());
  EXPECT_FALSE(v.ok);
  ASSERT_TRUE(v.firstBadSeq.has_value()) << v.reason;
  EXPECT_EQ(t.firstBad, *v.firstBadSeq) << v.reason;
  EXPECT_FALSE(v.reason.empty());
}

void EditThird(std::vector<std::string>& lines) {
  const size_t at = lines[2].find("upload_ok");
  lines[2].replace(at, 9, "upload_no");
}

INSTANTIATE_TEST_SUITE_P(
    Tampering, AuditTamperTest,
    ::testing::
        Values(
            Tamper{"EditedWithKey", true, 3, EditThird},
            Tamper{"EditedWithoutKey", false, 3, EditThird},
            Tamper{"EditedLastWithoutKey", false, 5,
                   [](std::vector<std::string>& l) {
                     l[4].replace(l[4].find("study-1"), 7, "study-9");
                   }},
            Tamper{"Inserted", true, 3,
                   [](std::vector<std::string>& l) { l.insert(l.begin() + 2, l[0]); }},
            Tamper{"InsertedWithoutSeq", false, 3,
                   [](std::vector<std::string>& l) {
                     l.insert(l.begin() + 2, R"({"time":"x","event":"upload_ok"})");
                   }},
            Tamper{"Deleted", true, 2, [](std::vector<std::string>& l) { l.erase(l.begin() + 1); }},
            Tamper{"DeletedFirst", false, 1,
                   [](std::vector<std::string>& l) { l.erase(l.begin()); }},
            Tamper{"Swapped", true, 2, [](std::vector<std::string>& l) { std::swap(l[1], l[2]); }},
            Tamper{"CutTail", true, 4, [](std::vector<std::string>& l) { l.resize(3); }},
            Tamper{"CutEverything", true, 1, [](std::vector<std::string>& l) { l.clear(); }},
            Tamper{
                "ForgedHmac", true,
                4,
                [](std::vector<std::string>& l) {
                  // Rewritten and re-signed with another key, chain fixed after it.
                  Json::Value r = Parse(l[3]);
                  const std::string hmac = r["hmac"].asString();
                  const std::string unsignedLine =
                      l[3].substr(0, l[3].size() - hmac.size() - 11) + "}";
                  std::string edited = unsignedLine;
                  edited.replace(edited.find("study-1"), 7, "study-X");
                  l[3] = SignAuditLine(edited, "guessed-key");
                }}),
    [](const ::testing::TestParamInfo<Tamper>& info) { return std::string(info.param.name); });

TEST_F(AuditChainTest, RotatedFileContinuesTheChainAndBothFilesVerifyInOrder) {
  AuditLog log(Path(), store_.Settings());
  log.Record(Event("upload_ok"), kT0);
  log.Record(Event("upload_ok"), kT0 + 1);
  std::filesystem::rename(Path(), Path() + ".1");  // logrotate's "create"
  log.Record(Event("study_sent"), kT0 + 2);
  const auto current = Lines(ReadAll(Path()));
  ASSERT_EQ(1u, current.size());
  EXPECT_EQ(3u, Parse(current[0])["seq"].asUInt64());
  const AuditVerification v = log.Verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_NE(std::string::npos, v.reason.find("starts at seq 3")) << v.reason;
  const AuditVerification both =
      VerifyAuditText(ReadAll(Path() + ".1") + ReadAll(Path()), kKey, std::nullopt);
  EXPECT_TRUE(both.ok) << both.reason;
  EXPECT_EQ(3u, both.records);
}

TEST_F(AuditChainTest, ARotatedFileVerifiesEmptyAndFindsLinesCutFromItsStart) {
  AuditLog log(Path(), store_.Settings());
  log.Record(Event("upload_ok"), kT0);
  std::filesystem::rename(Path(), Path() + ".1");
  const AuditVerification empty = log.Verify();  // no record since the rotation
  EXPECT_TRUE(empty.ok) << empty.reason;
  EXPECT_EQ(0u, empty.records);
  for (int i = 0; i < 3; i++) log.Record(Event("upload_ok"), kT0 + i);
  auto lines = Lines(ReadAll(Path()));
  lines.erase(lines.begin());
  WriteAll(Path(), Join(lines));
  const AuditVerification v = VerifyAuditText(ReadAll(Path()), kKey, Head());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(2u, v.firstBadSeq.value_or(0)) << v.reason;
}

TEST_F(AuditChainTest, OlderRecordsWithoutChainAreSkippedAndSaidSo) {
  WriteAll(Path(), "{\"time\":\"2020-01-01T00:00:00.000Z\",\"event\":\"upload_ok\"}\n");
  const auto lines = Write(2);
  ASSERT_EQ(3u, lines.size());
  EXPECT_EQ(1u, Parse(lines[1])["seq"].asUInt64());
  EXPECT_EQ(kAuditZeroHash, Parse(lines[1])["prev_sha256"].asString());
  const AuditVerification v = VerifyAuditText(ReadAll(Path()), kKey, Head());
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(2u, v.records);
  EXPECT_NE(std::string::npos, v.reason.find("1 earlier line(s) without seq")) << v.reason;
}

TEST(AuditHeadText, RoundTripsAndRefusesGarbage) {
  AuditHead head;
  head.seq = 42;
  head.sha256 = std::string(64, 'a');
  head.fileFirstSeq = 40;
  const auto back = AuditHead::Decode(head.Encode());
  ASSERT_TRUE(back);
  EXPECT_EQ(42u, back->seq);
  EXPECT_EQ(head.sha256, back->sha256);
  EXPECT_EQ(40u, back->fileFirstSeq);
  EXPECT_FALSE(AuditHead::Decode("42 nothex 1"));
  EXPECT_FALSE(AuditHead::Decode(""));
}

}  // namespace
}  // namespace CloudIngest
