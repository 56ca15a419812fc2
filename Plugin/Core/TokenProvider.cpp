#include "TokenProvider.h"

#include "Text.h"

#include <algorithm>

#include "ApiResponses.h"
#include "IngestError.h"

namespace CloudIngest {

namespace {

std::string ToUpperAscii(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](char c) {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  });
  return text;
}

}  // namespace

TokenProvider::TokenProvider(TokenSettings settings, IHttpClient& http, const IClock& clock,
                             IssuedCallback onIssued)
    : settings_(std::move(settings)), http_(http), clock_(clock), onIssued_(std::move(onIssued)) {}

std::string TokenProvider::GetToken() {
  std::unique_lock<std::mutex> lock(mutex_);
  const double now = clock_.Now();
  const bool usable = !token_.empty() && now < state_.expiresAt;
  if (usable) {
    const double lifetime = state_.expiresAt - state_.issuedAt;
    const double margin = std::min(settings_.refreshMargin, lifetime / 2);
    if (now < state_.expiresAt - margin) {
      return token_;
    }
  }

  // Holding the lock while fetching is deliberate: concurrent callers wait for
  // one fetch instead of each asking the token endpoint.
  std::string token;
  try {
    token = Fetch();
  } catch (const IngestError&) {
    if (usable) {
      // Refreshing early failed but the current token has not expired yet:
      // keep using it (the failure is recorded in the state).
      return token_;
    }
    throw;
  }
  const TokenState issued = state_;
  lock.unlock();

  // Outside the lock, so the callback may call State() (e.g. to audit it).
  // A failing callback must not turn a valid token into a failure.
  if (onIssued_) {
    try {
      onIssued_(issued);
    } catch (...) {
    }
  }
  return token;
}

std::string TokenProvider::Fetch() {
  const std::string query =
      "grant_type=client_credentials" +
      (settings_.scope.empty() ? std::string() : "&scope=" + UrlEncode(settings_.scope));

  HttpRequest request;
  request.basicUser = settings_.clientId;
  request.basicPassword = settings_.clientSecret;
  request.headers.emplace_back("Accept", "application/json");
  if (ToUpperAscii(settings_.method) == "POST") {
    request.method = "POST";
    request.url = settings_.tokenUrl;
    request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    request.body = query;
  } else {
    request.method = "GET";
    const char separator = settings_.tokenUrl.find('?') == std::string::npos ? '?' : '&';
    request.url = settings_.tokenUrl + separator + query;
  }

  const auto fail = [this](FailureKind kind, std::string message, long status,
                           std::optional<double> retryAfter) -> IngestError {
    // Whatever the server or the transport said, the secret and the token stay out.
    ReplaceAll(message, settings_.clientSecret, "***");
    ReplaceAll(message, token_, "***");
    ++state_.refreshFailures;
    state_.lastError = message;
    state_.valid = !token_.empty() && clock_.Now() < state_.expiresAt;
    return IngestError(kind, message, status, retryAfter);
  };

  HttpResponse response;
  try {
    response = http_.Execute(request);
  } catch (const HttpTransportError& e) {
    throw fail(FailureKind::Transient, std::string("token: ") + e.what(), 0, std::nullopt);
  }

  const double now = clock_.Now();
  if (response.status != 200) {
    const std::optional<double> retryAfter = ParseRetryAfter(response.Header("retry-after"), now);
    const bool transient =
        response.status >= 500 || response.status == 429 || response.status == 408;
    throw fail(
        transient ? FailureKind::Transient : FailureKind::Permanent,
        "token: HTTP " + std::to_string(response.status) + ": " + DescribeErrorBody(response.body),
        response.status, retryAfter);
  }

  TokenResponse parsed;
  try {
    parsed = ParseTokenResponse(response.body);
  } catch (const IngestError& e) {
    throw fail(FailureKind::Permanent, e.what(), response.status, std::nullopt);
  }

  token_ = parsed.accessToken;
  state_.valid = true;
  state_.issuedAt = now;
  state_.expiresAt = now + parsed.expiresIn;
  state_.lastError.clear();
  return token_;
}

void TokenProvider::Invalidate(const std::string& token) {
  const std::lock_guard<std::mutex> lock(mutex_);
  // Only the token that was refused: another thread may already have replaced it.
  if (!token.empty() && token == token_) {
    token_.clear();
    state_.valid = false;
  }
}

TokenState TokenProvider::State() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  TokenState state = state_;
  state.valid = !token_.empty() && clock_.Now() < state_.expiresAt;
  return state;
}

}  // namespace CloudIngest
