#pragma once
// OAuth2 client-credentials tokens: cached, refreshed before expiry,
// replaced once when the API says 401. Thread-safe: one fetch at a time, made
// outside the lock, so State() never waits for the token endpoint.
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "Core/Clock.h"
#include "Core/Cloud/Http.h"

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
  // HttpAborted (not a refresh failure) when the HTTP client was told to stop.
  std::string GetToken();
  // Always asks the token endpoint (joining a fetch already under way), and
  // caches what it gets: proves the endpoint and the credentials work now.
  // Throws like GetToken, even while a cached token is still valid.
  std::string FetchFresh();
  // The API refused `token` with 401: forget it (if still current).
  void Invalidate(const std::string& token);
  TokenState State() const;

 private:
  enum class FetchPolicy { WhenNeeded, Always };
  // The outcome of one fetch, shared with the callers that waited for it.
  struct Flight {
    bool done = false;
    std::string token;
    std::exception_ptr error;
  };
  std::string Obtain(FetchPolicy policy);
  // The HTTP exchange alone, without the lock; throws IngestError whose message
  // never holds the secret or `currentToken`.
  std::string Fetch(const std::string& currentToken, double& issuedAt, double& expiresIn) const;
  bool UsableLocked(double now) const;
  TokenSettings settings_;
  IHttpClient& http_;
  const IClock& clock_;
  IssuedCallback onIssued_;
  mutable std::mutex mutex_;
  std::condition_variable fetched_;
  std::shared_ptr<Flight> flight_;  // the fetch under way, if any
  std::string token_;
  TokenState state_;
};

}  // namespace CloudIngest
