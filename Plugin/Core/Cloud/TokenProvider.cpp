#include "Core/Cloud/TokenProvider.h"

#include <curl/curl.h>

#include <algorithm>
#include <boost/algorithm/string/replace.hpp>

#include "Core/Cloud/ApiResponses.h"
#include "Core/Cloud/IngestError.h"
#include "Core/Url.h"

namespace CloudIngest {

namespace {

std::string ToUpperAscii(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](char c) {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  });
  return text;
}

// RFC 6749 section 2.3.1: client id and secret are form-urlencoded (Appendix B)
// before HTTP Basic, so ':' '+' '%' '&' and spaces survive. libcurl escapes all
// but ALPHA / DIGIT / "-._~", a space as %20, which form decoding also reads as
// a space (and a server that only percent-decodes reads it right too).
std::string FormEncode(const std::string& value) {
  const std::unique_ptr<char, decltype(&curl_free)> escaped(
      curl_easy_escape(nullptr, value.data(), static_cast<int>(value.size())), &curl_free);
  if (!escaped) {
    throw IngestError(FailureKind::Transient, "token: cannot encode the client credentials");
  }
  return escaped.get();
}

}  // namespace

TokenProvider::TokenProvider(TokenSettings settings, IHttpClient& http, const IClock& clock,
                             IssuedCallback onIssued)
    : settings_(std::move(settings)), http_(http), clock_(clock), onIssued_(std::move(onIssued)) {}

std::string TokenProvider::GetToken() {
  return Obtain(FetchPolicy::WhenNeeded);
}

std::string TokenProvider::FetchFresh() {
  return Obtain(FetchPolicy::Always);
}

bool TokenProvider::UsableLocked(double now) const {
  return !token_.empty() && now < state_.expiresAt;
}

std::string TokenProvider::Obtain(FetchPolicy policy) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (policy == FetchPolicy::WhenNeeded) {
    const double now = clock_.Now();
    if (UsableLocked(now)) {
      const double lifetime = state_.expiresAt - state_.issuedAt;
      const double margin = std::min(settings_.refreshMargin, lifetime / 2);
      if (now < state_.expiresAt - margin) {
        return token_;
      }
    }
  }

  std::shared_ptr<Flight> flight = flight_;
  if (flight) {
    // Another caller is fetching: wait for its outcome rather than asking the
    // token endpoint again.
    fetched_.wait(lock, [&flight] { return flight->done; });
  } else {
    flight = std::make_shared<Flight>();
    flight_ = flight;
    const std::string current = token_;
    lock.unlock();

    // The exchange runs without the lock, so State() (status, metrics) never
    // waits for a slow token endpoint.
    double issuedAt = 0;
    double expiresIn = 0;
    std::string token;
    std::exception_ptr error;
    try {
      token = Fetch(current, issuedAt, expiresIn);
    } catch (const IngestError& e) {
      error = std::current_exception();
      lock.lock();
      ++state_.refreshFailures;
      state_.lastError = e.what();
      state_.valid = UsableLocked(clock_.Now());
    } catch (...) {
      // Not the endpoint's answer (e.g. out of memory): passed on as is, but
      // the waiters must still be released.
      error = std::current_exception();
      lock.lock();
    }
    if (!error) {
      lock.lock();
      token_ = token;
      state_.valid = true;
      state_.issuedAt = issuedAt;
      state_.expiresAt = issuedAt + expiresIn;
      state_.lastError.clear();
    }
    flight->done = true;
    flight->token = token;
    flight->error = error;
    flight_.reset();
    fetched_.notify_all();

    if (!error) {
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
  }

  if (flight->error) {
    if (policy == FetchPolicy::WhenNeeded && UsableLocked(clock_.Now())) {
      // Refreshing early failed but the current token has not expired yet:
      // keep using it (the failure is recorded in the state).
      return token_;
    }
    std::rethrow_exception(flight->error);
  }
  return flight->token;
}

std::string TokenProvider::Fetch(const std::string& currentToken, double& issuedAt,
                                 double& expiresIn) const {
  const std::string query =
      "grant_type=client_credentials" +
      (settings_.scope.empty() ? std::string() : "&scope=" + UrlEncode(settings_.scope));

  HttpRequest request;
  request.basicUser = FormEncode(settings_.clientId);
  request.basicPassword = FormEncode(settings_.clientSecret);
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

  const auto fail = [&](FailureKind kind, std::string message, long status,
                        std::optional<double> retryAfter) -> IngestError {
    // Whatever the server or the transport said, the secret and the token stay out.
    boost::algorithm::replace_all(message, settings_.clientSecret, "***");
    boost::algorithm::replace_all(message, request.basicPassword, "***");
    boost::algorithm::replace_all(message, currentToken, "***");
    return IngestError(kind, message, status, retryAfter);
  };

  HttpResponse response;
  try {
    response = http_.Execute(request);
  } catch (const HttpAborted&) {
    throw;  // stopping: not a refresh failure
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
  issuedAt = now;
  expiresIn = parsed.expiresIn;
  return parsed.accessToken;
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
  state.valid = UsableLocked(clock_.Now());
  return state;
}

}  // namespace CloudIngest
