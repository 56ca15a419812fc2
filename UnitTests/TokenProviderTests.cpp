#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "Core/Cloud/IngestError.h"
#include "Core/Cloud/TokenProvider.h"
#include "Fakes/FakeHttpClient.h"

using namespace CloudIngest;
using CloudIngest::Testing::FakeHttpClient;
using CloudIngest::Testing::MakeResponse;

namespace {

const std::string kSecret = "s3cr3t-Value";

TokenSettings Settings(const std::string& method = "GET") {
  TokenSettings settings;
  settings.tokenUrl = "http://127.0.0.1:9000/auth/token";
  settings.method = method;
  settings.clientId = "client-1";
  settings.clientSecret = kSecret;
  settings.scope = "upload";
  settings.refreshMargin = 60;
  return settings;
}

std::string TokenBody(const std::string& token, double expiresIn = 3600) {
  return R"({"access_token":")" + token + R"(","token_type":"Bearer","expires_in":)" +
         std::to_string(expiresIn) + "}";
}

IngestError CatchIngestError(TokenProvider& provider) {
  try {
    provider.GetToken();
  } catch (const IngestError& e) {
    return e;
  }
  ADD_FAILURE() << "GetToken did not throw";
  return IngestError(FailureKind::Transient, "none");
}

}  // namespace

TEST(TokenProvider, GetSendsBasicAuthAndQueryThenCaches) {
  FakeHttpClient http;
  ManualClock clock;
  TokenSettings settings = Settings();
  settings.scope = "upload read";
  TokenProvider provider(settings, http, clock);
  http.Enqueue(200, TokenBody("tok-1"));

  EXPECT_EQ("tok-1", provider.GetToken());
  EXPECT_EQ("tok-1", provider.GetToken());
  clock.Advance(1000);
  EXPECT_EQ("tok-1", provider.GetToken());

  ASSERT_EQ(1u, http.RequestCount());
  const auto request = http.Last().request;
  EXPECT_EQ("GET", request.method);
  EXPECT_EQ("http://127.0.0.1:9000/auth/token?grant_type=client_credentials&scope=upload%20read",
            request.url);
  EXPECT_EQ("client-1", request.basicUser);
  EXPECT_EQ(kSecret, request.basicPassword);
  EXPECT_TRUE(request.body.empty());
  EXPECT_FALSE(http.Last().HasHeader("Authorization"));

  const TokenState state = provider.State();
  EXPECT_TRUE(state.valid);
  EXPECT_DOUBLE_EQ(clock.Now() - 1000, state.issuedAt);
  EXPECT_DOUBLE_EQ(state.issuedAt + 3600, state.expiresAt);
  EXPECT_EQ(0u, state.refreshFailures);
}

TEST(TokenProvider, GetAppendsToAnExistingQueryAndOmitsEmptyScope) {
  FakeHttpClient http;
  ManualClock clock;
  TokenSettings settings = Settings();
  settings.tokenUrl = "https://auth.example.com/token?tenant=7";
  settings.scope = "";
  TokenProvider provider(settings, http, clock);
  http.Enqueue(200, TokenBody("t"));
  provider.GetToken();
  EXPECT_EQ("https://auth.example.com/token?tenant=7&grant_type=client_credentials",
            http.Last().request.url);
}

TEST(TokenProvider, PostSendsAFormBody) {
  FakeHttpClient http;
  ManualClock clock;
  TokenProvider provider(Settings("post"), http, clock);
  http.Enqueue(200, TokenBody("tok-post"));
  EXPECT_EQ("tok-post", provider.GetToken());
  const auto recorded = http.Last();
  EXPECT_EQ("POST", recorded.request.method);
  EXPECT_EQ("http://127.0.0.1:9000/auth/token", recorded.request.url);
  EXPECT_EQ("grant_type=client_credentials&scope=upload", recorded.sentBody);
  EXPECT_EQ("application/x-www-form-urlencoded", recorded.Header("Content-Type"));
  EXPECT_EQ("client-1", recorded.request.basicUser);
  EXPECT_EQ(kSecret, recorded.request.basicPassword);
}

TEST(TokenProvider, RefreshesBeforeExpiry) {
  FakeHttpClient http;
  ManualClock clock;
  TokenProvider provider(Settings(), http, clock);
  http.Enqueue(200, TokenBody("first", 3600));
  http.Enqueue(200, TokenBody("second", 3600));

  EXPECT_EQ("first", provider.GetToken());
  clock.Advance(3539);  // 61 s left: still outside the 60 s margin
  EXPECT_EQ("first", provider.GetToken());
  clock.Advance(2);  // 59 s left
  EXPECT_EQ("second", provider.GetToken());
  EXPECT_EQ(2u, http.RequestCount());
}

TEST(TokenProvider, MarginIsCappedAtHalfTheLifetime) {
  FakeHttpClient http;
  ManualClock clock;
  TokenProvider provider(Settings(), http, clock);
  http.Enqueue(200, TokenBody("short", 100));
  http.Enqueue(200, TokenBody("next", 100));
  EXPECT_EQ("short", provider.GetToken());
  clock.Advance(49);
  EXPECT_EQ("short", provider.GetToken());  // a 60 s margin would already refresh
  clock.Advance(2);
  EXPECT_EQ("next", provider.GetToken());
}

TEST(TokenProvider, InvalidateForgetsOnlyTheCurrentToken) {
  FakeHttpClient http;
  ManualClock clock;
  TokenProvider provider(Settings(), http, clock);
  http.Enqueue(200, TokenBody("a"));
  http.Enqueue(200, TokenBody("b"));

  EXPECT_EQ("a", provider.GetToken());
  provider.Invalidate("not-the-current-one");
  EXPECT_EQ("a", provider.GetToken());
  EXPECT_EQ(1u, http.RequestCount());

  provider.Invalidate("a");
  EXPECT_FALSE(provider.State().valid);
  EXPECT_EQ("b", provider.GetToken());
  // A late 401 for the old token (another thread) does not drop the new one.
  provider.Invalidate("a");
  EXPECT_EQ("b", provider.GetToken());
  EXPECT_EQ(2u, http.RequestCount());
}

TEST(TokenProvider, ServerErrorsAreTransientWithRetryAfter) {
  FakeHttpClient http;
  ManualClock clock;
  TokenProvider provider(Settings(), http, clock);
  http.Enqueue(503, "down", {{"Retry-After", "7"}});
  http.Enqueue(429, R"({"error":"slow_down"})", {{"Retry-After", "2"}});
  http.Enqueue(500, "");
  http.EnqueueTransportError("Failed to connect to 127.0.0.1 port 9000: Connection refused");

  IngestError error = CatchIngestError(provider);
  EXPECT_EQ(FailureKind::Transient, error.Kind());
  EXPECT_EQ(503, error.HttpStatus());
  EXPECT_EQ(7.0, error.RetryAfter());
  error = CatchIngestError(provider);
  EXPECT_EQ(FailureKind::Transient, error.Kind());
  EXPECT_EQ(2.0, error.RetryAfter());
  EXPECT_NE(std::string::npos, std::string(error.what()).find("slow_down"));
  EXPECT_EQ(FailureKind::Transient, CatchIngestError(provider).Kind());
  error = CatchIngestError(provider);
  EXPECT_EQ(FailureKind::Transient, error.Kind());
  EXPECT_EQ(0, error.HttpStatus());
  EXPECT_NE(std::string::npos, std::string(error.what()).find("Connection refused"));

  const TokenState state = provider.State();
  EXPECT_FALSE(state.valid);
  EXPECT_EQ(4u, state.refreshFailures);
  EXPECT_NE(std::string::npos, state.lastError.find("Connection refused"));
}

TEST(TokenProvider, AnAbortedFetchIsNotARefreshFailure) {
  FakeHttpClient http;
  ManualClock clock;
  TokenProvider provider(Settings(), http, clock);
  http.EnqueueHandler([](const HttpRequest&) -> HttpResponse {
    throw HttpAborted("aborted, transfers are stopped");
  });
  EXPECT_THROW(provider.GetToken(), HttpAborted);
  EXPECT_EQ(0u, provider.State().refreshFailures);
  EXPECT_TRUE(provider.State().lastError.empty());
}

TEST(TokenProvider, ClientErrorsAndMalformedAnswersArePermanent) {
  FakeHttpClient http;
  ManualClock clock;
  TokenProvider provider(Settings(), http, clock);
  http.Enqueue(401,
               R"({"error":"invalid_client","error_description":"Client authentication failed"})");
  http.Enqueue(200, "<html>oops</html>");
  http.Enqueue(200, R"({"token_type":"Bearer"})");
  http.Enqueue(200, TokenBody("good"));

  IngestError error = CatchIngestError(provider);
  EXPECT_EQ(FailureKind::Permanent, error.Kind());
  EXPECT_EQ(401, error.HttpStatus());
  EXPECT_NE(std::string::npos,
            std::string(error.what()).find("invalid_client: Client authentication failed"));
  EXPECT_EQ(FailureKind::Permanent, CatchIngestError(provider).Kind());
  EXPECT_EQ(FailureKind::Permanent, CatchIngestError(provider).Kind());
  EXPECT_EQ(3u, provider.State().refreshFailures);
  EXPECT_NE(std::string::npos, provider.State().lastError.find("access_token"));

  EXPECT_EQ("good", provider.GetToken());
  EXPECT_TRUE(provider.State().lastError.empty());
  EXPECT_EQ(3u, provider.State().refreshFailures);  // a count of failures, kept
}

TEST(TokenProvider, SecretAndTokenNeverInErrors) {
  FakeHttpClient http;
  ManualClock clock;
  TokenProvider provider(Settings(), http, clock);
  http.Enqueue(400,
               R"({"error":"invalid_client","error_description":"bad secret )" + kSecret + R"("})");
  http.EnqueueTransportError("proxy said " + kSecret);

  for (int i = 0; i < 2; ++i) {
    const IngestError error = CatchIngestError(provider);
    EXPECT_EQ(std::string::npos, std::string(error.what()).find(kSecret)) << error.what();
    EXPECT_EQ(std::string::npos, provider.State().lastError.find(kSecret));
    EXPECT_NE(std::string::npos, provider.State().lastError.find("***"));
  }

  // A refresh that fails while the old token is still valid keeps it, and
  // the old token does not appear in lastError either.
  http.Enqueue(200, TokenBody("tok-abcdef", 3600));
  EXPECT_EQ("tok-abcdef", provider.GetToken());
  clock.Advance(3590);
  http.Enqueue(500, "token tok-abcdef is about to expire");
  EXPECT_EQ("tok-abcdef", provider.GetToken());
  const TokenState state = provider.State();
  EXPECT_TRUE(state.valid);
  EXPECT_EQ(3u, state.refreshFailures);
  EXPECT_EQ(std::string::npos, state.lastError.find("tok-abcdef"));
  EXPECT_NE(std::string::npos, state.lastError.find("HTTP 500"));

  clock.Advance(20);  // now really expired
  EXPECT_FALSE(provider.State().valid);
  http.Enqueue(500, "still down");
  EXPECT_EQ(FailureKind::Transient, CatchIngestError(provider).Kind());
}

TEST(TokenProvider, OnIssuedCalledAfterEachFetchAndMayReadState) {
  FakeHttpClient http;
  ManualClock clock;
  std::vector<TokenState> issued;
  TokenProvider* self = nullptr;
  TokenProvider provider(Settings(), http, clock, [&](const TokenState& state) {
    issued.push_back(state);
    EXPECT_TRUE(self->State().valid);  // no deadlock: called outside the lock
  });
  self = &provider;
  http.Enqueue(200, TokenBody("a", 120));
  http.Enqueue(500, "");
  http.Enqueue(200, TokenBody("b", 120));

  provider.GetToken();
  provider.GetToken();  // cached: no callback
  ASSERT_EQ(1u, issued.size());
  EXPECT_TRUE(issued[0].valid);
  EXPECT_DOUBLE_EQ(clock.Now() + 120, issued[0].expiresAt);

  provider.Invalidate("a");
  EXPECT_THROW(provider.GetToken(), IngestError);
  EXPECT_EQ(1u, issued.size());  // not on failure
  EXPECT_EQ("b", provider.GetToken());
  EXPECT_EQ(2u, issued.size());
}

TEST(TokenProvider, ThrowingCallbackDoesNotLoseTheToken) {
  FakeHttpClient http;
  ManualClock clock;
  TokenProvider provider(Settings(), http, clock,
                         [](const TokenState&) { throw std::runtime_error("audit full"); });
  http.Enqueue(200, TokenBody("kept"));
  EXPECT_EQ("kept", provider.GetToken());
  EXPECT_EQ("kept", provider.GetToken());
  EXPECT_EQ(1u, http.RequestCount());
}

TEST(TokenProvider, ConcurrentCallersShareOneFetch) {
  FakeHttpClient http;
  ManualClock clock;
  std::atomic<int> inFlight{0};
  std::atomic<int> maxInFlight{0};
  http.SetHandler([&](const HttpRequest&) {
    const int now = ++inFlight;
    maxInFlight = std::max(maxInFlight.load(), now);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    --inFlight;
    return MakeResponse(200, TokenBody("shared"));
  });
  TokenProvider provider(Settings(), http, clock);

  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (provider.GetToken() == "shared") {
        ++good;
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(8, good.load());
  EXPECT_EQ(1u, http.RequestCount());
  EXPECT_EQ(1, maxInFlight.load());
}

TEST(TokenProvider, ClientCredentialsAreFormEncodedBeforeBasic) {
  FakeHttpClient http;
  ManualClock clock;
  TokenSettings settings = Settings();
  settings.clientId = "site 7:a+b";
  settings.clientSecret = "a+b%c:d&e f~x.y_z-1";
  TokenProvider provider(settings, http, clock);
  http.Enqueue(200, TokenBody("t"));
  provider.GetToken();
  // RFC 6749 section 2.3.1 and Appendix B: encoded, then joined by ':' and
  // base64-encoded by the HTTP client.
  EXPECT_EQ("site%207%3Aa%2Bb", http.Last().request.basicUser);
  EXPECT_EQ("a%2Bb%25c%3Ad%26e%20f~x.y_z-1", http.Last().request.basicPassword);

  // The encoded secret is kept out of errors like the plain one.
  http.Enqueue(
      400, R"({"error":"invalid_client","error_description":"got a%2Bb%25c%3Ad%26e%20f~x.y_z-1"})");
  EXPECT_THROW(provider.FetchFresh(), IngestError);
  EXPECT_EQ(std::string::npos, provider.State().lastError.find("a%2Bb%25c"))
      << provider.State().lastError;
}

TEST(TokenProvider, FetchFreshAlwaysAsksTheEndpointAndRefreshesTheCache) {
  FakeHttpClient http;
  ManualClock clock;
  TokenProvider provider(Settings(), http, clock);
  http.Enqueue(200, TokenBody("first"));
  http.Enqueue(200, TokenBody("second"));
  http.Enqueue(200, TokenBody("third"));

  EXPECT_EQ("first", provider.GetToken());
  EXPECT_EQ("second", provider.FetchFresh());  // a valid cached token does not count
  EXPECT_EQ(2u, http.RequestCount());
  EXPECT_EQ("second", provider.GetToken());  // the cache holds the fresh token
  EXPECT_EQ(2u, http.RequestCount());
  EXPECT_EQ("third", provider.FetchFresh());
  EXPECT_EQ(3u, http.RequestCount());

  // A failing fresh fetch fails, even though a cached token is still valid;
  // GetToken keeps the cached one.
  http.Enqueue(401, R"({"error":"invalid_client"})");
  EXPECT_THROW(provider.FetchFresh(), IngestError);
  EXPECT_EQ(4u, http.RequestCount());
  EXPECT_EQ("third", provider.GetToken());
  EXPECT_EQ(1u, provider.State().refreshFailures);
  EXPECT_TRUE(provider.State().valid);
}

namespace {

// Counts Now() calls, so a test can wait until a thread is inside GetToken.
class CountingClock : public IClock {
 public:
  double Now() const override {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      ++calls_;
    }
    changed_.notify_all();
    return 1'700'000'000.0;
  }
  bool WaitForCalls(unsigned count, std::chrono::seconds timeout) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return calls_ >= count; });
  }
  unsigned Calls() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  mutable unsigned calls_ = 0;
};

}  // namespace

TEST(TokenProvider, StateDoesNotWaitForAFetchAndConcurrentCallersShareIt) {
  FakeHttpClient http;
  CountingClock clock;
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  http.SetHandler([&](const HttpRequest&) {
    entered.set_value();  // a second fetch would throw here (promise already satisfied)
    released.wait();
    return MakeResponse(200, TokenBody("slow"));
  });
  TokenProvider provider(Settings(), http, clock);

  auto first = std::async(std::launch::async, [&] { return provider.GetToken(); });
  ASSERT_EQ(std::future_status::ready,
            entered.get_future().wait_for(std::chrono::seconds(10)));  // fetch under way

  // Status and metrics read State(): it must answer while the fetch hangs.
  auto state = std::async(std::launch::async, [&] { return provider.State(); });
  const bool stateAnswered = state.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  EXPECT_TRUE(stateAnswered) << "State() waited for the token fetch";

  // A second caller joins the fetch under way: once it has read the clock
  // (inside GetToken), it either waits for that fetch or would start its own.
  const unsigned before = clock.Calls();
  auto second = std::async(std::launch::async, [&] { return provider.GetToken(); });
  const bool secondEntered = clock.WaitForCalls(before + 1, std::chrono::seconds(5));
  EXPECT_TRUE(secondEntered) << "the second caller could not even start";

  release.set_value();
  EXPECT_EQ("slow", first.get());
  EXPECT_EQ("slow", second.get());
  if (stateAnswered) {
    EXPECT_FALSE(state.get().valid);  // no token yet when it was asked
  }
  EXPECT_EQ(1u, http.RequestCount());
  EXPECT_TRUE(provider.State().valid);
}

TEST(TokenProvider, CallersWaitingForAFailedFetchGetItsError) {
  FakeHttpClient http;
  CountingClock clock;
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  http.SetHandler([&](const HttpRequest&) {
    entered.set_value();
    released.wait();
    return MakeResponse(503, R"({"error":"down"})");
  });
  TokenProvider provider(Settings(), http, clock);

  auto first = std::async(std::launch::async, [&] { return provider.GetToken(); });
  ASSERT_EQ(std::future_status::ready, entered.get_future().wait_for(std::chrono::seconds(10)));
  const unsigned before = clock.Calls();
  auto second = std::async(std::launch::async, [&] { return provider.GetToken(); });
  EXPECT_TRUE(clock.WaitForCalls(before + 1, std::chrono::seconds(5)));
  release.set_value();
  EXPECT_THROW(first.get(), IngestError);
  EXPECT_THROW(second.get(), IngestError);  // the shared fetch's failure, not a new fetch
  EXPECT_EQ(1u, http.RequestCount());
  EXPECT_EQ(1u, provider.State().refreshFailures);
}
