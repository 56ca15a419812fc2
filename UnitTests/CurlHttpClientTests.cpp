// CurlHttpClient against a tiny HTTP/1.1 server running inside the test
// (127.0.0.1, free port, one thread per connection, always stopped).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "Core/Cloud/CurlHttpClient.h"

using namespace CloudIngest;

namespace {

struct RawRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  int connection = 0;  // which accepted connection (0-based)
  int indexOnConnection = 0;

  bool Has(const std::string& name) const { return headers.count(name) > 0; }
  std::string Header(const std::string& name) const {
    const auto found = headers.find(name);
    return found == headers.end() ? std::string() : found->second;
  }
};

// What the handler wants done: send `raw`, or close without answering, or
// never answer (the client has to time out), or send `raw` slowly (10 bytes
// every 100 ms).
struct Reply {
  enum class Action { Send, Close, Hang, Trickle } action = Action::Send;
  std::string raw;
};

Reply Send(long status, const std::string& body, const std::string& extraHeaders = "") {
  return {Reply::Action::Send, "HTTP/1.1 " + std::to_string(status) +
                                   " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
                                   extraHeaders + "\r\n" + body};
}

std::string Lower(std::string text) {
  for (char& c : text) {
    c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return text;
}

class TestServer {
 public:
  using Handler = std::function<Reply(const RawRequest&)>;

  explicit TestServer(Handler handler) : handler_(std::move(handler)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listener_ < 0) throw std::runtime_error("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ::close(listener_);
      throw std::runtime_error("bind/listen");
    }
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~TestServer() {
    stop_ = true;
    acceptor_.join();
    std::vector<std::thread> workers;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      workers.swap(workers_);
    }
    for (auto& worker : workers) worker.join();
    ::close(listener_);
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int Connections() const { return connections_.load(); }
  long long BytesRead() const { return bytesRead_.load(); }
  void ReadSlowly() { slowReads_ = true; }
  std::vector<RawRequest> Requests() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd descriptor{listener_, POLLIN, 0};
      if (::poll(&descriptor, 1, 20) <= 0) continue;
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      const int index = connections_++;
      const std::lock_guard<std::mutex> lock(mutex_);
      workers_.emplace_back([this, client, index] {
        Serve(client, index);
        ::close(client);
      });
    }
  }

  // Reads more bytes into `buffer`; false on EOF, error or stop.
  bool ReadMore(int fd, std::string& buffer) {
    while (!stop_) {
      pollfd descriptor{fd, POLLIN, 0};
      const int ready = ::poll(&descriptor, 1, 20);
      if (ready < 0) return false;
      if (ready == 0) continue;
      char chunk[65536];
      size_t wanted = sizeof chunk;
      if (slowReads_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        wanted = 16 * 1024;  // 800 KB/s: a slow link that keeps moving
      }
      const ssize_t n = ::recv(fd, chunk, wanted, 0);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<size_t>(n));
      bytesRead_ += n;
      return true;
    }
    return false;
  }

  static bool SendAll(int fd, const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  void Serve(int fd, int connection) {
    std::string buffer;
    for (int index = 0; !stop_; ++index) {
      size_t headerEnd;
      while ((headerEnd = buffer.find("\r\n\r\n")) == std::string::npos) {
        if (!ReadMore(fd, buffer)) return;
      }
      RawRequest request;
      request.connection = connection;
      request.indexOnConnection = index;
      const std::string head = buffer.substr(0, headerEnd);
      buffer.erase(0, headerEnd + 4);
      size_t lineEnd = head.find("\r\n");
      const std::string requestLine = head.substr(0, lineEnd);
      const size_t space1 = requestLine.find(' ');
      const size_t space2 = requestLine.rfind(' ');
      request.method = requestLine.substr(0, space1);
      request.target = requestLine.substr(space1 + 1, space2 - space1 - 1);
      while (lineEnd != std::string::npos) {
        const size_t start = lineEnd + 2;
        lineEnd = head.find("\r\n", start);
        const std::string line =
            head.substr(start, lineEnd == std::string::npos ? std::string::npos : lineEnd - start);
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        const size_t valueStart = line.find_first_not_of(' ', colon + 1);
        request.headers[Lower(line.substr(0, colon))] =
            valueStart == std::string::npos ? "" : line.substr(valueStart);
      }
      const size_t length =
          request.Has("content-length") ? std::stoul(request.Header("content-length")) : 0;
      while (buffer.size() < length) {
        if (!ReadMore(fd, buffer)) return;
      }
      request.body = buffer.substr(0, length);
      buffer.erase(0, length);
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(request);
      }
      const Reply reply = handler_(request);
      if (reply.action == Reply::Action::Close) return;
      if (reply.action == Reply::Action::Hang) {
        while (ReadMore(fd, buffer)) {
        }
        return;
      }
      if (reply.action == Reply::Action::Trickle) {
        for (size_t offset = 0; offset < reply.raw.size() && !stop_; offset += 10) {
          if (!SendAll(fd, reply.raw.substr(offset, 10))) return;
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        continue;
      }
      if (!SendAll(fd, reply.raw)) return;
    }
  }

  Handler handler_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<long long> bytesRead_{0};
  std::atomic<bool> slowReads_{false};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> workers_;
  std::vector<RawRequest> requests_;
};

CurlSettings FastSettings() {
  CurlSettings settings;
  settings.timeout = 10;
  settings.connectTimeout = 5;
  return settings;
}

// Counts rewinds and hands out small, uneven chunks.
class CountingSource : public IBodySource {
 public:
  explicit CountingSource(std::string data) : data_(std::move(data)) {}
  uint64_t Size() const override { return data_.size(); }
  size_t Read(char* buffer, size_t max) override {
    const size_t count = std::min({max, data_.size() - position_, size_t{7777}});
    std::copy_n(data_.data() + position_, count, buffer);
    position_ += count;
    return count;
  }
  void Rewind() override {
    position_ = 0;
    ++rewinds;
  }
  std::atomic<int> rewinds{0};

 private:
  std::string data_;
  size_t position_ = 0;
};

class ThrowingSource : public IBodySource {
 public:
  uint64_t Size() const override { return 100; }
  size_t Read(char*, size_t) override { throw std::runtime_error("disk gone"); }
  void Rewind() override {}
};

// A body that takes `chunks` × 100 ms to read: a slow disk or a slow link.
class SlowSource : public IBodySource {
 public:
  explicit SlowSource(int chunks) : chunks_(chunks) {}
  uint64_t Size() const override { return static_cast<uint64_t>(chunks_) * 1000; }
  size_t Read(char* buffer, size_t max) override {
    if (position_ >= Size()) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const size_t count = std::min<size_t>({max, 1000, Size() - position_});
    std::fill_n(buffer, count, 'z');
    position_ += count;
    return count;
  }
  void Rewind() override { position_ = 0; }

 private:
  int chunks_;
  uint64_t position_ = 0;
};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The stall/whole-request tests: Timeout 1 s.
CurlSettings OneSecondTimeout() {
  CurlSettings settings = FastSettings();
  settings.timeout = 1;
  return settings;
}

HttpRequest StreamedPut(const std::string& url, std::shared_ptr<IBodySource> body) {
  HttpRequest put;
  put.method = "PUT";
  put.url = url;
  put.bodySource = std::move(body);
  return put;
}

std::string Pattern(size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131 + 7) % 251);
  return data;
}

std::string TransportErrorOf(CurlHttpClient& client, const HttpRequest& request) {
  try {
    client.Execute(request);
  } catch (const HttpTransportError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no HttpTransportError";
  return std::string();
}

}  // namespace

TEST(CurlHttpClient, PutStreamsTheBodyWithExactLength) {
  TestServer server([](const RawRequest&) { return Send(200, "", "ETag: \"x\"\r\n"); });
  CurlHttpClient client(FastSettings());
  const std::string data = Pattern(300'001);
  HttpRequest request;
  request.method = "PUT";
  request.url = server.Url("/bucket/key.dcm?X-Amz-Signature=abc&x=1");
  request.headers = {{"Content-Type", "application/dicom"}, {"x-amz-acl", "private"}};
  request.bodySource = std::make_shared<CountingSource>(data);

  const HttpResponse response = client.Execute(request);
  EXPECT_EQ(200, response.status);
  const auto requests = server.Requests();
  ASSERT_EQ(1u, requests.size());
  const RawRequest& seen = requests[0];
  EXPECT_EQ("PUT", seen.method);
  EXPECT_EQ("/bucket/key.dcm?X-Amz-Signature=abc&x=1", seen.target);
  EXPECT_EQ("300001", seen.Header("content-length"));
  EXPECT_FALSE(seen.Has("transfer-encoding"));
  EXPECT_FALSE(seen.Has("expect"));
  EXPECT_FALSE(seen.Has("authorization"));
  EXPECT_EQ("application/dicom", seen.Header("content-type"));
  EXPECT_EQ("private", seen.Header("x-amz-acl"));
  EXPECT_TRUE(seen.body == data);
}

TEST(CurlHttpClient, GetWithAJsonBodyStaysAGet) {
  TestServer server([](const RawRequest&) { return Send(201, R"({"order_id":"x"})"); });
  CurlHttpClient client(FastSettings());
  HttpRequest request;
  request.method = "GET";
  request.url = server.Url("/new-order");
  request.headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer t"}};
  request.body = R"({"patient_name":"M\u00fcller"})";
  const HttpResponse response = client.Execute(request);
  EXPECT_EQ(201, response.status);
  EXPECT_EQ(R"({"order_id":"x"})", response.body);
  const RawRequest seen = server.Requests().at(0);
  EXPECT_EQ("GET", seen.method);
  EXPECT_EQ(std::to_string(request.body.size()), seen.Header("content-length"));
  EXPECT_EQ(request.body, seen.body);
  EXPECT_EQ("application/json", seen.Header("content-type"));
  EXPECT_EQ("Bearer t", seen.Header("authorization"));
  EXPECT_FALSE(seen.Has("expect"));
}

TEST(CurlHttpClient, PatchPostAndEmptyBodies) {
  TestServer server([](const RawRequest&) { return Send(204, ""); });
  CurlHttpClient client(FastSettings());
  HttpRequest patch;
  patch.method = "patch";
  patch.url = server.Url("/add-metadata?order_id=1");
  patch.headers = {{"Content-Type", "application/json"}};
  patch.body = "{}";
  EXPECT_EQ(204, client.Execute(patch).status);

  HttpRequest post;
  post.method = "POST";
  post.url = server.Url("/token");
  post.body = "grant_type=client_credentials";
  EXPECT_EQ(204, client.Execute(post).status);

  HttpRequest emptyPost;
  emptyPost.method = "POST";
  emptyPost.url = server.Url("/empty");
  EXPECT_EQ(204, client.Execute(emptyPost).status);

  HttpRequest get;
  get.url = server.Url("/plain");
  EXPECT_EQ(204, client.Execute(get).status);

  const auto requests = server.Requests();
  ASSERT_EQ(4u, requests.size());
  EXPECT_EQ("PATCH", requests[0].method);
  EXPECT_EQ("{}", requests[0].body);
  EXPECT_EQ("2", requests[0].Header("content-length"));
  EXPECT_EQ("POST", requests[1].method);
  EXPECT_EQ("grant_type=client_credentials", requests[1].body);
  EXPECT_FALSE(requests[1].Has("content-type"));  // nothing implicit
  EXPECT_EQ("POST", requests[2].method);
  EXPECT_EQ("0", requests[2].Header("content-length"));
  EXPECT_EQ("GET", requests[3].method);
  EXPECT_FALSE(requests[3].Has("content-length"));
}

TEST(CurlHttpClient, ResponseHeadersAreLowerCased) {
  TestServer server([](const RawRequest&) {
    return Send(200, "hello",
                "ETag: \"d41d8cd9\"\r\nX-Mixed-Case:  Some Value \r\nX-Twice: a\r\nX-Twice: b\r\n"
                "Retry-After: 5\r\n");
  });
  CurlHttpClient client(FastSettings());
  HttpRequest request;
  request.url = server.Url("/");
  const HttpResponse response = client.Execute(request);
  EXPECT_EQ(200, response.status);
  EXPECT_EQ("hello", response.body);
  EXPECT_EQ("\"d41d8cd9\"", response.Header("etag"));
  EXPECT_EQ("Some Value", response.Header("x-mixed-case"));
  EXPECT_EQ("a, b", response.Header("x-twice"));
  EXPECT_EQ("5", response.Header("retry-after"));
  EXPECT_EQ("5", response.Header("content-length"));
  for (const auto& [name, value] : response.headers) {
    EXPECT_EQ(Lower(name), name);
  }
}

TEST(CurlHttpClient, ResponseLargerThanTheCapIsATransportError) {
  TestServer server([](const RawRequest& request) {
    if (request.target == "/chunked") {
      std::string raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      for (int i = 0; i < 5; ++i) raw += "190\r\n" + std::string(400, 'c') + "\r\n";
      raw += "0\r\n\r\n";
      return Reply{Reply::Action::Send, raw};
    }
    return Send(200, std::string(request.target == "/small" ? 1000 : 5000, 'x'));
  });
  CurlSettings settings = FastSettings();
  settings.maxResponseBytes = 1000;
  CurlHttpClient client(settings);
  HttpRequest request;
  request.url = server.Url("/big?secret=1");
  EXPECT_NE(std::string::npos,
            TransportErrorOf(client, request).find("response larger than 1000 bytes"));
  request.url = server.Url("/chunked");
  EXPECT_NE(std::string::npos,
            TransportErrorOf(client, request).find("response larger than 1000 bytes"));
  request.url = server.Url("/small");
  EXPECT_EQ(1000u, client.Execute(request).body.size());  // exactly the cap is fine
}

TEST(CurlHttpClient, ConnectionRefusedIsATransportErrorWithoutTheQuery) {
  // A port that was free a moment ago and has no listener.
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(0, ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address));
  ASSERT_EQ(0, ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length));
  ::close(probe);

  CurlHttpClient client(FastSettings());
  HttpRequest request;
  request.method = "PUT";
  request.url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) +
                "/b/k?X-Amz-Signature=TOPSECRET";
  request.body = "x";
  const std::string message = TransportErrorOf(client, request);
  EXPECT_NE(std::string::npos, message.find("/b/k")) << message;
  EXPECT_EQ(std::string::npos, message.find("TOPSECRET")) << message;
  EXPECT_NE(std::string::npos, message.find("connect")) << message;
}

TEST(CurlHttpClient, UnresolvableAndMalformedUrlsAreTransportErrors) {
  CurlHttpClient client(FastSettings());
  HttpRequest request;
  request.url = "ftp://127.0.0.1/file?sig=TOPSECRET";  // protocol not allowed
  EXPECT_EQ(std::string::npos, TransportErrorOf(client, request).find("TOPSECRET"));
  request.url = "not a url?sig=TOPSECRET";
  EXPECT_EQ(std::string::npos, TransportErrorOf(client, request).find("TOPSECRET"));
}

TEST(CurlHttpClient, KeepAliveReusesOneConnection) {
  TestServer server([](const RawRequest&) { return Send(200, "ok"); });
  CurlHttpClient client(FastSettings());
  HttpRequest get;
  get.url = server.Url("/a");
  EXPECT_EQ(200, client.Execute(get).status);
  HttpRequest put;
  put.method = "PUT";
  put.url = server.Url("/b");
  put.body = "payload";
  EXPECT_EQ(200, client.Execute(put).status);
  EXPECT_EQ(200, client.Execute(get).status);
  EXPECT_EQ(1, server.Connections());
  const auto requests = server.Requests();
  ASSERT_EQ(3u, requests.size());
  EXPECT_EQ(2, requests[2].indexOnConnection);
}

TEST(CurlHttpClient, AnswerSecondsIsTheWaitForTheAnswerWithOrWithoutABody) {
  TestServer server([](const RawRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    return Send(200, "ok");
  });
  CurlHttpClient client(FastSettings());
  HttpRequest get;
  get.url = server.Url("/slow");
  HttpRequest withBody = get;
  withBody.body = R"({"order": 1})";  // libcurl marks its start-transfer when this leaves
  for (const HttpRequest& request : {get, withBody}) {
    const HttpResponse answer = client.Execute(request);
    EXPECT_GE(answer.answerSeconds, 0.14);
    EXPECT_LT(answer.answerSeconds, 5.0);
  }
}

TEST(CurlHttpClient, ConcurrentRequestsShareAFewConnections) {
  TestServer server([](const RawRequest& request) { return Send(200, request.body); });
  CurlHttpClient client(FastSettings());
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        HttpRequest request;
        request.method = "PUT";
        request.url = server.Url("/t");
        request.body = "thread " + std::to_string(t) + " request " + std::to_string(i);
        const HttpResponse response = client.Execute(request);
        if (response.status == 200 && response.body == request.body) ++good;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(20, good.load());
  EXPECT_EQ(20u, server.Requests().size());
  EXPECT_LE(server.Connections(), 4);
}

TEST(CurlHttpClient, SendsBasicAuth) {
  TestServer server([](const RawRequest&) { return Send(200, "{}"); });
  CurlHttpClient client(FastSettings());
  HttpRequest request;
  request.url = server.Url("/auth/token?grant_type=client_credentials");
  request.basicUser = "client-1";
  request.basicPassword = "s3cr3t";
  EXPECT_EQ(200, client.Execute(request).status);
  HttpRequest anonymous;
  anonymous.url = server.Url("/anonymous");
  EXPECT_EQ(200, client.Execute(anonymous).status);  // a reused handle forgets the credentials
  const auto requests = server.Requests();
  ASSERT_EQ(2u, requests.size());
  EXPECT_EQ("Basic Y2xpZW50LTE6czNjcjN0", requests[0].Header("authorization"));
  EXPECT_FALSE(requests[1].Has("authorization"));
}

TEST(CurlHttpClient, RedirectsAreNotFollowed) {
  TestServer server([](const RawRequest&) {
    return Send(302, "", "Location: http://127.0.0.1:1/elsewhere\r\n");
  });
  CurlHttpClient client(FastSettings());
  HttpRequest request;
  request.url = server.Url("/moved");
  const HttpResponse response = client.Execute(request);
  EXPECT_EQ(302, response.status);
  EXPECT_EQ("http://127.0.0.1:1/elsewhere", response.Header("location"));
  EXPECT_EQ(1u, server.Requests().size());
}

TEST(CurlHttpClient, TimeoutIsATransportError) {
  TestServer server([](const RawRequest&) { return Reply{Reply::Action::Hang, ""}; });
  CurlSettings settings = FastSettings();
  settings.timeout = 0.5;
  CurlHttpClient client(settings);
  HttpRequest request;
  request.url = server.Url("/slow");
  const auto start = std::chrono::steady_clock::now();
  const std::string message = TransportErrorOf(client, request);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(std::string::npos, message.find("imeout")) << message;
  EXPECT_GE(elapsed, 0.4);
  EXPECT_LT(elapsed, 5.0);
}

TEST(CurlHttpClient, StreamedUploadMayOutlastTheTimeoutWhileItMoves) {
  // 2.5 s of upload with a 1 s Timeout: a large ZIP on a slow link must not be
  // cut off (and retried forever) as long as bytes keep flowing.
  TestServer server(
      [](const RawRequest& request) { return Send(200, std::to_string(request.body.size())); });
  CurlHttpClient client(OneSecondTimeout());
  const HttpRequest put = StreamedPut(server.Url("/big.zip"), std::make_shared<SlowSource>(25));
  const auto start = std::chrono::steady_clock::now();
  const HttpResponse response = client.Execute(put);
  EXPECT_EQ(200, response.status);
  EXPECT_EQ("25000", response.body);
  EXPECT_GE(SecondsSince(start), 2.0);
}

TEST(CurlHttpClient, StalledUploadIsATransportError) {
  // The body is taken but no answer comes: the stall bound applies.
  TestServer server([](const RawRequest&) { return Reply{Reply::Action::Hang, ""}; });
  CurlHttpClient client(OneSecondTimeout());
  const HttpRequest put = StreamedPut(server.Url("/stuck?X-Amz-Signature=secret"),
                                      std::make_shared<CountingSource>(Pattern(10'000)));
  const auto start = std::chrono::steady_clock::now();
  const std::string message = TransportErrorOf(client, put);
  const double elapsed = SecondsSince(start);
  EXPECT_NE(std::string::npos, message.find("too slow")) << message;
  EXPECT_EQ(std::string::npos, message.find("secret")) << message;
  EXPECT_GE(elapsed, 1.0);
  EXPECT_LT(elapsed, 15.0);  // curl averages speed over a few seconds
}

TEST(CurlHttpClient, ApiCallsKeepTheWholeRequestTimeoutAfterAnUpload) {
  // Handles are pooled: after a streamed PUT, a GET on the same handle must
  // be bounded as a whole again, even while its answer keeps trickling in.
  TestServer server([](const RawRequest& request) {
    if (request.method == "PUT") return Send(200, "ok");
    Reply reply = Send(200, std::string(300, 'x'));  // ~3 s at 10 bytes / 100 ms
    reply.action = Reply::Action::Trickle;
    return reply;
  });
  CurlHttpClient client(OneSecondTimeout());
  ASSERT_EQ(
      200,
      client.Execute(StreamedPut(server.Url("/upload"), std::make_shared<SlowSource>(15))).status);

  HttpRequest get;
  get.url = server.Url("/api");
  const auto start = std::chrono::steady_clock::now();
  const std::string message = TransportErrorOf(client, get);
  const double elapsed = SecondsSince(start);
  EXPECT_NE(std::string::npos, message.find("imeout")) << message;
  EXPECT_LT(elapsed, 2.5);
}

TEST(CurlHttpClient, BodyIsRewoundWhenAReusedConnectionDies) {
  // The second request on the first connection is read, then the connection
  // is dropped without an answer: curl retries on a fresh connection and must
  // rewind the streamed body through the seek callback.
  TestServer server([](const RawRequest& request) {
    if (request.connection == 0 && request.indexOnConnection == 1) {
      return Reply{Reply::Action::Close, ""};
    }
    return Send(200, std::to_string(request.body.size()));
  });
  CurlHttpClient client(FastSettings());
  HttpRequest first;
  first.url = server.Url("/first");
  ASSERT_EQ(200, client.Execute(first).status);

  const std::string data = Pattern(50'000);
  auto source = std::make_shared<CountingSource>(data);
  HttpRequest put;
  put.method = "PUT";
  put.url = server.Url("/second");
  put.bodySource = source;
  const HttpResponse response = client.Execute(put);
  EXPECT_EQ(200, response.status);
  EXPECT_EQ("50000", response.body);
  EXPECT_GE(source->rewinds.load(), 1);
  EXPECT_EQ(2, server.Connections());
  const auto requests = server.Requests();
  ASSERT_EQ(3u, requests.size());
  EXPECT_TRUE(requests[1].body == data);
  EXPECT_TRUE(requests[2].body == data);
}

TEST(CurlHttpClient, FailingBodySourceIsATransportError) {
  TestServer server([](const RawRequest&) { return Send(200, ""); });
  CurlHttpClient client(FastSettings());
  HttpRequest request;
  request.method = "PUT";
  request.url = server.Url("/k");
  request.bodySource = std::make_shared<ThrowingSource>();
  EXPECT_NE(std::string::npos,
            TransportErrorOf(client, request).find("reading the request body failed: disk gone"));
  // The handle went back to the pool in a usable state.
  HttpRequest get;
  get.url = server.Url("/after");
  EXPECT_EQ(200, client.Execute(get).status);
}

TEST(CurlHttpClient, RefusesHeaderInjection) {
  CurlHttpClient client(FastSettings());
  HttpRequest request;
  request.url = "http://127.0.0.1:1/";
  request.headers = {{"X-Evil", "a\r\nInjected: 1"}};
  EXPECT_THROW(client.Execute(request), std::invalid_argument);
  request.headers = {{"Bad Name", "1"}};
  EXPECT_THROW(client.Execute(request), std::invalid_argument);
  request.headers.clear();
  request.method = "GET /x HTTP/1.1\r\n";
  EXPECT_THROW(client.Execute(request), std::invalid_argument);
}

TEST(CurlHttpClient, EmptyHeaderValueIsSent) {
  TestServer server([](const RawRequest&) { return Send(200, ""); });
  CurlHttpClient client(FastSettings());
  HttpRequest request;
  request.url = server.Url("/");
  request.headers = {{"X-Empty", ""}};
  EXPECT_EQ(200, client.Execute(request).status);
  const RawRequest seen = server.Requests().at(0);
  EXPECT_TRUE(seen.Has("x-empty"));
  EXPECT_EQ("", seen.Header("x-empty"));
}

// Shutdown must not wait for an upload on a slow link: AbortAll() ends it
// from another thread within about a second (curl's progress callback runs at
// least once a second), and the error says it was aborted, not that it failed.
TEST(CurlHttpClient, AbortAllEndsAStreamedUploadToASlowReader) {
  TestServer server([](const RawRequest&) { return Send(200, "", "ETag: \"x\"\r\n"); });
  server.ReadSlowly();  // 16 MB take about 20 s
  CurlHttpClient client(FastSettings());
  auto upload = std::async(std::launch::async, [&] {
    return TransportErrorOf(
        client, StreamedPut(server.Url("/big.zip?X-Amz-Signature=secret"),
                            std::make_shared<CountingSource>(std::string(16 << 20, 'z'))));
  });
  const auto begin = std::chrono::steady_clock::now();
  while (server.BytesRead() == 0 && SecondsSince(begin) < 10) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(server.BytesRead(), 0) << "the upload never started";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // well under way

  const auto aborted = std::chrono::steady_clock::now();
  client.AbortAll();
  ASSERT_EQ(std::future_status::ready, upload.wait_for(std::chrono::seconds(10)));
  const double elapsed = SecondsSince(aborted);
  const std::string message = upload.get();
  EXPECT_LT(elapsed, 2.0);
  EXPECT_LT(server.BytesRead(), 16 << 20) << "the whole body went through";
  EXPECT_NE(std::string::npos, message.find("aborted")) << message;
  EXPECT_EQ(std::string::npos, message.find("secret")) << message;

  // Resumed: the same client (and its pooled handles) works again.
  client.ResumeTransfers();
  const HttpResponse after =
      client.Execute(StreamedPut(server.Url("/small"), std::make_shared<CountingSource>("abc")));
  EXPECT_EQ(200, after.status);
}

TEST(CurlHttpClient, AbortIsAnHttpAbortedError) {
  // Callers tell a shutdown from a network failure by the type.
  TestServer server([](const RawRequest&) { return Reply{Reply::Action::Hang, ""}; });
  CurlHttpClient client(FastSettings());  // 10 s whole-request timeout
  HttpRequest get;
  get.url = server.Url("/oauth/token?client_secret=hush");
  auto call = std::async(std::launch::async, [&] {
    try {
      client.Execute(get);
    } catch (const HttpAborted& e) {
      return std::string(e.what());
    } catch (const std::exception& e) {
      return std::string("not HttpAborted: ") + e.what();
    }
    return std::string("no error");
  });
  const auto begin = std::chrono::steady_clock::now();
  while (server.Requests().empty() && SecondsSince(begin) < 10) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(1u, server.Requests().size());

  const auto aborted = std::chrono::steady_clock::now();
  client.AbortAll();
  ASSERT_EQ(std::future_status::ready, call.wait_for(std::chrono::seconds(15)));
  const double elapsed = SecondsSince(aborted);
  const std::string message = call.get();
  EXPECT_LT(elapsed, 2.0);
  EXPECT_NE(std::string::npos, message.find("GET http://127.0.0.1")) << message;
  EXPECT_NE(std::string::npos, message.find("aborted")) << message;
  EXPECT_EQ(std::string::npos, message.find("hush")) << message;
}

TEST(CurlHttpClient, AfterAbortAllNothingStartsUntilResumed) {
  TestServer server([](const RawRequest&) { return Send(200, "ok"); });
  CurlHttpClient client(FastSettings());
  HttpRequest get;
  get.url = server.Url("/api");
  client.AbortAll();
  EXPECT_THROW(client.Execute(get), HttpAborted);
  EXPECT_EQ(0, server.Connections());
  client.ResumeTransfers();
  EXPECT_EQ("ok", client.Execute(get).body);
}
