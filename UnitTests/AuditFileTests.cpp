// The audit file against its stored head: a deleted or truncated file and
// one that starts after seq 1 without its predecessor are not intact, a crash
// between a line and its head is reconciled at start-up, and a cluster node
// refuses a file another node writes.
#include <gtest/gtest.h>
#include <json/json.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "Core/Audit/AuditChain.h"
#include "Core/Audit/AuditFiles.h"
#include "Core/Audit/AuditLog.h"
#include "Core/Hashes.h"
#include "Fakes/AuditFixture.h"

namespace CloudIngest {
namespace {

using namespace Testing::Audit;
namespace fs = std::filesystem;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Every seq in the file, each once.
void ExpectSeqsOnce(const std::vector<std::string>& lines) {
  std::set<uint64_t> seen;
  for (const auto& line : lines) {
    EXPECT_TRUE(seen.insert(Parse(line)["seq"].asUInt64()).second) << "seq twice: " << line;
  }
}

class AuditFileTest : public AuditChainTest {};

TEST_F(AuditFileTest, ADeletedFileIsMissingAndItsSuccessorIsNotIntact) {
  AuditLog log(Path(), store_.Settings());
  for (int i = 0; i < 5; i++) log.Record(Event("upload_ok"), kT0 + i);
  const std::string fifth = Lines(ReadAll(Path())).back();
  fs::remove(Path());

  const AuditVerification missing = log.Verify();
  EXPECT_FALSE(missing.ok);
  EXPECT_TRUE(Contains(missing.reason, "is missing (deleted?)")) << missing.reason;
  EXPECT_EQ(1u, missing.firstBadSeq.value_or(0));
  EXPECT_FALSE(fs::exists(Path())) << "Verify created the file";

  log.Record(Event("upload_ok"), kT0 + 5);
  const auto lines = Lines(ReadAll(Path()));
  ASSERT_EQ(1u, lines.size());
  EXPECT_EQ(6u, Parse(lines[0])["seq"].asUInt64());
  EXPECT_EQ(Sha256Hex(fifth), Parse(lines[0])["prev_sha256"].asString());
  const AuditVerification after = log.Verify();
  EXPECT_FALSE(after.ok);
  EXPECT_EQ(5u, after.firstBadSeq.value_or(0)) << after.reason;
  EXPECT_TRUE(Contains(after.reason, "deleted, truncated or rotated away")) << after.reason;
}

TEST_F(AuditFileTest, AFileDeletedWhileStoppedIsNotIntactAfterTheRestart) {
  Write(3);
  fs::remove(Path());
  AuditLog log(Path(), store_.Settings());
  const AuditVerification v = log.Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(3u, v.firstBadSeq.value_or(0)) << v.reason;
}

TEST_F(AuditFileTest, VerifyNeitherCreatesNorFollowsARenamedFile) {
  AuditLog log(Path(), store_.Settings());
  log.Record(Event("upload_ok"), kT0);
  log.Record(Event("upload_ok"), kT0 + 1);
  fs::rename(Path(), Path() + ".1");  // logrotate's "nocreate"
  const AuditVerification rotated = log.Verify();
  EXPECT_TRUE(rotated.ok) << rotated.reason;
  EXPECT_TRUE(Contains(rotated.reason, "'audit.jsonl.1'")) << rotated.reason;
  EXPECT_FALSE(fs::exists(Path()));
  // The rotated file moved elsewhere: the chain's start is gone from here.
  fs::rename(Path() + ".1", dir_.File("archived"));
  const AuditVerification away = log.Verify();
  EXPECT_FALSE(away.ok);
  EXPECT_EQ(2u, away.firstBadSeq.value_or(0)) << away.reason;
  EXPECT_FALSE(fs::exists(Path()));
}

TEST_F(AuditFileTest, ATextStartingAfterSeqOneNeedsItsPredecessor) {
  const auto lines = Write(5);
  const std::string tail = Join({lines.begin() + 2, lines.end()});
  const AuditVerification alone = VerifyAuditText(tail, kKey, std::nullopt);
  EXPECT_FALSE(alone.ok);
  EXPECT_EQ(2u, alone.firstBadSeq.value_or(0)) << alone.reason;
  const AuditLink wanted{2, Sha256Hex(lines[1])};
  const AuditVerification found =
      VerifyAuditText(tail, kKey, std::nullopt, [&](const AuditLink& last) {
        return last.seq == wanted.seq && last.sha256 == wanted.sha256
                   ? std::optional<std::string>("audit.jsonl.1")
                   : std::nullopt;
      });
  EXPECT_TRUE(found.ok) << found.reason;
}

TEST_F(AuditFileTest, ARotatedFileIsFoundBesideByItsLastRecord) {
  const auto lines = Write(3);
  fs::rename(Path(), Path() + "-20250101");
  WriteAll(Path() + ".syslog-spool", Join(lines));  // not a rotated audit file
  const AuditLink last{3, Sha256Hex(lines[2])};
  EXPECT_EQ("audit.jsonl-20250101", FindRotatedAuditFile(Path(), last, kKey).value_or(""));
  EXPECT_FALSE(FindRotatedAuditFile(Path(), last, "another-key"));  // its hmac is wrong
  EXPECT_FALSE(FindRotatedAuditFile(Path(), AuditLink{3, Sha256Hex("x")}, kKey));
  fs::remove(Path() + "-20250101");
  EXPECT_FALSE(FindRotatedAuditFile(Path(), last, kKey));
}

TEST_F(AuditFileTest, ALineWrittenBeforeItsHeadWasStoredIsAdoptedAtStartUp) {
  Write(2);
  const auto headOfTwo = store_.head;
  Write(1);
  store_.head = headOfTwo;  // what a crash between record 3's line and its head leaves
  const auto lines = Write(1);
  ASSERT_EQ(4u, lines.size());
  ExpectSeqsOnce(lines);
  EXPECT_EQ(4u, Parse(lines[3])["seq"].asUInt64());
  EXPECT_EQ(Sha256Hex(lines[2]), Parse(lines[3])["prev_sha256"].asString());
  AuditLog log(Path(), store_.Settings());
  const AuditVerification v = log.Verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(4u, v.records);
}

TEST_F(AuditFileTest, KilledBetweenTheLineAndItsHeadTheChainGoesOn) {
  Write(1);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    setenv("CLOUD_INGEST_TEST_KILL_AFTER_AUDIT_SEQ", "2", 1);
    AuditLog log(Path(), store_.Settings());
    log.Record(Event("upload_ok"), kT0);
    _exit(3);  // not reached: the hook kills the process
  }
  int status = 0;
  ASSERT_EQ(child, waitpid(child, &status, 0));
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  ASSERT_EQ(2u, Lines(ReadAll(Path())).size());
  EXPECT_EQ(1u, Head()->seq);  // the child never stored record 2's head
  const auto lines = Write(2);
  ASSERT_EQ(4u, lines.size());
  ExpectSeqsOnce(lines);
  AuditLog log(Path(), store_.Settings());
  const AuditVerification v = log.Verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(4u, v.records);
}

TEST_F(AuditFileTest, RecordsBeyondTheHeadThatDoNotChainMoveTheSeqOnAndShow) {
  Write(2);
  const auto headOfTwo = store_.head;
  const auto more = Write(2);
  std::vector<std::string> edited = more;
  edited[2].replace(edited[2].find("study-1"), 7, "study-9");  // record 3 changed after
  WriteAll(Path(), Join(edited));
  store_.head = headOfTwo;
  const auto lines = Write(1);
  ExpectSeqsOnce(lines);
  EXPECT_EQ(5u, Parse(lines[4])["seq"].asUInt64());
  AuditLog log(Path(), store_.Settings());
  const AuditVerification v = log.Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(3u, v.firstBadSeq.value_or(0)) << v.reason;
}

TEST(AuditReconcile, FollowsTheChainFromTheStoredHeadToTheLastLine) {
  Testing::TempDir dir("reconcile-test");
  HeadStore store;
  {
    AuditLog log(dir.File("a.jsonl"), store.Settings());
    for (int i = 0; i < 4; i++) log.Record(Event("upload_ok"), kT0 + i);
  }
  const auto lines = Lines(ReadAll(dir.File("a.jsonl")));
  AuditHead stored;
  stored.seq = 2;
  stored.sha256 = Sha256Hex(lines[1]);
  const AuditHead adopted = ReconcileAuditHead(stored, lines, kKey);
  EXPECT_EQ(4u, adopted.seq);
  EXPECT_EQ(Sha256Hex(lines[3]), adopted.sha256);
  const AuditHead badKey = ReconcileAuditHead(stored, lines, "another-key");
  EXPECT_EQ(4u, badKey.seq);  // no seq twice, but not adopted
  EXPECT_EQ(stored.sha256, badKey.sha256);
  stored.seq = 4;
  stored.sha256 = Sha256Hex(lines[3]);
  const AuditHead same = ReconcileAuditHead(stored, {lines[0], lines[1]}, kKey);  // cut tail
  EXPECT_EQ(4u, same.seq);
  EXPECT_EQ(stored.sha256, same.sha256);
  EXPECT_EQ(lines, ReadLastAuditLines(dir.File("a.jsonl")));
}

TEST_F(AuditFileTest, AClusterNodeRefusesAFileWhoseLastRecordIsAnotherNodes) {
  Write(2);  // as node-a:8042
  HeadStore other;
  AuditChainSettings b = other.Settings();
  b.node = "node-b";
  b.otherNodesFile = OtherNodesFile::Refuse;
  try {
    AuditLog log(Path(), b);
    FAIL() << "node-b continued node-a's file";
  } catch (const AuditFileOfAnotherNode& e) {
    EXPECT_EQ("node-a:8042", e.Node());
    EXPECT_TRUE(Contains(e.what(), "node-b")) << e.what();
  }
  EXPECT_EQ(2u, Lines(ReadAll(Path())).size());
  b.otherNodesFile = OtherNodesFile::Continue;  // one node whose NodeName changed
  AuditLog renamed(Path(), b);
  renamed.Record(Event("upload_ok"), kT0);
  EXPECT_EQ(3u, Parse(Lines(ReadAll(Path())).back())["seq"].asUInt64());
}

}  // namespace
}  // namespace CloudIngest
