#include <gtest/gtest.h>
#include <json/value.h>

#include <atomic>

#include "Core/Cloud/IngestClient.h"
#include "Fakes/FakeHttpClient.h"

using namespace CloudIngest;
using CloudIngest::Testing::FakeHttpClient;
using CloudIngest::Testing::MakeResponse;

namespace {

const std::string kOrder = "0b6f3c1e-9a4d-4c2b-8f7e-1234567890ab";
const std::string kPutUrl =
    "https://bucket.s3.eu-west-1.amazonaws.com/in/"
    "1.dcm?X-Amz-Signature=SIGSECRET&X-Amz-Expires=900";

class IngestClientTest : public ::testing::Test {
 protected:
  IngestClientTest() {
    config_.url = "https://api.example.com/v1";
    config_.allowedUploadHosts = {"*.amazonaws.com", "127.0.0.1"};
    tokenHttp_.SetHandler([this](const HttpRequest&) {
      const int n = ++tokensIssued_;
      return MakeResponse(200, R"({"access_token":"tok-)" + std::to_string(n) +
                                   R"(","token_type":"Bearer","expires_in":3600})");
    });
  }

  IngestClient& Client() {
    if (!client_) {
      tokens_ = std::make_unique<TokenProvider>(
          TokenSettings{config_.url + "/auth/token", "GET", "id", "secret", "upload", 60},
          tokenHttp_, clock_);
      client_ = std::make_unique<IngestClient>(config_, http_, *tokens_);
    }
    return *client_;
  }

  template <typename F>
  IngestError Catch(F&& f) {
    try {
      f();
    } catch (const IngestError& e) {
      return e;
    }
    ADD_FAILURE() << "no IngestError thrown";
    return IngestError(FailureKind::Permanent, "none");
  }

  static UploadTarget Target(const std::string& url = kPutUrl) {
    UploadTarget target;
    target.url = url;
    return target;
  }

  long PutReturning(HttpResponse response, const std::string& md5 = "") {
    http_.Enqueue(std::move(response));
    return Client().Upload(Target(), std::make_shared<StringBodySource>("DICM-bytes"),
                           "application/dicom", md5);
  }

  Configuration config_;
  FakeHttpClient http_;
  FakeHttpClient tokenHttp_;
  std::atomic<int> tokensIssued_{0};
  ManualClock clock_;
  std::unique_ptr<TokenProvider> tokens_;
  std::unique_ptr<IngestClient> client_;
};

}  // namespace

TEST_F(IngestClientTest, CreateOrderSendsJsonWithBearer) {
  Json::Value metadata;
  metadata["study_instance_uid"] = "1.2.3";
  metadata["modalities"].append("CT");
  http_.Enqueue(200, R"({"order_id":")" + kOrder + R"("})");

  EXPECT_EQ(kOrder, Client().CreateOrder(metadata));
  const auto request = http_.Last();
  EXPECT_EQ("GET", request.request.method);
  EXPECT_EQ("https://api.example.com/v1/new-order", request.request.url);
  EXPECT_EQ("Bearer tok-1", request.Header("Authorization"));
  EXPECT_EQ("application/json", request.Header("Content-Type"));
  EXPECT_EQ(R"({"modalities":["CT"],"study_instance_uid":"1.2.3"})", request.sentBody);
  EXPECT_TRUE(request.request.basicUser.empty());
}

TEST_F(IngestClientTest, CreateOrderAcceptsAliasesAnd201) {
  http_.Enqueue(201, R"({"orderId":")" + kOrder + R"(","status":"new"})");
  http_.Enqueue(200, kOrder);
  http_.Enqueue(200, "\"" + kOrder + "\"");
  http_.Enqueue(200, R"({"id":")" + kOrder + R"("})");
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(kOrder, Client().CreateOrder(Json::objectValue));
  }
  EXPECT_EQ(1, tokensIssued_.load());  // token cached across calls
}

TEST_F(IngestClientTest, CreateOrderRefusesNonV4AndUnexpectedStatus) {
  http_.Enqueue(200, R"({"order_id":"0b6f3c1e-9a4d-1c2b-8f7e-1234567890ab"})");
  EXPECT_EQ(FailureKind::Permanent, Catch([&] { Client().CreateOrder(Json::objectValue); }).Kind());
  http_.Enqueue(202, R"({"order_id":")" + kOrder + R"("})");
  const IngestError error = Catch([&] { Client().CreateOrder(Json::objectValue); });
  EXPECT_EQ(FailureKind::Permanent, error.Kind());
  EXPECT_EQ(202, error.HttpStatus());
}

TEST_F(IngestClientTest, NonAsciiJsonStaysUtf8) {
  Json::Value metadata;
  metadata["patient_name"] = "M\xC3\xBCller^J\xC3\xBCrgen";
  metadata["institution_name"] = "\xE5\xB1\xB1\xE7\x94\xB0\xE7\x97\x85\xE9\x99\xA2";  // 山田病院
  http_.Enqueue(200, kOrder);
  Client().CreateOrder(metadata);
  const std::string body = http_.Last().sentBody;
  EXPECT_NE(std::string::npos, body.find("M\xC3\xBCller^J\xC3\xBCrgen")) << body;
  EXPECT_NE(std::string::npos, body.find("\xE5\xB1\xB1\xE7\x94\xB0")) << body;
  EXPECT_EQ(std::string::npos, body.find("\\u")) << body;
  EXPECT_EQ(std::string::npos, body.find('\n'));
}

TEST_F(IngestClientTest, EndpointsAreConfigurable) {
  config_.newOrder = {"POST", "/api/orders"};
  config_.upload = {"POST", "/api/presign"};
  config_.addMetadata = {"PUT", "/api/meta"};
  http_.Enqueue(201, kOrder);
  http_.Enqueue(200, R"({"url":")" + kPutUrl + R"("})");
  http_.Enqueue(204);
  Client().CreateOrder(Json::objectValue);
  Client().RequestUploadUrl({kOrder, "a.dcm", "application/dicom", "1.2", 10});
  Client().AddMetadata(kOrder, Json::objectValue);
  const auto requests = http_.Requests();
  ASSERT_EQ(3u, requests.size());
  EXPECT_EQ("POST", requests[0].request.method);
  EXPECT_EQ("https://api.example.com/v1/api/orders", requests[0].request.url);
  EXPECT_EQ("POST", requests[1].request.method);
  EXPECT_EQ(0u, requests[1].request.url.find("https://api.example.com/v1/api/presign?order_id="));
  EXPECT_EQ("PUT", requests[2].request.method);
  EXPECT_EQ("https://api.example.com/v1/api/meta?order_id=" + kOrder, requests[2].request.url);
}

TEST_F(IngestClientTest, UploadUrlQueryIsEncoded) {
  http_.Enqueue(200, R"({"presigned_url":")" + kPutUrl +
                         R"(","expires_in":"600","headers":{"x-amz-acl":"private"}})");
  const UploadTarget target = Client().RequestUploadUrl(
      {kOrder, "1.2.3 4&5=6.dcm", "application/dicom", "1.2.840.113619.2", 123456789012});
  EXPECT_EQ(kPutUrl, target.url);
  EXPECT_DOUBLE_EQ(600, target.expiresIn);
  EXPECT_EQ("private", target.headers.at("x-amz-acl"));

  const auto request = http_.Last();
  EXPECT_EQ("GET", request.request.method);
  EXPECT_EQ("https://api.example.com/v1/upload?order_id=" + kOrder +
                "&filename=1.2.3%204%265%3D6.dcm&content_type=application%2Fdicom"
                "&study_uid=1.2.840.113619.2&size=123456789012",
            request.request.url);
  EXPECT_EQ("Bearer tok-1", request.Header("Authorization"));
  EXPECT_TRUE(request.sentBody.empty());
}

TEST_F(IngestClientTest, UploadUrlAliases) {
  for (const char* key : {"url", "presigned_url", "upload_url"}) {
    http_.Enqueue(200, std::string(R"({")") + key + R"(":"https://127.0.0.1:4569/b/k?sig=1"})");
    EXPECT_EQ("https://127.0.0.1:4569/b/k?sig=1",
              Client().RequestUploadUrl({kOrder, "f", "application/zip", "1", 1}).url);
  }
}

TEST_F(IngestClientTest, UploadUrlOnAForeignHostIsRefused) {
  http_.Enqueue(200, R"({"url":"https://collector.evil.example/x?X-Amz-Signature=SIGSECRET"})");
  const IngestError error = Catch([&] {
    Client().RequestUploadUrl({kOrder, "f", "application/dicom", "1", 1});
  });
  EXPECT_EQ(FailureKind::Permanent, error.Kind());
  EXPECT_EQ("presigned URL host collector.evil.example is not in AllowedUploadHosts",
            std::string(error.what()));
}

TEST_F(IngestClientTest, HttpUploadUrlIsRefusedWhileTheApiIsHttps) {
  http_.Enqueue(200, R"({"url":"http://bucket.s3.amazonaws.com/k?X-Amz-Signature=SIGSECRET"})");
  const IngestError error = Catch([&] {
    Client().RequestUploadUrl({kOrder, "f", "application/dicom", "1", 1});
  });
  EXPECT_EQ(FailureKind::Permanent, error.Kind());
  const std::string message = error.what();
  EXPECT_NE(std::string::npos, message.find("http:// while Url is https://")) << message;
  EXPECT_NE(std::string::npos, message.find("AllowInsecureUploads")) << message;
  EXPECT_NE(std::string::npos, message.find("bucket.s3.amazonaws.com")) << message;
  EXPECT_EQ(std::string::npos, message.find("SIGSECRET")) << message;

  // Upload checks it again, before any byte leaves.
  const IngestError put = Catch([&] {
    Client().Upload(Target("HTTP://bucket.s3.amazonaws.com/k?sig=1"),
                    std::make_shared<StringBodySource>("DICM"), "application/dicom", "");
  });
  EXPECT_EQ(FailureKind::Permanent, put.Kind());
  EXPECT_EQ(1u, http_.RequestCount());  // the upload-URL request only: no PUT
}

TEST_F(IngestClientTest, HttpUploadUrlIsAcceptedWhenAllowedOrWhenTheApiIsHttp) {
  config_.allowInsecureUploads = true;
  http_.Enqueue(200, R"({"url":"http://bucket.s3.amazonaws.com/k?sig=1"})");
  EXPECT_EQ("http://bucket.s3.amazonaws.com/k?sig=1",
            Client().RequestUploadUrl({kOrder, "f", "application/dicom", "1", 1}).url);

  // No downgrade when the API itself is on http:// (a local simulator).
  config_.allowInsecureUploads = false;
  config_.url = "http://127.0.0.1:8080/api";
  http_.Enqueue(200, R"({"url":"http://127.0.0.1:4569/b/k?sig=1"})");
  EXPECT_EQ("http://127.0.0.1:4569/b/k?sig=1",
            Client().RequestUploadUrl({kOrder, "f", "application/dicom", "1", 1}).url);
  EXPECT_FALSE(Client().IsSchemeDowngrade("http://127.0.0.1:4569/b/k"));
  config_.url = "HTTPS://api.example.com/v1";
  EXPECT_TRUE(Client().IsSchemeDowngrade("http://127.0.0.1:4569/b/k"));
  EXPECT_FALSE(Client().IsSchemeDowngrade("https://127.0.0.1:4569/b/k"));
}

TEST_F(IngestClientTest, ReservedHeadersInATargetAreRefusedBeforeThePut) {
  UploadTarget target = Target();
  target.headers["host"] = "other-bucket.s3.amazonaws.com";
  const IngestError error = Catch([&] {
    Client().Upload(target, std::make_shared<StringBodySource>("DICM"), "application/dicom", "");
  });
  EXPECT_EQ(FailureKind::Permanent, error.Kind());
  EXPECT_NE(std::string::npos, std::string(error.what()).find("header \"host\""));
  EXPECT_EQ(0u, http_.RequestCount());

  http_.Enqueue(200, R"({"url":")" + kPutUrl + R"(","headers":{"Transfer-Encoding":"chunked"}})");
  const IngestError refused = Catch([&] {
    Client().RequestUploadUrl({kOrder, "f", "application/dicom", "1", 1});
  });
  EXPECT_EQ(FailureKind::Permanent, refused.Kind());
  EXPECT_NE(std::string::npos, std::string(refused.what()).find("Transfer-Encoding"));
}

TEST_F(IngestClientTest, AllowedHostPatterns) {
  IngestClient& client = Client();
  EXPECT_TRUE(client.IsAllowedUploadHost("https://bucket.s3.eu-west-1.amazonaws.com/k?x=1"));
  EXPECT_TRUE(client.IsAllowedUploadHost("https://BUCKET.S3.AMAZONAWS.COM/k"));
  EXPECT_TRUE(client.IsAllowedUploadHost("http://127.0.0.1:4569/bucket/k"));
  EXPECT_FALSE(client.IsAllowedUploadHost("https://amazonaws.com/k"));
  EXPECT_FALSE(client.IsAllowedUploadHost("https://evilamazonaws.com/k"));
  EXPECT_FALSE(client.IsAllowedUploadHost("https://s3.amazonaws.com.evil.net/k"));
  EXPECT_FALSE(client.IsAllowedUploadHost("https://bucket.s3.amazonaws.com@evil.net/k"));
  EXPECT_FALSE(client.IsAllowedUploadHost("https://127.0.0.10/k"));
  EXPECT_FALSE(client.IsAllowedUploadHost("ftp://bucket.s3.amazonaws.com/k"));
  EXPECT_FALSE(client.IsAllowedUploadHost("bucket.s3.amazonaws.com/k"));
  EXPECT_FALSE(client.IsAllowedUploadHost(""));
  EXPECT_FALSE(client.IsAllowedUploadHost("https://api.example.com/k"));  // not listed
}

TEST_F(IngestClientTest, AllowedHostPatternsAreCaseInsensitiveAndDefaultToTheApiHost) {
  config_.allowedUploadHosts = {"*.AmazonAWS.com", "Store.Example.ORG"};
  EXPECT_TRUE(Client().IsAllowedUploadHost("https://b.s3.amazonaws.com/k"));
  EXPECT_TRUE(Client().IsAllowedUploadHost("https://store.example.org:9000/k"));
  EXPECT_FALSE(Client().IsAllowedUploadHost("https://other.example.org/k"));

  config_.allowedUploadHosts.clear();
  EXPECT_TRUE(Client().IsAllowedUploadHost("https://api.example.com:8443/b/k"));
  EXPECT_FALSE(Client().IsAllowedUploadHost("https://b.s3.amazonaws.com/k"));
}

TEST_F(IngestClientTest, Api401RefreshesTheTokenOnce) {
  http_.Enqueue(401, R"({"error":"invalid_token"})");
  http_.Enqueue(200, kOrder);
  EXPECT_EQ(kOrder, Client().CreateOrder(Json::objectValue));
  const auto requests = http_.Requests();
  ASSERT_EQ(2u, requests.size());
  EXPECT_EQ("Bearer tok-1", requests[0].Header("Authorization"));
  EXPECT_EQ("Bearer tok-2", requests[1].Header("Authorization"));
  EXPECT_EQ(requests[0].sentBody, requests[1].sentBody);
  EXPECT_EQ(2, tokensIssued_.load());
  // Only one Authorization header, not one per attempt.
  size_t authorizations = 0;
  for (const auto& header : requests[1].request.headers) {
    authorizations += header.first == "Authorization" ? 1 : 0;
  }
  EXPECT_EQ(1u, authorizations);
}

TEST_F(IngestClientTest, SecondApi401IsUnauthorized) {
  http_.Enqueue(401, R"({"error":"invalid_token","error_description":"revoked"})");
  http_.Enqueue(401, R"({"error":"invalid_token","error_description":"revoked"})");
  const IngestError error = Catch([&] { Client().AddMetadata(kOrder, Json::objectValue); });
  EXPECT_EQ(FailureKind::Unauthorized, error.Kind());
  EXPECT_EQ(401, error.HttpStatus());
  EXPECT_NE(std::string::npos, std::string(error.what()).find("revoked"));
  EXPECT_EQ(2u, http_.RequestCount());
  EXPECT_EQ(2, tokensIssued_.load());
}

TEST_F(IngestClientTest, TokenFailuresPropagate) {
  tokenHttp_.Enqueue(400, R"({"error":"invalid_client"})");
  const IngestError error = Catch([&] { Client().CreateOrder(Json::objectValue); });
  EXPECT_EQ(FailureKind::Permanent, error.Kind());
  EXPECT_NE(std::string::npos, std::string(error.what()).find("invalid_client"));
  EXPECT_EQ(0u, http_.RequestCount());
}

TEST_F(IngestClientTest, ApiStatusMapping) {
  http_.Enqueue(503, "busy", {{"Retry-After", "11"}});
  IngestError error = Catch([&] { Client().CreateOrder(Json::objectValue); });
  EXPECT_EQ(FailureKind::Transient, error.Kind());
  EXPECT_EQ(11.0, error.RetryAfter());

  http_.Enqueue(502, "<html>Bad Gateway</html>");
  EXPECT_EQ(FailureKind::Transient, Catch([&] { Client().CreateOrder(Json::objectValue); }).Kind());

  http_.EnqueueTransportError("Operation timed out after 60000 milliseconds");
  error = Catch([&] { Client().RequestUploadUrl({kOrder, "f", "t", "1", 1}); });
  EXPECT_EQ(FailureKind::Transient, error.Kind());
  EXPECT_NE(std::string::npos, std::string(error.what()).find("timed out"));

  http_.Enqueue(404, R"({"message":"order not found"})");
  error = Catch([&] { Client().AddMetadataByStudy("1.2.3", Json::objectValue); });
  EXPECT_EQ(FailureKind::Permanent, error.Kind());
  EXPECT_EQ(404, error.HttpStatus());
  EXPECT_EQ("add-metadata: HTTP 404: order not found", std::string(error.what()));
}

TEST_F(IngestClientTest, AbortedCallsAreNotTurnedIntoRetryableErrors) {
  // The plugin is stopping: the sender must see an interruption, not a
  // transient failure to retry and report.
  const auto aborted = [](const HttpRequest&) -> HttpResponse {
    throw HttpAborted("aborted, transfers are stopped");
  };
  http_.EnqueueHandler(aborted);
  EXPECT_THROW(Client().CreateOrder(Json::objectValue), HttpAborted);
  http_.EnqueueHandler(aborted);
  EXPECT_THROW(Client().RequestUploadUrl({kOrder, "f", "t", "1", 1}), HttpAborted);
  http_.EnqueueHandler(aborted);
  EXPECT_THROW(Client().Upload(Target(), std::make_shared<StringBodySource>("DICM-bytes"),
                               "application/dicom", ""),
               HttpAborted);
}

TEST_F(IngestClientTest, AddMetadataByOrderOrStudy) {
  Json::Value metadata;
  metadata["priority"] = "high";
  http_.Enqueue(204);
  http_.Enqueue(200, "{}");
  Client().AddMetadata(kOrder, metadata);
  Client().AddMetadataByStudy("1.2.840.1 x", metadata);
  const auto requests = http_.Requests();
  ASSERT_EQ(2u, requests.size());
  EXPECT_EQ("PATCH", requests[0].request.method);
  EXPECT_EQ("https://api.example.com/v1/add-metadata?order_id=" + kOrder, requests[0].request.url);
  EXPECT_EQ(R"({"priority":"high"})", requests[0].sentBody);
  EXPECT_EQ("application/json", requests[0].Header("content-type"));
  EXPECT_EQ("Bearer tok-1", requests[0].Header("Authorization"));
  EXPECT_EQ("https://api.example.com/v1/add-metadata?study_uid=1.2.840.1%20x",
            requests[1].request.url);
}

TEST_F(IngestClientTest, UploadStreamsWithoutAuthorization) {
  UploadTarget target = Target();
  target.headers = {{"x-amz-server-side-encryption", "AES256"}, {"X-Custom", "1"}};
  http_.Enqueue(200, "", {{"ETag", "\"" + std::string("0123456789ABCDEF0123456789abcdef") + "\""}});
  const auto body = std::make_shared<StringBodySource>("the-bytes");
  char skip[4];
  body->Read(skip, sizeof skip);  // a used source is rewound before sending

  EXPECT_EQ(200,
            Client().Upload(target, body, "application/dicom", "0123456789abcdef0123456789ABCDEF"));
  const auto request = http_.Last();
  EXPECT_EQ("PUT", request.request.method);
  EXPECT_EQ(kPutUrl, request.request.url);
  EXPECT_FALSE(request.HasHeader("Authorization"));
  EXPECT_EQ("application/dicom", request.Header("Content-Type"));
  EXPECT_EQ("AES256", request.Header("x-amz-server-side-encryption"));
  EXPECT_EQ("1", request.Header("X-Custom"));
  EXPECT_EQ("the-bytes", request.sentBody);
  EXPECT_EQ(0, tokensIssued_.load());
}

TEST_F(IngestClientTest, UploadTargetHeadersOverrideContentType) {
  UploadTarget target = Target();
  target.headers = {{"content-type", "application/octet-stream"}};
  http_.Enqueue(200);
  Client().Upload(target, std::make_shared<StringBodySource>("x"), "application/zip", "");
  const auto request = http_.Last();
  EXPECT_EQ("application/octet-stream", request.Header("Content-Type"));
  size_t contentTypes = 0;
  for (const auto& header : request.request.headers) {
    contentTypes +=
        CloudIngest::Testing::RecordedRequest::Lower(header.first) == "content-type" ? 1 : 0;
  }
  EXPECT_EQ(1u, contentTypes);
}

TEST_F(IngestClientTest, UploadChecksTheETag) {
  const std::string md5 = "9e107d9d372bb6826bd81d3542a419d6";
  EXPECT_EQ(200, PutReturning(MakeResponse(200, "", {{"ETag", "\"" + md5 + "\""}}), md5));
  EXPECT_EQ(
      200, PutReturning(MakeResponse(200, "", {{"ETag", "W/\"9E107D9D372BB6826BD81D3542A419D6\""}}),
                        md5));
  EXPECT_EQ(200, PutReturning(MakeResponse(200), md5));  // no ETag: nothing to compare

  const IngestError error = Catch([&] {
    PutReturning(MakeResponse(200, "", {{"ETag", "\"ffff\""}}), md5);
  });
  EXPECT_EQ(FailureKind::Transient, error.Kind());
  EXPECT_NE(std::string::npos, std::string(error.what()).find("ETag mismatch"));
  EXPECT_EQ(std::string::npos, std::string(error.what()).find("SIGSECRET"));
}

TEST_F(IngestClientTest, UploadStatusMapping) {
  IngestError error =
      Catch([&] { PutReturning(MakeResponse(403, "<Error><Code>AccessDenied</Code></Error>")); });
  EXPECT_EQ(FailureKind::UrlRefused, error.Kind());
  EXPECT_EQ(403, error.HttpStatus());

  error = Catch([&] { PutReturning(MakeResponse(503, "SlowDown", {{"Retry-After", "4"}})); });
  EXPECT_EQ(FailureKind::Transient, error.Kind());
  EXPECT_EQ(4.0, error.RetryAfter());

  error = Catch([&] { PutReturning(MakeResponse(429, "", {{"Retry-After", "9"}})); });
  EXPECT_EQ(FailureKind::Transient, error.Kind());
  EXPECT_EQ(9.0, error.RetryAfter());

  error = Catch([&] { PutReturning(MakeResponse(500, "InternalError")); });
  EXPECT_EQ(FailureKind::Transient, error.Kind());
  EXPECT_FALSE(error.RetryAfter());

  error = Catch([&] { PutReturning(MakeResponse(400, R"({"message":"bad content type"})")); });
  EXPECT_EQ(FailureKind::Permanent, error.Kind());
  EXPECT_NE(std::string::npos, std::string(error.what()).find("bad content type"));
  EXPECT_EQ(std::string::npos, std::string(error.what()).find("SIGSECRET"));
  EXPECT_NE(std::string::npos,
            std::string(error.what()).find("bucket.s3.eu-west-1.amazonaws.com/in/1.dcm"));

  http_.EnqueueTransportError("Connection reset by peer");
  error = Catch([&] {
    Client().Upload(Target(), std::make_shared<StringBodySource>("x"), "application/dicom", "");
  });
  EXPECT_EQ(FailureKind::Transient, error.Kind());
  EXPECT_NE(std::string::npos, std::string(error.what()).find("Connection reset"));
  EXPECT_EQ(std::string::npos, std::string(error.what()).find("SIGSECRET"));
}

TEST_F(IngestClientTest, StoreErrorsNeverQuoteThePresignedQuery) {
  const std::string url =
      "https://bucket.s3.amazonaws.com/k?X-Amz-Security-Token=Fwo%2FSESSION%2Btoken&"
      "X-Amz-Signature=SIGSECRET";
  http_.Enqueue(400,
                "Bad request for X-Amz-Security-Token=Fwo%2FSESSION%2Btoken token "
                "Fwo/SESSION+token sig SIGSECRET");
  const IngestError error = Catch([&] {
    Client().Upload(Target(url), std::make_shared<StringBodySource>("x"), "application/dicom", "");
  });
  EXPECT_EQ(FailureKind::Permanent, error.Kind());
  const std::string message = error.what();
  EXPECT_EQ(std::string::npos, message.find("SESSION")) << message;
  EXPECT_EQ(std::string::npos, message.find("SIGSECRET")) << message;
  EXPECT_NE(std::string::npos, message.find("Bad request")) << message;

  http_.Enqueue(403,
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
                "<X-Amz-Expires>900</X-Amz-Expires></Error>");
  const IngestError refused = Catch([&] {
    Client().Upload(Target(url), std::make_shared<StringBodySource>("x"), "application/dicom", "");
  });
  EXPECT_EQ(FailureKind::UrlRefused, refused.Kind());
  EXPECT_NE(std::string::npos,
            std::string(refused.what()).find("AccessDenied: Request has expired"));
}

TEST_F(IngestClientTest, UploadToAForeignHostSendsNothing) {
  const IngestError error = Catch([&] {
    Client().Upload(Target("https://evil.example/x?sig=SIGSECRET"),
                    std::make_shared<StringBodySource>("x"), "application/dicom", "");
  });
  EXPECT_EQ(FailureKind::Permanent, error.Kind());
  EXPECT_EQ(std::string::npos, std::string(error.what()).find("SIGSECRET"));
  EXPECT_EQ(0u, http_.RequestCount());
}

TEST(ErrorFromResponse, MapsStatuses) {
  for (const long status : {408L, 429L, 500L, 502L, 503L, 504L}) {
    EXPECT_EQ(FailureKind::Transient, ErrorFromResponse(MakeResponse(status), "s", 0).Kind())
        << status;
  }
  for (const long status : {302L, 400L, 403L, 404L, 409L, 413L, 422L}) {
    EXPECT_EQ(FailureKind::Permanent, ErrorFromResponse(MakeResponse(status), "s", 0).Kind())
        << status;
  }
  EXPECT_EQ(FailureKind::Unauthorized, ErrorFromResponse(MakeResponse(401), "s", 0).Kind());

  const IngestError dated =
      ErrorFromResponse(MakeResponse(503, R"({"error":"maintenance"})",
                                     {{"Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"}}),
                        "new-order", 784111777 - 45);
  EXPECT_EQ(45.0, dated.RetryAfter());
  EXPECT_EQ(503, dated.HttpStatus());
  EXPECT_EQ("new-order: HTTP 503: maintenance", std::string(dated.what()));
}
