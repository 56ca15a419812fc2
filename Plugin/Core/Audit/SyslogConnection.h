#pragma once
// One connection to a syslog collector: UDP (a datagram per message), TCP or
// TLS (OpenSSL) with RFC 5425 octet-counting framing ("LEN SP MSG").
#include <memory>
#include <stdexcept>
#include <string>

#include "Core/Configuration/Configuration.h"

namespace CloudIngest {

class SyslogError : public std::runtime_error {
 public:
  explicit SyslogError(const std::string& what) : std::runtime_error(what) {}
};

class SyslogConnection {
 public:
  // Connects (and for TLS, verifies the collector's certificate and name).
  // Throws SyslogError.
  explicit SyslogConnection(const SyslogSettings& settings);
  ~SyslogConnection();
  SyslogConnection(const SyslogConnection&) = delete;
  SyslogConnection& operator=(const SyslogConnection&) = delete;

  // Throws SyslogError; the connection is then unusable. Before writing,
  // a stream the collector closed (EOF, close_notify, an error) is noticed,
  // so the message is not written into a socket that would drop it.
  void Send(const std::string& message);

 private:
  struct Tls;
  void WriteAll(const std::string& bytes);
  bool PeerClosed();  // reads (and drops) what the collector sent

  const SyslogSettings settings_;
  int fd_ = -1;
  std::unique_ptr<Tls> tls_;
};

// An RFC 5424 message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG,
// facility "log audit" (13), severity notice (5) or warning (4) for refusals.
std::string FormatSyslogMessage(const std::string& hostname, const std::string& appName,
                                const std::string& msgId, double time, const std::string& msg,
                                bool warning);

}  // namespace CloudIngest
