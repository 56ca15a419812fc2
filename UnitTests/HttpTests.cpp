#include <gtest/gtest.h>

#include "Core/Cloud/Http.h"
#include "Core/Url.h"

using namespace CloudIngest;

TEST(StringBodySource, ReadsInChunksAndRewinds) {
  StringBodySource source("hello world");
  EXPECT_EQ(11u, source.Size());
  char buffer[4];
  std::string collected;
  size_t calls = 0;
  for (size_t n; (n = source.Read(buffer, sizeof buffer)) > 0; ++calls) {
    EXPECT_LE(n, sizeof buffer);
    collected.append(buffer, n);
  }
  EXPECT_EQ("hello world", collected);
  EXPECT_EQ(3u, calls);
  EXPECT_EQ(0u, source.Read(buffer, sizeof buffer));  // stays at the end

  source.Rewind();
  ASSERT_EQ(4u, source.Read(buffer, sizeof buffer));
  EXPECT_EQ("hell", std::string(buffer, 4));
}

TEST(StringBodySource, EmptyAndZeroMax) {
  StringBodySource empty("");
  char buffer[8];
  EXPECT_EQ(0u, empty.Read(buffer, sizeof buffer));
  StringBodySource source("abc");
  EXPECT_EQ(0u, source.Read(buffer, 0));
  EXPECT_EQ(3u, source.Read(buffer, sizeof buffer));
}

TEST(HttpResponse, HeaderLookup) {
  HttpResponse response;
  response.headers["etag"] = "\"abc\"";
  EXPECT_EQ("\"abc\"", response.Header("etag"));
  EXPECT_EQ("", response.Header("retry-after"));
}

TEST(RedactUrl, DropsQueryFragmentAndCredentials) {
  EXPECT_EQ("https://bucket.s3.amazonaws.com/key/1.dcm",
            RedactUrl("https://bucket.s3.amazonaws.com/key/1.dcm?X-Amz-Signature=abc&X-Amz-"
                      "Credential=AKIA"));
  EXPECT_EQ("http://h/p", RedactUrl("http://h/p#frag?x"));
  EXPECT_EQ("http://h/p", RedactUrl("http://h/p"));
  EXPECT_EQ("https://host:8443/x", RedactUrl("https://user:secret@host:8443/x?y=1"));
  EXPECT_EQ("https://host", RedactUrl("https://user:secret@host"));
  EXPECT_EQ("", RedactUrl("?only=query"));
  // An '@' in the path is not userinfo.
  EXPECT_EQ("http://h/a@b", RedactUrl("http://h/a@b?s=1"));
}

TEST(UrlHost, ParsesHttpAndHttps) {
  EXPECT_EQ("bucket.s3.amazonaws.com", UrlHost("https://bucket.s3.amazonaws.com/k?sig=1"));
  EXPECT_EQ("127.0.0.1", UrlHost("http://127.0.0.1:4569/bucket/key"));
  EXPECT_EQ("example.com", UrlHost("HTTPS://Example.COM"));
  EXPECT_EQ("example.com", UrlHost("http://example.com?x=1"));
  EXPECT_EQ("example.com", UrlHost("http://example.com#frag"));
  EXPECT_EQ("host", UrlHost("http://user:pw@host:80/"));
  EXPECT_EQ("::1", UrlHost("http://[::1]:8080/x"));
  EXPECT_EQ("my_host-1.local", UrlHost("http://my_host-1.local/"));
}

TEST(UrlHost, RefusesWhatIsNotAClearHttpHost) {
  EXPECT_EQ("", UrlHost("ftp://example.com/"));
  EXPECT_EQ("", UrlHost("file:///etc/passwd"));
  EXPECT_EQ("", UrlHost("example.com/path"));
  EXPECT_EQ("", UrlHost("http://"));
  EXPECT_EQ("", UrlHost("http:///path"));
  EXPECT_EQ("", UrlHost("http://:80/"));
  EXPECT_EQ("", UrlHost("http://host:port/"));
  EXPECT_EQ("", UrlHost("http://host:123456/"));
  EXPECT_EQ("", UrlHost("http://evil.com\\@good.com/"));
  EXPECT_EQ("", UrlHost("http://exa mple.com/"));
  EXPECT_EQ("", UrlHost("http://[::1/"));
  EXPECT_EQ("", UrlHost("http://[::1]x/"));
  EXPECT_EQ("", UrlHost(""));
}

TEST(UrlEncode, KeepsUnreservedAndEncodesTheRest) {
  EXPECT_EQ("abcXYZ019-._~", UrlEncode("abcXYZ019-._~"));
  EXPECT_EQ("a%20b%26c%3Dd%3Fe%2Ff%2Bg%25", UrlEncode("a b&c=d?e/f+g%"));
  EXPECT_EQ("1.2.840.10008", UrlEncode("1.2.840.10008"));
  EXPECT_EQ("%C3%A9%00x", UrlEncode(std::string("\xC3\xA9\0x", 4)));
  EXPECT_EQ("", UrlEncode(""));
}
