#include <gtest/gtest.h>

#include <ctime>

#include "Core/Cloud/ApiResponses.h"
#include "Core/Cloud/IngestError.h"

using namespace CloudIngest;

namespace {

const std::string kUuid = "0b6f3c1e-9a4d-4c2b-8f7e-1234567890ab";

// Runs `f`, expects an IngestError(Permanent), returns its message.
template <typename F>
std::string PermanentMessage(F&& f) {
  try {
    f();
  } catch (const IngestError& e) {
    EXPECT_EQ(FailureKind::Permanent, e.Kind());
    return e.what();
  }
  ADD_FAILURE() << "no IngestError thrown";
  return std::string();
}

std::string Nested(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

}  // namespace

TEST(IsUuidV4, AcceptsVersion4WithRfcVariant) {
  EXPECT_TRUE(IsUuidV4(kUuid));
  EXPECT_TRUE(IsUuidV4("0B6F3C1E-9A4D-4C2B-8F7E-1234567890AB"));
  for (const char variant : std::string("89abAB")) {
    std::string id = kUuid;
    id[19] = variant;
    EXPECT_TRUE(IsUuidV4(id)) << id;
  }
}

TEST(IsUuidV4, RefusesOtherVersionsVariantsAndShapes) {
  std::string v1 = kUuid;
  v1[14] = '1';
  EXPECT_FALSE(IsUuidV4(v1));
  for (const char variant : std::string("07cfCF")) {
    std::string id = kUuid;
    id[19] = variant;
    EXPECT_FALSE(IsUuidV4(id)) << id;
  }
  EXPECT_FALSE(IsUuidV4(""));
  EXPECT_FALSE(IsUuidV4(kUuid + "0"));
  EXPECT_FALSE(IsUuidV4(kUuid.substr(1)));
  EXPECT_FALSE(IsUuidV4("0b6f3c1e9a4d4c2b8f7e1234567890ab"));
  EXPECT_FALSE(IsUuidV4("0b6f3c1e-9a4d-4c2b-8f7e-1234567890ag"));
  EXPECT_FALSE(IsUuidV4("0b6f3c1e_9a4d-4c2b-8f7e-1234567890ab"));
  EXPECT_FALSE(IsUuidV4("{b6f3c1e-9a4d-4c2b-8f7e-1234567890a}"));
  EXPECT_FALSE(IsUuidV4(" " + kUuid.substr(1)));
  EXPECT_FALSE(IsUuidV4("00000000-0000-0000-0000-000000000000"));
}

TEST(ParseOrderResponse, AcceptsEveryAlias) {
  EXPECT_EQ(kUuid, ParseOrderResponse(R"({"order_id":")" + kUuid + R"("})"));
  EXPECT_EQ(kUuid, ParseOrderResponse(R"({"orderId":")" + kUuid + R"("})"));
  EXPECT_EQ(kUuid, ParseOrderResponse(R"({"id":")" + kUuid + R"("})"));
  EXPECT_EQ(kUuid, ParseOrderResponse(kUuid));
  EXPECT_EQ(kUuid, ParseOrderResponse("  " + kUuid + "\r\n"));
  EXPECT_EQ(kUuid, ParseOrderResponse("\"" + kUuid + "\""));
  EXPECT_EQ(kUuid, ParseOrderResponse(" \"" + kUuid + "\"\n"));
}

TEST(ParseOrderResponse, IgnoresUnknownKeysAndPrefersOrderId) {
  const std::string other = "11111111-2222-4333-9444-555555555555";
  EXPECT_EQ(kUuid, ParseOrderResponse(R"({"status":"created","created":{"at":1},"order_id":")" +
                                      kUuid + R"(","id":")" + other + R"("})"));
  EXPECT_EQ(other, ParseOrderResponse(R"({"id":")" + other + R"(","extra":[1,2,3]})"));
}

TEST(ParseOrderResponse, RefusesMalformedAnswers) {
  const std::string v1 = "0b6f3c1e-9a4d-1c2b-8f7e-1234567890ab";
  EXPECT_NE(std::string::npos, PermanentMessage([&] {
                                 ParseOrderResponse(R"({"order_id":")" + v1 + R"("})");
                               }).find("not a UUID v4"));
  EXPECT_NE(std::string::npos,
            PermanentMessage([] { ParseOrderResponse(R"({"status":"ok"})"); }).find("no order_id"));
  PermanentMessage([] { ParseOrderResponse(R"({"order_id":12345})"); });
  PermanentMessage([] { ParseOrderResponse(R"({"order_id":null})"); });
  PermanentMessage([] { ParseOrderResponse(R"(["0b6f3c1e-9a4d-4c2b-8f7e-1234567890ab"])"); });
  PermanentMessage([] { ParseOrderResponse(""); });
  PermanentMessage([] { ParseOrderResponse("   "); });
  PermanentMessage([] { ParseOrderResponse("not json"); });
  PermanentMessage([] { ParseOrderResponse("<html>502 Bad Gateway</html>"); });
  PermanentMessage([&] { ParseOrderResponse(R"({"order_id":")" + kUuid + R"("} trailing)"); });
  PermanentMessage([&] { ParseOrderResponse("\"" + kUuid); });
  PermanentMessage([&] { ParseOrderResponse(kUuid + " " + kUuid); });
}

TEST(ParseTokenResponse, ReadsTheStandardAnswer) {
  const TokenResponse token = ParseTokenResponse(
      R"({"access_token":"abc.def-ghi","token_type":"Bearer","expires_in":1800,"scope":"upload","extra":{"x":1}})");
  EXPECT_EQ("abc.def-ghi", token.accessToken);
  EXPECT_EQ("Bearer", token.tokenType);
  EXPECT_DOUBLE_EQ(1800, token.expiresIn);
  EXPECT_EQ("upload", token.scope);
}

TEST(ParseTokenResponse, TolerantAboutOptionalFields) {
  TokenResponse token = ParseTokenResponse(R"({"access_token":"t"})");
  EXPECT_EQ("Bearer", token.tokenType);
  EXPECT_DOUBLE_EQ(3600, token.expiresIn);
  EXPECT_EQ("", token.scope);

  token = ParseTokenResponse(R"({"access_token":"t","token_type":"bearer","expires_in":"120"})");
  EXPECT_DOUBLE_EQ(120, token.expiresIn);
  token = ParseTokenResponse(R"({"access_token":"t","expires_in":" 90.5 ","scope":["a"]})");
  EXPECT_DOUBLE_EQ(90.5, token.expiresIn);
  EXPECT_EQ("", token.scope);  // not a string: ignored
  token = ParseTokenResponse(R"({"access_token":"t","expires_in":1e300})");
  EXPECT_GT(token.expiresIn, 1e8);  // capped, but finite
  EXPECT_LT(token.expiresIn, 1e10);
}

TEST(ParseTokenResponse, RefusesMalformedAnswersWithoutQuotingTheToken) {
  PermanentMessage([] { ParseTokenResponse(R"({"token_type":"Bearer"})"); });
  PermanentMessage([] { ParseTokenResponse(R"({"access_token":""})"); });
  PermanentMessage([] { ParseTokenResponse(R"({"access_token":42})"); });
  PermanentMessage([] { ParseTokenResponse(R"({"access_token":"t","token_type":"mac"})"); });
  PermanentMessage([] { ParseTokenResponse(R"({"access_token":"t","expires_in":-5})"); });
  PermanentMessage([] { ParseTokenResponse(R"({"access_token":"t","expires_in":0})"); });
  PermanentMessage([] { ParseTokenResponse(R"({"access_token":"t","expires_in":"soon"})"); });
  PermanentMessage([] { ParseTokenResponse(R"({"access_token":"t","expires_in":true})"); });
  PermanentMessage([] { ParseTokenResponse(R"("just a string")"); });
  PermanentMessage([] { ParseTokenResponse("access_token=t&expires_in=3600"); });
  const std::string message =
      PermanentMessage([] { ParseTokenResponse(R"({"access_token":"sekr1t\r\nX-Injected: 1"})"); });
  EXPECT_EQ(std::string::npos, message.find("sekr1t"));
}

TEST(ParseUploadUrlResponse, AcceptsEveryAlias) {
  const std::string url = "https://bucket.s3.amazonaws.com/k/1.dcm?X-Amz-Signature=abc";
  for (const char* key : {"url", "presigned_url", "upload_url"}) {
    const UploadTarget target =
        ParseUploadUrlResponse(std::string(R"({")") + key + R"(":")" + url + R"("})");
    EXPECT_EQ(url, target.url) << key;
    EXPECT_DOUBLE_EQ(900, target.expiresIn);
    EXPECT_TRUE(target.headers.empty());
  }
}

TEST(ParseUploadUrlResponse, ReadsExpiryAndHeaders) {
  const UploadTarget target = ParseUploadUrlResponse(
      R"({"upload_url":"http://127.0.0.1:4569/b/k","expires_in":"300","headers":{"x-amz-server-side-encryption":"AES256","Content-Type":"application/dicom","x-count":3},"other":null})");
  EXPECT_DOUBLE_EQ(300, target.expiresIn);
  ASSERT_EQ(3u, target.headers.size());
  EXPECT_EQ("AES256", target.headers.at("x-amz-server-side-encryption"));
  EXPECT_EQ("application/dicom", target.headers.at("Content-Type"));
  EXPECT_EQ("3", target.headers.at("x-count"));
}

TEST(ParseUploadUrlResponse, RefusesHeadersThatRedirectOrReframeThePut) {
  for (const char* name :
       {"Host", "host", "HOST", "Content-Length", "content-length", "Transfer-Encoding",
        "Connection", "Expect", "TE", "te", "Upgrade", "Authorization", "Proxy-Authorization",
        "proxy-connection", "Proxy-Anything"}) {
    const std::string body = std::string(R"({"url":"https://bucket.example.com/k","headers":{")") +
                             name + R"(":"other-bucket.example.com"}})";
    const std::string message = PermanentMessage([&] { ParseUploadUrlResponse(body); });
    EXPECT_NE(std::string::npos, message.find(std::string("header \"") + name + "\"")) << message;
    EXPECT_NE(std::string::npos, message.find("may not be set")) << message;
  }
  // A reserved header among allowed ones is still refused.
  PermanentMessage([] {
    ParseUploadUrlResponse(
        R"({"url":"https://b.example.com/k","headers":{"Content-Type":"application/dicom","Host":"x"}})");
  });
}

TEST(ParseUploadUrlResponse, KeepsHeadersThatOnlyLookReserved) {
  const UploadTarget target = ParseUploadUrlResponse(
      R"({"url":"https://b.example.com/k","headers":{"X-Host":"a","Hosts":"b","Content-Length-Hint":"c","Proxy":"d","x-amz-meta-authorization":"e","Content-MD5":"f"}})");
  EXPECT_EQ(6u, target.headers.size());
}

TEST(IsReservedUploadHeader, ListsTheFramingRoutingAndCredentialHeaders) {
  EXPECT_TRUE(IsReservedUploadHeader("Host"));
  EXPECT_TRUE(IsReservedUploadHeader("tRaNsFeR-eNcOdInG"));
  EXPECT_TRUE(IsReservedUploadHeader("Proxy-Authenticate"));
  EXPECT_FALSE(IsReservedUploadHeader("Proxy"));
  EXPECT_FALSE(IsReservedUploadHeader("Content-Type"));
  EXPECT_FALSE(IsReservedUploadHeader("x-amz-acl"));
  EXPECT_FALSE(IsReservedUploadHeader(""));
}

TEST(ParseUploadUrlResponse, RefusesMalformedAnswersWithoutTheQuery) {
  PermanentMessage([] { ParseUploadUrlResponse(R"({"expires_in":900})"); });
  PermanentMessage([] { ParseUploadUrlResponse(R"({"url":""})"); });
  PermanentMessage([] { ParseUploadUrlResponse(R"({"url":7})"); });
  PermanentMessage([] { ParseUploadUrlResponse(R"("https://h/k")"); });
  PermanentMessage([] { ParseUploadUrlResponse(R"({"url":"https://h/k","expires_in":"x"})"); });
  PermanentMessage([] { ParseUploadUrlResponse(R"({"url":"https://h/k","headers":"x"})"); });
  PermanentMessage(
      [] { ParseUploadUrlResponse(R"({"url":"https://h/k","headers":{"A":"1\r\nB: 2"}})"); });
  PermanentMessage(
      [] { ParseUploadUrlResponse(R"({"url":"https://h/k","headers":{"Bad Name":"1"}})"); });
  PermanentMessage(
      [] { ParseUploadUrlResponse(R"({"url":"https://h/k","headers":{"A":{"x":1}}})"); });
  PermanentMessage([] { ParseUploadUrlResponse(R"({"url":"file:///etc/passwd"})"); });
  const std::string message = PermanentMessage(
      [] { ParseUploadUrlResponse(R"({"url":"https://h/k x?X-Amz-Signature=topsecret"})"); });
  EXPECT_EQ(std::string::npos, message.find("topsecret"));
  EXPECT_NE(std::string::npos, message.find("https://h/k"));
}

TEST(ParseJsonBody, EnforcesSizeAndDepthLimits) {
  EXPECT_NO_THROW(ParseJsonBody(Nested(64), "test"));
  EXPECT_NE(std::string::npos,
            PermanentMessage([] { ParseJsonBody(Nested(65), "test"); }).find("deeper"));
  PermanentMessage([] { ParseJsonBody(std::string(200000, '['), "test"); });
  PermanentMessage([] { ParseJsonBody(std::string(200000, '{'), "test"); });
  // Brackets inside strings are not nesting.
  EXPECT_NO_THROW(ParseJsonBody(R"({"a":")" + std::string(1000, '[') + R"("})", "test"));

  const std::string big = R"({"a":")" + std::string(1024 * 1024, 'x') + R"("})";
  EXPECT_NE(std::string::npos,
            PermanentMessage([&] { ParseJsonBody(big, "test"); }).find("too large"));
  const std::string justUnder = R"({"a":")" + std::string(1024 * 1024 - 10, 'x') + R"("})";
  EXPECT_EQ(1024u * 1024 - 10, ParseJsonBody(justUnder, "test")["a"].asString().size());
}

TEST(ParseJsonBody, IsStrict) {
  PermanentMessage([] { ParseJsonBody(R"({"a":1} // comment)", "test"); });
  PermanentMessage([] { ParseJsonBody(R"({"a":1,})", "test"); });
  PermanentMessage([] { ParseJsonBody(R"({'a':1})", "test"); });
  PermanentMessage([] { ParseJsonBody(R"({"a":1,"a":2})", "test"); });
  PermanentMessage([] { ParseJsonBody(R"({"a":NaN})", "test"); });
  PermanentMessage([] { ParseJsonBody(R"({"a":1}{"b":2})", "test"); });
  PermanentMessage([] { ParseJsonBody(std::string("{\"a\":1}\0", 8), "test"); });
  const std::string message = PermanentMessage([] { ParseJsonBody("{", "token"); });
  EXPECT_EQ(0u, message.find("token: "));
  EXPECT_EQ(1, ParseJsonBody("\xEF\xBB\xBF{\"a\":1}", "test")["a"].asInt());  // BOM tolerated
}

TEST(DescribeErrorBody, KeepsTheServersMessage) {
  EXPECT_EQ(
      "invalid_client: Client authentication failed",
      DescribeErrorBody(
          R"({"error":"invalid_client","error_description":"Client authentication failed"})"));
  EXPECT_EQ("invalid_scope", DescribeErrorBody(R"({"error":"invalid_scope"})"));
  EXPECT_EQ("order not found", DescribeErrorBody(R"({"message":"order not found","code":404})"));
  EXPECT_EQ("bad_request: size missing",
            DescribeErrorBody(R"({"error":"bad_request","message":"size missing"})"));
  EXPECT_EQ("quota exceeded",
            DescribeErrorBody(R"({"error":{"code":429,"message":"quota exceeded"}})"));
  EXPECT_EQ("Bad Request: filename is required",
            DescribeErrorBody(R"({"title":"Bad Request","detail":"filename is required"})"));
  EXPECT_EQ("plain words", DescribeErrorBody(R"("plain words")"));
  EXPECT_EQ("Service Unavailable", DescribeErrorBody("Service Unavailable\r\n"));
  EXPECT_EQ("(empty body)", DescribeErrorBody(""));
  EXPECT_EQ("(empty body)", DescribeErrorBody(" \n"));
}

TEST(DescribeErrorBody, S3XmlKeepsOnlyCodeAndMessage) {
  const std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
      "<Message>The request signature we calculated does not match</Message>"
      "<CanonicalRequest>PUT /b/k X-Amz-Security-Token=SESSIONTOKEN</CanonicalRequest></Error>";
  EXPECT_EQ("SignatureDoesNotMatch: The request signature we calculated does not match",
            DescribeErrorBody(xml));
  EXPECT_EQ("AccessDenied", DescribeErrorBody("<Error><Code>AccessDenied</Code></Error>"));
  // Not an error document: plain excerpt.
  EXPECT_EQ("<Code>x</Code>", DescribeErrorBody("<Code>x</Code>"));
}

TEST(DescribeErrorBody, ExcerptIsPrintableAndBounded) {
  const std::string html = "<html>\n<body>\t" + std::string(1000, 'x') + "</body></html>";
  const std::string excerpt = DescribeErrorBody(html);
  EXPECT_LE(excerpt.size(), 300u);
  EXPECT_EQ(0u, excerpt.find("<html> <body> xxx"));
  EXPECT_EQ("...", excerpt.substr(excerpt.size() - 3));

  const std::string controls = DescribeErrorBody(std::string("a\x01\x02\x1b[31mb\x7f", 10));
  for (const char c : controls) {
    EXPECT_GE(static_cast<unsigned char>(c), 0x20) << controls;
    EXPECT_NE(0x7f, c);
  }
  EXPECT_EQ("?", DescribeErrorBody("\xff"));
  EXPECT_EQ("caf\xC3\xA9 ferm\xC3\xA9", DescribeErrorBody(R"({"message":"café fermé"})"));
  EXPECT_EQ("a?(b", DescribeErrorBody("a\xC3(b"));

  // A long JSON message is cut too, never in the middle of a UTF-8 character.
  const std::string longMessage =
      DescribeErrorBody(R"({"message":")" + std::string(299, 'x') + "\xC3\xA9\xC3\xA9" + R"("})");
  EXPECT_LE(longMessage.size(), 300u);
  EXPECT_EQ(std::string(297, 'x') + "...", longMessage);
  // Nothing but unknown keys: the raw JSON, shortened.
  EXPECT_EQ(R"({"code":17})", DescribeErrorBody(R"({"code":17})"));
  // Invalid JSON is described as text.
  EXPECT_EQ(R"({"error": oops)", DescribeErrorBody(R"({"error": oops)"));
}

TEST(ParseRetryAfter, DeltaSeconds) {
  EXPECT_EQ(120.0, ParseRetryAfter("120", 0));
  EXPECT_EQ(5.0, ParseRetryAfter(" 5 ", 0));
  EXPECT_EQ(0.0, ParseRetryAfter("0", 0));
  EXPECT_EQ(1.5, ParseRetryAfter("1.5", 0));
  EXPECT_EQ(0.0, ParseRetryAfter("-3", 0));
  const std::optional<double> huge = ParseRetryAfter(std::string(40, '9'), 0);
  ASSERT_TRUE(huge);
  EXPECT_GT(*huge, 1e8);
  EXPECT_LT(*huge, 1e10);
}

TEST(ParseRetryAfter, HttpDatesRelativeToNow) {
  // 784111777 = Sun, 06 Nov 1994 08:49:37 GMT
  const double when = 784111777;
  EXPECT_EQ(30.0, ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", when - 30));
  EXPECT_EQ(30.0, ParseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", when - 30));
  EXPECT_EQ(30.0, ParseRetryAfter("Sun Nov  6 08:49:37 1994", when - 30));
  EXPECT_EQ(0.0, ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", when + 100));  // past
  // Round trip through the C library for a date near now.
  const std::time_t now = 1'700'000'000;
  char text[64];
  std::tm tm{};
  const std::time_t later = now + 90;
  gmtime_r(&later, &tm);
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  EXPECT_EQ(90.0, ParseRetryAfter(text, static_cast<double>(now)));
}

TEST(ParseRetryAfter, GarbageIsAbsent) {
  EXPECT_FALSE(ParseRetryAfter("", 0));
  EXPECT_FALSE(ParseRetryAfter("soon", 0));
  EXPECT_FALSE(ParseRetryAfter("1.2.3", 0));
  EXPECT_FALSE(ParseRetryAfter(".", 0));
  EXPECT_FALSE(ParseRetryAfter("12abc", 0));
  EXPECT_FALSE(ParseRetryAfter("Sun, 32 Nov 1994 08:49:37 GMT", 0));
  EXPECT_FALSE(ParseRetryAfter("Sun, 06 Foo 1994 08:49:37 GMT", 0));
  EXPECT_FALSE(ParseRetryAfter("Sun, 06 Nov 1994 24:49:37 GMT", 0));
  EXPECT_FALSE(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 UTC", 0));
  EXPECT_FALSE(ParseRetryAfter("Xyz, 06 Nov 1994 08:49:37 GMT", 0));
  EXPECT_FALSE(ParseRetryAfter("Sun, 6 Nov 1994 08:49:37 GMT", 0));
  EXPECT_FALSE(ParseRetryAfter(std::string(100, '1'), 0));
}
