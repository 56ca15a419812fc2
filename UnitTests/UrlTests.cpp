// The one URL parser (libcurl's, with a few strictness checks) that the
// configuration, the upload-host allow-list and the transfers share.
#include <gtest/gtest.h>
#include <json/reader.h>

#include <memory>
#include <sstream>
#include <utility>

#include "Core/Clock.h"
#include "Core/Cloud/IngestClient.h"
#include "Core/Cloud/TokenProvider.h"
#include "Core/Configuration/Configuration.h"
#include "Core/Url.h"
#include "Fakes/FakeHttpClient.h"

using namespace CloudIngest;

namespace {

Configuration Parse(const std::string& json) {
  Json::Value section;
  std::istringstream in(json);
  in >> section;
  section["ClientId"] = "id";
  section["ClientSecret"] = "secret";
  return ParseConfiguration(section, OrthancDefaults());
}

}  // namespace

TEST(ParseUrl, NamesTheProblem) {
  const std::pair<const char*, UrlProblem> cases[] = {
      {"example.com/x", UrlProblem::NoScheme},
      {"1http://example.com", UrlProblem::NoScheme},
      {"https://", UrlProblem::NoHost},
      {"https:///api", UrlProblem::NoHost},  // curl alone would take "api"
      {"http://evil.com\\@good.com/", UrlProblem::BadHost},
      {"http://[fe80::1%25eth0]/", UrlProblem::BadHost},
      {"http://in$gest.example.com/", UrlProblem::BadHost},
      {"http://h:0/", UrlProblem::BadPort},
      {"http://h:65536/", UrlProblem::BadPort},
  };
  for (const auto& [url, problem] : cases) EXPECT_EQ(problem, ParseUrl(url).problem) << url;

  const UrlParts parts = ParseUrl("FTP://User:pw@Example.COM:2121/x?y#z");
  EXPECT_EQ(UrlProblem::None, parts.problem);
  EXPECT_EQ("ftp", parts.scheme);
  EXPECT_EQ("example.com", parts.host);
  EXPECT_EQ(2121u, parts.port);
  EXPECT_TRUE(parts.hasUserInfo);
}

// curl decodes the host and spells IPv6 canonically: so does the allow-list.
TEST(UrlHost, IsTheHostCurlConnectsTo) {
  const std::pair<const char*, const char*> cases[] = {
      {"http://%65vil.com/", "evil.com"},
      {"http://[FE80:0:0::1]:9000/", "fe80::1"},
      {"http:/host/x", ""},
  };
  for (const auto& [url, host] : cases) EXPECT_EQ(host, UrlHost(url)) << url;

  for (const auto& [address, canonical] :
       {std::pair<const char*, const char*>{"fe80:0:0::1", "fe80::1"},
        {"::1", "::1"},
        {"::::", ""},
        {"example.com", ""}}) {
    EXPECT_EQ(canonical, CanonicalIpv6(address)) << address;
  }
}

TEST(UrlDecode, DecodesEscapesOnly) {
  EXPECT_EQ("a b+c%zz", UrlDecode("a%20b+c%zz"));
  EXPECT_EQ("", UrlDecode(""));
}

TEST(UrlAgreement, ConfigurationAndAllowListReadTheSameHost) {
  for (const char* url : {"https://Ingest.Example.COM:8443/api", "http://[::1]:9000/x",
                          "http://[FE80:0:0::1]/api", "http://127.0.0.1:8090"}) {
    const Configuration config = Parse(std::string(R"({"Url": ")") + url + "\"}");
    ASSERT_EQ(1u, config.allowedUploadHosts.size()) << url;
    EXPECT_EQ(UrlHost(url), config.allowedUploadHosts[0]) << url;
  }
}

TEST(UrlAgreement, AnIpv6PatternMatchesHoweverTheUrlSpellsTheAddress) {
  const Configuration config =
      Parse(R"({"Url": "http://127.0.0.1:8090", "AllowedUploadHosts": ["FE80:0:0::1"]})");
  EXPECT_EQ(std::vector<std::string>{"fe80::1"}, config.allowedUploadHosts);
  Testing::FakeHttpClient http;
  ManualClock clock;
  TokenProvider tokens(TokenSettings{config.url + "/auth/token", "GET", "id", "secret", "", 60},
                       http, clock);
  const IngestClient client(config, http, tokens);
  EXPECT_TRUE(client.IsAllowedUploadHost("http://[fe80::1]/b/k"));
  EXPECT_TRUE(client.IsAllowedUploadHost("http://[fe80:0::0:1]:9000/b/k"));
  EXPECT_FALSE(client.IsAllowedUploadHost("http://[fe80::2]/b/k"));
}

TEST(UrlAgreement, AnAddressThatIsNotIpv6IsRefusedAtStartUp) {
  try {
    Parse(R"({"Url": "http://127.0.0.1:8090", "AllowedUploadHosts": ["::::"]})");
    FAIL() << "no ConfigurationError";
  } catch (const ConfigurationError& e) {
    EXPECT_EQ(0u, std::string(e.what()).find("CloudIngest.AllowedUploadHosts[0]: is not an IPv6"))
        << e.what();
  }
}
