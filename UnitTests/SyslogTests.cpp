// AuditSyslog: RFC 5424 messages, octet-counted over TCP or TLS, spooled while
// the collector is down and delivered in order once it is back, across restarts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "Core/Audit/SyslogConnection.h"
#include "Core/Audit/SyslogForwarder.h"
#include "Fakes/FakeSyslogCollector.h"
#include "Fakes/RecordingLogger.h"
#include "Fakes/TempDir.h"

namespace CloudIngest {
namespace {

using Testing::FakeSyslogCollector;
using Transport = FakeSyslogCollector::Transport;

uint16_t UnusedPort() {
  FakeSyslogCollector probe;
  return probe.Port();  // closed again when it goes
}

class SyslogTest : public ::testing::Test {
 protected:
  SyslogSettings Settings(uint16_t port, Transport transport = Transport::Tcp) const {
    SyslogSettings s;
    s.enabled = true;
    s.host = "127.0.0.1";
    s.port = port;
    s.protocol = transport == Transport::Tls ? SyslogProtocol::Tls : SyslogProtocol::Tcp;
    if (transport == Transport::Tls) s.caCertificate = Certificate();
    return s;
  }
  std::string Spool() const { return dir_.File("audit.syslog-spool"); }
  std::string Certificate() const { return dir_.File("collector.pem"); }

  // The collector stops (FIN, no close_notify) between "a" and "b": "b" must
  // not go into the dead connection but to the next collector, once.
  void ExpectRestartedCollectorGetsTheRestOnceEach(Transport transport) {
    const uint16_t port = UnusedPort();
    SyslogForwarder forwarder(Settings(port, transport), Spool(), log_, threads_);
    {
      FakeSyslogCollector first(port, transport, Certificate());
      forwarder.Enqueue("a");
      ASSERT_EQ(1u, first.WaitFor(1).size());
    }  // stopped: closes its end
    forwarder.Enqueue("b");
    forwarder.Enqueue("c");
    FakeSyslogCollector second(port, transport, Certificate());
    EXPECT_EQ((std::vector<std::string>{"b", "c"}), second.WaitFor(2));
  }

  Testing::TempDir dir_{"syslog"};
  Testing::RecordingLogger log_;
  ThreadStarter threads_{log_};
};

TEST(SyslogFormat, IsRfc5424WithAuditFacility) {
  const std::string m = FormatSyslogMessage("node-a:8042", "orthanc-cloud-ingest", "upload_ok",
                                            1'700'000'000.0, R"({"seq":1})", false);
  EXPECT_EQ("<109>1 2023-11-14T22:13:20.000Z node-a:8042 orthanc-cloud-ingest " +
                std::to_string(::getpid()) + " upload_ok - {\"seq\":1}",
            m);
  EXPECT_EQ(0u, FormatSyslogMessage("h", "a", "access_denied", 0, "x", true).find("<108>1 "));
  EXPECT_NE(std::string::npos, FormatSyslogMessage("", "a b", "", 0, "x", false).find(" - a_b "));
}

TEST_F(SyslogTest, DeliversInOrderWithOctetCounting) {
  FakeSyslogCollector collector;
  SyslogForwarder forwarder(Settings(collector.Port()), Spool(), log_, threads_);
  for (int i = 1; i <= 50; i++) forwarder.Enqueue("message " + std::to_string(i));
  const auto got = collector.WaitFor(50);
  ASSERT_EQ(50u, got.size());
  for (int i = 1; i <= 50; i++) EXPECT_EQ("message " + std::to_string(i), got[i - 1]);
}

TEST_F(SyslogTest, SpoolsWhileTheCollectorIsDownAndLosesNothing) {
  const uint16_t port = UnusedPort();
  {
    SyslogForwarder forwarder(Settings(port), Spool(), log_, threads_);
    forwarder.Enqueue("one");
    forwarder.Enqueue("two");
    EXPECT_EQ(2u, forwarder.Pending());
  }  // Orthanc stops with both still spooled
  SyslogForwarder forwarder(Settings(port), Spool(), log_, threads_);
  EXPECT_EQ(2u, forwarder.Pending());
  forwarder.Enqueue("three");
  FakeSyslogCollector collector(port);  // the collector comes back
  const auto got = collector.WaitFor(3);
  EXPECT_EQ((std::vector<std::string>{"one", "two", "three"}), got);
  for (int i = 0; i < 100 && forwarder.Pending() > 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(0u, forwarder.Pending());
}

TEST_F(SyslogTest, ARestartedCollectorGetsTheRestOnceEach) {
  ExpectRestartedCollectorGetsTheRestOnceEach(Transport::Tcp);
}

TEST_F(SyslogTest, ARestartedTlsCollectorGetsTheRestOnceEach) {
  ExpectRestartedCollectorGetsTheRestOnceEach(Transport::Tls);
}

// Issue 21 item 8: an OpenSSL collector's TLS 1.3 session tickets made the
// socket readable, which was taken for a closed peer: a reconnect (and a
// warning) after every burst.
TEST_F(SyslogTest, TlsSessionTicketsDoNotMakeItReconnect) {
  FakeSyslogCollector collector(0, Transport::Tls, Certificate());
  SyslogForwarder forwarder(Settings(collector.Port(), Transport::Tls), Spool(), log_, threads_);
  constexpr size_t kBursts = 5;
  constexpr size_t kPerBurst = 8;
  for (size_t burst = 1; burst <= kBursts; burst++) {
    for (size_t i = 0; i < kPerBurst; i++) forwarder.Enqueue("record " + std::to_string(i));
    ASSERT_EQ(burst * kPerBurst, collector.WaitFor(burst * kPerBurst).size());
    // Idle between bursts, as audit records come: the tickets wait unread.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(1, collector.Connections());
  EXPECT_EQ(0u, log_.Count("syslog collector"));
}

TEST_F(SyslogTest, UnreachableTlsCollectorIsReportedNotThrown) {
  SyslogSettings settings = Settings(UnusedPort());
  settings.protocol = SyslogProtocol::Tls;
  EXPECT_THROW(SyslogConnection connection(settings), SyslogError);
}

}  // namespace
}  // namespace CloudIngest
