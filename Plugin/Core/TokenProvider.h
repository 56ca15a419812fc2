#pragma once
// OAuth2 client-credentials tokens: cached, refreshed before expiry,
// replaced once when the API says 401. Thread-safe.
#include <functional>
#include <mutex>
#include <string>

#include "Clock.h"
#include "Http.h"

namespace CloudIngest {

struct TokenSettings {
  std::string tokenUrl;
  std::string method = "GET";  // or POST (form body)
  std::string clientId;
  std::string clientSecret;
  std::string scope;
  double refreshMargin =
      60;  // refresh this many seconds before expiry (capped at half the lifetime)
};

struct TokenState {
  bool valid = false;
  double expiresAt = 0;  // Unix seconds
  double issuedAt = 0;
  unsigned refreshFailures = 0;
  std::string lastError;  // never contains the token or the secret
};

class TokenProvider {
 public:
  using IssuedCallback = std::function<void(const TokenState&)>;
  TokenProvider(TokenSettings settings, IHttpClient& http, const IClock& clock,
                IssuedCallback onIssued = nullptr);

  // A valid token; fetches a new one when none is cached or it is about to
  // expire. Throws IngestError (Transient for 5xx/transport, Permanent for 4xx).
  std::string GetToken();
  // The API refused `token` with 401: forget it (if still current).
  void Invalidate(const std::string& token);
  TokenState State() const;

 private:
  std::string Fetch();  // called with mutex_ held
  TokenSettings settings_;
  IHttpClient& http_;
  const IClock& clock_;
  IssuedCallback onIssued_;
  mutable std::mutex mutex_;
  std::string token_;
  TokenState state_;
};

}  // namespace CloudIngest
