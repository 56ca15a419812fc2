#pragma once
// A syslog collector on 127.0.0.1 reading RFC 5425 frames ("LEN SP MSG") over
// TCP, or over TLS 1.3 as an OpenSSL server does it: two session tickets right
// after the handshake (rsyslog's GnuTLS sends none). Counts the connections.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace CloudIngest::Testing {

class FakeSyslogCollector {
 public:
  enum class Transport { Tcp, Tls };

  // For TLS, a self-signed certificate for IP 127.0.0.1 is written to
  // `certificatePath` (the client's CA file).
  explicit FakeSyslogCollector(uint16_t port = 0, Transport transport = Transport::Tcp,
                               const std::string& certificatePath = "") {
    if (transport == Transport::Tls) tls_ = MakeServerContext(certificatePath);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int on = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(fd_, 4) != 0) {
      ::close(fd_);
      throw std::runtime_error("cannot listen");
    }
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeSyslogCollector() {
    ::shutdown(fd_, SHUT_RDWR);
    // Ends the read; the client sees the close when Serve() closes the socket
    // (SHUT_RDWR would make OpenSSL's alert on that EOF raise SIGPIPE).
    const int client = client_.load();
    if (client >= 0) ::shutdown(client, SHUT_RD);
    ::close(fd_);
    thread_.join();
  }
  FakeSyslogCollector(const FakeSyslogCollector&) = delete;
  FakeSyslogCollector& operator=(const FakeSyslogCollector&) = delete;

  uint16_t Port() const { return port_; }
  int Connections() const { return connections_.load(); }
  // Waits (bounded) until `count` messages arrived; returns what arrived.
  std::vector<std::string> WaitFor(size_t count, double seconds = 20) {
    std::unique_lock<std::mutex> lock(mutex_);
    arrived_.wait_for(lock, std::chrono::duration<double>(seconds),
                      [&] { return messages_.size() >= count; });
    return messages_;
  }

 private:
  using Context = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
  using Ssl = std::unique_ptr<SSL, decltype(&SSL_free)>;

  static Context MakeServerContext(const std::string& certificatePath) {
    const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"),
                                                                  EVP_PKEY_free);
    const std::unique_ptr<X509, decltype(&X509_free)> certificate(X509_new(), X509_free);
    X509* const cert = certificate.get();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key.get());
    X509_NAME* const name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX extensions;
    X509V3_set_ctx_nodb(&extensions);
    X509V3_set_ctx(&extensions, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* const san =
        X509V3_EXT_conf_nid(nullptr, &extensions, NID_subject_alt_name, "IP:127.0.0.1");
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(cert, key.get(), EVP_sha256());

    const std::unique_ptr<FILE, decltype(&std::fclose)> file(
        std::fopen(certificatePath.c_str(), "w"), std::fclose);
    if (!file || PEM_write_X509(file.get(), cert) != 1) {
      throw std::runtime_error("cannot write " + certificatePath);
    }
    Context context(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    SSL_CTX_set_min_proto_version(context.get(), TLS1_3_VERSION);
    if (SSL_CTX_use_certificate(context.get(), cert) != 1 ||
        SSL_CTX_use_PrivateKey(context.get(), key.get()) != 1) {
      throw std::runtime_error("cannot make the TLS collector's context");
    }
    return context;
  }

  void Serve() {
    for (;;) {
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      client_ = client;
      connections_++;
      Ssl ssl(tls_ ? SSL_new(tls_.get()) : nullptr, SSL_free);
      if (ssl) SSL_set_fd(ssl.get(), client);
      if (!ssl || SSL_accept(ssl.get()) == 1) Read(client, ssl.get());
      client_ = -1;
      ::close(client);
    }
  }

  void Read(int client, SSL* ssl) {
    std::string buffer;
    char chunk[4096];
    for (;;) {
      const long n = ssl != nullptr ? SSL_read(ssl, chunk, sizeof(chunk))
                                    : ::read(client, chunk, sizeof(chunk));
      if (n <= 0) return;
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
  }

  Context tls_{nullptr, SSL_CTX_free};
  int fd_ = -1;
  std::atomic<int> client_{-1};
  std::atomic<int> connections_{0};
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<std::string> messages_;
};

}  // namespace CloudIngest::Testing
