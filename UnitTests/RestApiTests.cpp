#include <gtest/gtest.h>
#include <json/json.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "Core/CloudIngestService.h"
#include "Fakes/FakeCloud.h"
#include "Fakes/FakeIngestService.h"
#include "Fakes/FakeStudySource.h"
#include "Fakes/RecordingLogger.h"
#include "Fakes/TestJson.h"
#include "Rest/RestApi.h"
#include "Rest/RestBody.h"

using namespace CloudIngest;
using namespace CloudIngest::Testing;

namespace {

const char* const kStudy = "0123abcd-0123abcd-0123abcd-0123abcd-0123abcd";
const char* const kOrder = "0b6f3c1e-9a4d-4c2b-8f7e-000000000001";

// A service that is built but never started: routes queue work, nothing sends it.
class RestApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/rest-api-test-XXXXXX";
    dir_ = mkdtemp(pattern);
    Configuration config;
    config.url = "http://127.0.0.1:9";
    config.tokenUrl = config.url + "/auth/token";
    config.clientId = "client";
    config.clientSecret = "very-secret-value";
    config.allowedUploadHosts = {"127.0.0.1"};
    config.auditLog = dir_ + "/audit.jsonl";
    config.database = dir_ + "/queue.db";
    config.temporaryDirectory = dir_;
    auto cloud = std::make_unique<FakeCloud>();
    cloud_ = cloud.get();
    source_.AddStudy(kStudy, "1.2.3.4", 2);
    service_ =
        std::make_unique<CloudIngestService>(config, source_, log_, nullptr, std::move(cloud));
    api_ = std::make_unique<RestApi>(service_.get(), resources_);
  }
  void TearDown() override {
    api_.reset();
    service_.reset();
    std::filesystem::remove_all(dir_);
  }

  RestResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = {}, const std::string& contentType = {},
                    std::map<std::string, std::string> query = {}) const {
    RestRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.contentType = contentType;
    request.query = std::move(query);
    request.user = "admin";
    return api_->Handle(request);
  }

  // Asserts a JSON error {"error": "...", "details": ...} with that status; returns it.
  static Json::Value ExpectJsonError(const RestResponse& response, int status) {
    EXPECT_EQ(status, response.status) << response.body;
    EXPECT_EQ("application/json", response.contentType);
    const Json::Value body = ParseJson(response.body);
    EXPECT_TRUE(body.isObject()) << response.body;
    EXPECT_TRUE(body["error"].isString() && !body["error"].asString().empty()) << response.body;
    EXPECT_TRUE(body.isMember("details")) << response.body;
    return body;
  }

  std::string AuditText() const {
    std::ifstream in(dir_ + "/audit.jsonl");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string dir_;
  Testing::RecordingLogger log_;
  FakeStudySource source_;
  FakeCloud* cloud_ = nullptr;
  std::unique_ptr<CloudIngestService> service_;
  RestApi::Resources resources_;
  std::unique_ptr<RestApi> api_;
};

const char* const kNotJson[] = {"text/plain", "text/plain;charset=UTF-8",
                                "application/x-www-form-urlencoded",
                                "multipart/form-data; boundary=xyz", ""};

}  // namespace

TEST(RestBody, JsonContentTypeTakesParametersAndAnyCase) {
  EXPECT_TRUE(IsJsonContentType("application/json"));
  EXPECT_TRUE(IsJsonContentType("application/json; charset=utf-8"));
  EXPECT_TRUE(IsJsonContentType("Application/JSON;charset=UTF-8"));
  EXPECT_TRUE(IsJsonContentType(" application/json ; charset=utf-8"));
  EXPECT_FALSE(IsJsonContentType(""));
  EXPECT_FALSE(IsJsonContentType(" ; charset=utf-8"));
  EXPECT_FALSE(IsJsonContentType("text/plain"));
  EXPECT_FALSE(IsJsonContentType("text/plain; application/json"));
  EXPECT_FALSE(IsJsonContentType("application/x-www-form-urlencoded"));
  EXPECT_FALSE(IsJsonContentType("multipart/form-data; boundary=x"));
  EXPECT_FALSE(IsJsonContentType("application/jsonx"));
  EXPECT_FALSE(IsJsonContentType("application/json-patch+json"));
}

TEST_F(RestApiTest, SendWithoutJsonContentTypeIs415AndQueuesNothing) {
  const std::string path = std::string("/studies/") + kStudy + "/send";
  for (const char* type : kNotJson) {
    SCOPED_TRACE(type);
    const Json::Value error =
        ExpectJsonError(Call("POST", path, R"({"metadata":{"injected":"x"}})", type), 415);
    EXPECT_NE(std::string::npos, error["error"].asString().find("application/json"));
  }
  EXPECT_FALSE(Tracked(*service_, kStudy).has_value());
  EXPECT_EQ(std::string::npos, AuditText().find("manual_send"));
}

TEST_F(RestApiTest, SendWithJsonAndAnEmptyBodyQueuesAsWithAnEmptyObject) {
  const RestResponse response =
      Call("POST", std::string("/studies/") + kStudy + "/send", "", "application/json");
  EXPECT_EQ(202, response.status) << response.body;
  EXPECT_EQ("queued", ParseJson(response.body)["state"].asString());
  const auto record = Tracked(*service_, kStudy);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(StudyState::Queued, record->state);
  EXPECT_EQ("admin", record->requestedBy);
}

TEST_F(RestApiTest, SendTakesJsonWithACharset) {
  const RestResponse response = Call("POST", std::string("/studies/") + kStudy + "/send",
                                     R"({"mode":"Zip"})", "Application/JSON; charset=UTF-8");
  EXPECT_EQ(202, response.status) << response.body;
  EXPECT_EQ("Zip", ParseJson(response.body)["mode"].asString());
}

TEST_F(RestApiTest, CancelWithoutJsonContentTypeIs415AndLeavesTheStudyQueued) {
  const std::string path = std::string("/studies/") + kStudy;
  ASSERT_EQ(202, Call("POST", path + "/send", "{}", "application/json").status);
  for (const char* type : kNotJson) {
    SCOPED_TRACE(type);
    ExpectJsonError(Call("POST", path + "/cancel", "", type), 415);
  }
  EXPECT_EQ(StudyState::Queued, Tracked(*service_, kStudy)->state);
  const RestResponse cancelled = Call("POST", path + "/cancel", "", "application/json");
  EXPECT_EQ(200, cancelled.status) << cancelled.body;
  EXPECT_EQ(StudyState::Cancelled, Tracked(*service_, kStudy)->state);
}

TEST_F(RestApiTest, OrderMetadataWithoutJsonContentTypeIs415AndReachesNoService) {
  const std::string path = std::string("/orders/") + kOrder + "/metadata";
  for (const char* type : kNotJson) {
    SCOPED_TRACE(type);
    ExpectJsonError(Call("POST", path, R"({"injected":"x"})", type), 415);
  }
  EXPECT_EQ(0u, cloud_->Calls("add-metadata"));
  EXPECT_EQ(0u, cloud_->Calls("token"));
  EXPECT_EQ(std::string::npos, AuditText().find("metadata_added"));

  const RestResponse ok = Call("POST", path, "", "application/json");
  EXPECT_EQ(200, ok.status) << ok.body;
  ASSERT_EQ(1u, cloud_->MetadataBodies().size());
  EXPECT_EQ(Json::Value(Json::objectValue), ParseJson(cloud_->MetadataBodies()[0]));
}

TEST_F(RestApiTest, TestConnectionWithoutJsonContentTypeIs415AndAsksForNoToken) {
  for (const char* type : kNotJson) {
    SCOPED_TRACE(type);
    ExpectJsonError(Call("POST", "/test-connection", "", type), 415);
  }
  EXPECT_EQ(0u, cloud_->Calls("token"));
  const RestResponse ok = Call("POST", "/test-connection", "", "application/json");
  EXPECT_EQ(200, ok.status) << ok.body;
  EXPECT_TRUE(ParseJson(ok.body)["ok"].asBool()) << ok.body;
}

TEST_F(RestApiTest, WrongMethodIsStill405WhateverTheContentType) {
  const RestResponse response = Call("POST", "/status", "", "text/plain");
  EXPECT_EQ(405, response.status);
  // GET routes take no body, so they need no Content-Type.
  EXPECT_EQ(200, Call("GET", "/studies").status);
}

TEST_F(RestApiTest, SinceStillTakesUnixSecondsAndIso) {
  ASSERT_EQ(
      202,
      Call("POST", std::string("/studies/") + kStudy + "/send", "{}", "application/json").status);
  const auto listed = [this](const std::string& since) {
    const RestResponse response = Call("GET", "/studies", {}, {}, {{"since", since}});
    EXPECT_EQ(200, response.status) << since << ": " << response.body;
    return ParseJson(response.body)["studies"].size();
  };
  EXPECT_EQ(1u, listed("1000000000"));
  EXPECT_EQ(1u, listed("1000000000.25"));
  EXPECT_EQ(1u, listed("2001-09-09T01:46:40Z"));
  EXPECT_EQ(0u, listed("99999999999"));
  EXPECT_EQ(0u, listed("9999-01-01T00:00:00Z"));
  for (const char* bad : {"1.", ".5", "-3", "yesterday", "1e9", "1.2.3"}) {
    SCOPED_TRACE(bad);
    ExpectJsonError(Call("GET", "/studies", {}, {}, {{"since", bad}}), 400);
  }
}

TEST_F(RestApiTest, HugeSinceIs400NamingItWithoutParsing) {
  // A number whose fraction runs on: std::regex recursed once per digit here.
  const std::string huge = "1." + std::string(100 * 1024, '0');
  const auto start = std::chrono::steady_clock::now();
  const Json::Value error =
      ExpectJsonError(Call("GET", "/studies", {}, {}, {{"since", huge}}), 400);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ("since", error["details"]["parameter"].asString());
  EXPECT_EQ(64u, error["details"]["max_length"].asUInt());
  EXPECT_NE(std::string::npos, error["error"].asString().find("since"));

  // 64 characters are still read.
  const std::string longest = "1000000000." + std::string(53, '0');
  ASSERT_EQ(64u, longest.size());
  EXPECT_EQ(200, Call("GET", "/studies", {}, {}, {{"since", longest}}).status);
  EXPECT_EQ(400, Call("GET", "/studies", {}, {}, {{"since", longest + "0"}}).status);
}

TEST_F(RestApiTest, OtherLongQueryValuesAndPathsAre400NamingThem) {
  const std::string huge(100 * 1024, 'a');
  for (const char* key : {"state", "limit", "offset"}) {
    SCOPED_TRACE(key);
    const Json::Value error = ExpectJsonError(Call("GET", "/studies", {}, {}, {{key, huge}}), 400);
    EXPECT_EQ(key, error["details"]["parameter"].asString());
  }
  for (const std::string& path :
       {"/studies/" + huge, "/studies/" + huge + "/send", "/orders/" + huge + "/metadata"}) {
    const Json::Value error = ExpectJsonError(Call("GET", path), 400);
    EXPECT_EQ("path", error["details"]["parameter"].asString());
  }
  // Within the bounds, the usual answers.
  EXPECT_EQ(400, Call("GET", "/studies", {}, {}, {{"state", "cancelledx"}}).status);
  EXPECT_EQ(200, Call("GET", "/studies", {}, {}, {{"state", "Cancelled"}}).status);
  EXPECT_EQ(404, Call("GET", "/studies/" + std::string(65, 'a')).status);
}

TEST(RestApiFilter, MultipartPostsToThePluginAreRefusedBeforeRouting) {
  // Orthanc would hand each part to the route with headers the sender wrote.
  for (const char* type : {"multipart/form-data; boundary=x", "Multipart/Form-Data;boundary=x",
                           " multipart/form-data", "multipart/mixed; boundary=x"}) {
    SCOPED_TRACE(type);
    EXPECT_TRUE(RefuseBeforeRouting("POST", "/cloud-ingest/test-connection", type));
    EXPECT_TRUE(RefuseBeforeRouting("POST", "//cloud-ingest/studies/x/send", type));
    EXPECT_TRUE(RefuseBeforeRouting("POST", "/./cloud-ingest/orders/x/metadata", type));
    EXPECT_TRUE(RefuseBeforeRouting("POST", "/cloud-ingest", type));
  }
  // Other types reach the routes, which answer 415 with a JSON body.
  EXPECT_FALSE(RefuseBeforeRouting("POST", "/cloud-ingest/test-connection", "text/plain"));
  EXPECT_FALSE(RefuseBeforeRouting("POST", "/cloud-ingest/test-connection", ""));
  EXPECT_FALSE(RefuseBeforeRouting("POST", "/cloud-ingest/test-connection", "application/json"));
  // Orthanc's own multipart uploads (Orthanc Explorer) and other methods are not the plugin's.
  EXPECT_FALSE(RefuseBeforeRouting("POST", "/instances", "multipart/form-data; boundary=x"));
  EXPECT_FALSE(RefuseBeforeRouting("POST", "/cloud-ingestion/x", "multipart/form-data"));
  EXPECT_FALSE(RefuseBeforeRouting("POST", "/", "multipart/form-data"));
  EXPECT_FALSE(RefuseBeforeRouting("POST", "", "multipart/form-data"));
  EXPECT_FALSE(RefuseBeforeRouting("GET", "/cloud-ingest/status", "multipart/form-data"));
  EXPECT_FALSE(RefuseBeforeRouting("PUT", "/cloud-ingest/status", "multipart/form-data"));
}
