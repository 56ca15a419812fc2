#include "Core/Audit/SyslogConnection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "Core/Time.h"

namespace CloudIngest {

namespace {

constexpr int kTimeoutSeconds = 3;
constexpr int kMaxDrainReads = 16;

// Makes a blocking socket non-blocking for a scope, so that reading only takes
// what has arrived.
class NonBlocking {
 public:
  explicit NonBlocking(int fd) : fd_(fd), flags_(::fcntl(fd, F_GETFL)) {
    if (flags_ >= 0) ::fcntl(fd_, F_SETFL, flags_ | O_NONBLOCK);
  }
  ~NonBlocking() {
    if (flags_ >= 0) ::fcntl(fd_, F_SETFL, flags_);
  }
  NonBlocking(const NonBlocking&) = delete;
  NonBlocking& operator=(const NonBlocking&) = delete;

 private:
  const int fd_;
  const int flags_;
};

std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  if (code == 0) return "TLS error";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof(buffer));
  ERR_clear_error();
  return buffer;
}

bool IsIpAddress(const std::string& host) {
  unsigned char buffer[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

// RFC 5424 HOSTNAME/APP-NAME/MSGID: printable ASCII without spaces, "-" when empty.
std::string Field(const std::string& text, size_t maxLength) {
  std::string out;
  for (const char c : text) {
    if (out.size() >= maxLength) break;
    out += (c > 0x20 && c < 0x7f) ? c : '_';
  }
  return out.empty() ? "-" : out;
}

}  // namespace

struct SyslogConnection::Tls {
  SSL_CTX* context = nullptr;
  SSL* ssl = nullptr;
  ~Tls() {
    if (ssl != nullptr) {
      SSL_shutdown(ssl);
      SSL_free(ssl);
    }
    SSL_CTX_free(context);
  }
};

SyslogConnection::SyslogConnection(const SyslogSettings& settings) : settings_(settings) {
  const std::string where = settings.host + ":" + std::to_string(settings.port);
  struct addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = settings.protocol == SyslogProtocol::Udp ? SOCK_DGRAM : SOCK_STREAM;
  struct addrinfo* found = nullptr;
  const int resolved =
      getaddrinfo(settings.host.c_str(), std::to_string(settings.port).c_str(), &hints, &found);
  if (resolved != 0) throw SyslogError("cannot resolve " + where + ": " + gai_strerror(resolved));
  std::string lastError = "no address";
  for (auto* a = found; a != nullptr && fd_ < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const struct timeval timeout { kTimeoutSeconds, 0 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      fd_ = fd;
    } else {
      lastError = std::strerror(errno);
      ::close(fd);
    }
  }
  freeaddrinfo(found);
  if (fd_ < 0) throw SyslogError("cannot connect to " + where + ": " + lastError);
  if (settings.protocol == SyslogProtocol::Tcp) {
    const int on = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  }
  if (settings.protocol != SyslogProtocol::Tls) return;

  tls_ = std::make_unique<Tls>();
  tls_->context = SSL_CTX_new(TLS_client_method());
  if (tls_->context == nullptr) throw SyslogError("TLS to " + where + ": " + OpenSslError());
  SSL_CTX_set_min_proto_version(tls_->context, TLS1_2_VERSION);
  SSL_CTX_set_verify(tls_->context, SSL_VERIFY_PEER, nullptr);
  const bool caLoaded = settings.caCertificate.empty()
                            ? SSL_CTX_set_default_verify_paths(tls_->context) == 1
                            : SSL_CTX_load_verify_locations(
                                  tls_->context, settings.caCertificate.c_str(), nullptr) == 1;
  if (!caLoaded) {
    throw SyslogError("TLS to " + where + ": cannot load the CA certificate '" +
                      settings.caCertificate + "': " + OpenSslError());
  }
  tls_->ssl = SSL_new(tls_->context);
  if (tls_->ssl == nullptr) throw SyslogError("TLS to " + where + ": " + OpenSslError());
  X509_VERIFY_PARAM* param = SSL_get0_param(tls_->ssl);
  if (IsIpAddress(settings.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, settings.host.c_str());
  } else {
    SSL_set_tlsext_host_name(tls_->ssl, settings.host.c_str());
    X509_VERIFY_PARAM_set1_host(param, settings.host.c_str(), 0);
  }
  SSL_set_fd(tls_->ssl, fd_);
  if (SSL_connect(tls_->ssl) != 1) {
    const long verify = SSL_get_verify_result(tls_->ssl);
    const std::string why =
        verify != X509_V_OK ? X509_verify_cert_error_string(verify) : OpenSslError();
    throw SyslogError("TLS to " + where + " failed: " + why);
  }
}

SyslogConnection::~SyslogConnection() {
  tls_.reset();
  if (fd_ >= 0) ::close(fd_);
}

bool SyslogConnection::PeerClosed() {
  struct pollfd p {
    fd_, POLLIN | POLLRDHUP, 0
  };
  const bool buffered = tls_ && SSL_has_pending(tls_->ssl) == 1;
  if (::poll(&p, 1, 0) == 0 && !buffered) return false;
  // Readable is not closed: a TLS 1.3 collector built on OpenSSL sends session
  // tickets after the handshake. Read what is there (a collector has nothing
  // to say on a syslog stream, so it is dropped) until it would block; only
  // EOF, close_notify or an error mean closed.
  const NonBlocking nonBlocking(fd_);
  char ignored[4096];
  for (int attempt = 0; attempt < kMaxDrainReads; attempt++) {
    if (tls_) {
      ERR_clear_error();
      const int n = SSL_read(tls_->ssl, ignored, sizeof(ignored));
      if (n > 0) continue;
      const int error = SSL_get_error(tls_->ssl, n);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return false;
      // Closed (SSL_ERROR_ZERO_RETURN is close_notify) or broken: no
      // close_notify of ours into a socket the collector has gone from.
      SSL_set_quiet_shutdown(tls_->ssl, 1);
      ERR_clear_error();
      return true;
    }
    const ssize_t n = ::recv(fd_, ignored, sizeof(ignored), 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
  return false;  // a collector that keeps talking is still there
}

void SyslogConnection::WriteAll(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t written = 0;
    if (tls_) {
      const int n =
          SSL_write(tls_->ssl, bytes.data() + done, static_cast<int>(bytes.size() - done));
      if (n <= 0) {
        SSL_set_quiet_shutdown(tls_->ssl, 1);  // broken: OpenSSL must not write again
        throw SyslogError("TLS write failed: " + OpenSslError());
      }
      written = n;
    } else {
      written = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (written < 0 && errno == EINTR) continue;
      if (written < 0) throw SyslogError(std::string("write failed: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(written);
  }
}

void SyslogConnection::Send(const std::string& message) {
  if (settings_.protocol == SyslogProtocol::Udp) {
    if (::send(fd_, message.data(), message.size(), MSG_NOSIGNAL) < 0) {
      throw SyslogError(std::string("UDP send failed: ") + std::strerror(errno));
    }
    return;
  }
  if (PeerClosed()) throw SyslogError("the collector closed the connection");
  WriteAll(std::to_string(message.size()) + " " + message);
}

std::string FormatSyslogMessage(const std::string& hostname, const std::string& appName,
                                const std::string& msgId, double time, const std::string& msg,
                                bool warning) {
  constexpr int kLogAudit = 13;
  const int priority = kLogAudit * 8 + (warning ? 4 : 5);
  return "<" + std::to_string(priority) + ">1 " + FormatIsoTime(time) + " " + Field(hostname, 255) +
         " " + Field(appName, 48) + " " + std::to_string(static_cast<long>(::getpid())) + " " +
         Field(msgId, 32) + " - " + msg;
}

}  // namespace CloudIngest
