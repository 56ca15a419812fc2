// AuditSyslog: RFC 5424 messages, octet-counted over TCP, spooled while the
// collector is down and delivered in order once it is back, across restarts.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "Core/Audit/SyslogConnection.h"
#include "Core/Audit/SyslogForwarder.h"
#include "Fakes/RecordingLogger.h"
#include "Fakes/TempDir.h"

namespace CloudIngest {
namespace {

// A collector on 127.0.0.1 reading RFC 5425 frames ("LEN SP MSG").
class FakeCollector {
 public:
  explicit FakeCollector(uint16_t port = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int on = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(fd_, 4) != 0) {
      throw std::runtime_error("cannot listen");
    }
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeCollector() {
    ::shutdown(fd_, SHUT_RDWR);
    const int client = client_.load();
    if (client >= 0) ::shutdown(client, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t Port() const { return port_; }
  // Waits (bounded) until `count` messages arrived; returns what arrived.
  std::vector<std::string> WaitFor(size_t count, double seconds = 20) {
    std::unique_lock<std::mutex> lock(mutex_);
    arrived_.wait_for(lock, std::chrono::duration<double>(seconds),
                      [&] { return messages_.size() >= count; });
    return messages_;
  }

 private:
  void Serve() {
    for (;;) {
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      client_ = client;
      std::string buffer;
      char chunk[4096];
      ssize_t n;
      while ((n = ::read(client, chunk, sizeof(chunk))) > 0) {
        buffer.append(chunk, static_cast<size_t>(n));
        for (;;) {
          const size_t space = buffer.find(' ');
          if (space == std::string::npos) break;
          const size_t length = std::stoul(buffer.substr(0, space));
          if (buffer.size() < space + 1 + length) break;
          std::lock_guard<std::mutex> lock(mutex_);
          messages_.push_back(buffer.substr(space + 1, length));
          buffer.erase(0, space + 1 + length);
          arrived_.notify_all();
        }
      }
      client_ = -1;
      ::close(client);
    }
  }

  int fd_ = -1;
  std::atomic<int> client_{-1};
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<std::string> messages_;
};

uint16_t UnusedPort() {
  FakeCollector probe;
  return probe.Port();  // closed again when it goes
}

class SyslogTest : public ::testing::Test {
 protected:
  SyslogSettings Settings(uint16_t port) const {
    SyslogSettings s;
    s.enabled = true;
    s.host = "127.0.0.1";
    s.port = port;
    s.protocol = SyslogProtocol::Tcp;
    return s;
  }
  std::string Spool() const { return dir_.File("audit.syslog-spool"); }

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
  FakeCollector collector;
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
  FakeCollector collector(port);  // the collector comes back
  const auto got = collector.WaitFor(3);
  EXPECT_EQ((std::vector<std::string>{"one", "two", "three"}), got);
  for (int i = 0; i < 100 && forwarder.Pending() > 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(0u, forwarder.Pending());
}

TEST_F(SyslogTest, ARestartedCollectorGetsTheRestOnceEach) {
  const uint16_t port = UnusedPort();
  SyslogForwarder forwarder(Settings(port), Spool(), log_, threads_);
  {
    FakeCollector first(port);
    forwarder.Enqueue("a");
    ASSERT_EQ(1u, first.WaitFor(1).size());
  }  // stopped: closes its end
  forwarder.Enqueue("b");
  forwarder.Enqueue("c");
  FakeCollector second(port);
  EXPECT_EQ((std::vector<std::string>{"b", "c"}), second.WaitFor(2));
}

TEST_F(SyslogTest, UnreachableTlsCollectorIsReportedNotThrown) {
  SyslogSettings settings = Settings(UnusedPort());
  settings.protocol = SyslogProtocol::Tls;
  EXPECT_THROW(SyslogConnection connection(settings), SyslogError);
}

}  // namespace
}  // namespace CloudIngest
