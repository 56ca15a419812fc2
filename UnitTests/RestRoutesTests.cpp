// Every /cloud-ingest/ route over a fake service: status codes, error bodies,
// and what reached the service (nothing, when the request is refused).
#include <gtest/gtest.h>
#include <json/json.h>

#include <sstream>

#include "Fakes/FakeIngestService.h"
#include "Fakes/TestJson.h"
#include "Rest/RestApi.h"

using namespace CloudIngest;
using namespace CloudIngest::Testing;

namespace {

const char* const kStudy = "0123abcd-0123abcd-0123abcd-0123abcd-0123abcd";
const char* const kOrder = "0b6f3c1e-9a4d-4c2b-8f7e-000000000001";
const char* const kJson = "application/json";
constexpr double kT0 = 1'700'000'000.0;  // 2023-11-14T22:13:20Z

StudyRecord Record(const std::string& id, StudyState state) {
  StudyRecord r;
  r.orthancId = id;
  r.state = state;
  r.createdAt = r.updatedAt = r.nextAttemptAt = kT0;
  return r;
}

class RestRoutes : public ::testing::Test {
 protected:
  RestRoutes() : api_(&service_, resources_) {
    resources_["WebApp/index.html"] = "<html></html>";
    resources_["WebApp/app.js"] = "let x;";
  }

  RestResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = {}, const std::string& contentType = kJson,
                    std::map<std::string, std::string> query = {}) {
    RestRequest request;
    request.method = method;
    request.path = path;
    request.body = body;
    request.contentType = method == "POST" ? contentType : std::string();
    request.query = std::move(query);
    request.user = "admin";
    return api_.Handle(request);
  }

  // Asserts a JSON error with that status; returns its body.
  static Json::Value ExpectError(const RestResponse& response, int status) {
    EXPECT_EQ(status, response.status) << response.body;
    EXPECT_EQ("application/json", response.contentType);
    const Json::Value body = ParseJson(response.body);
    EXPECT_TRUE(body["error"].isString() && !body["error"].asString().empty()) << response.body;
    EXPECT_TRUE(body.isMember("details")) << response.body;
    return body;
  }

  // The answer's JSON body, after checking its status.
  static Json::Value ExpectJson(const RestResponse& response, int status) {
    EXPECT_EQ(status, response.status) << response.body;
    EXPECT_EQ("application/json", response.contentType);
    return ParseJson(response.body);
  }

  RestApi::Resources resources_;
  FakeIngestService service_;
  RestApi api_;
};

struct Route {
  const char* method;
  std::string path;
};

std::vector<Route> EveryRoute() {
  const std::string study = std::string("/studies/") + kStudy;
  return {{"GET", "/status"},
          {"GET", "/app"},
          {"GET", "/app/app.js"},
          {"GET", "/studies"},
          {"GET", study},
          {"POST", study + "/send"},
          {"POST", study + "/cancel"},
          {"POST", std::string("/orders/") + kOrder + "/metadata"},
          {"POST", "/test-connection"},
          {"POST", "/queue/pause"},
          {"POST", "/queue/resume"},
          {"POST", "/studies/send"},
          {"GET", study + "/preview"}};
}

}  // namespace

TEST_F(RestRoutes, StatusRendersTheServiceSnapshot) {
  ServiceStatus& s = service_.status;
  s.enabled = true;
  s.takenAt = kT0;
  s.url = "https://ingest.example.com";
  s.autoSend = true;
  s.uploadMode = "Zip";
  s.auditLog = "/var/log/audit.jsonl";
  s.token.validNow = true;
  s.token.validUntil = kT0 + 3600;
  s.token.issuedAt = kT0;
  s.token.refreshFailures = 2;
  s.totals.byState = {{StudyState::Queued, 3}, {StudyState::Failed, 1}};
  s.totals.studiesSent = 7;
  s.totals.instancesSent = 70;
  s.totals.bytesSent = 5'000'000'000ULL;
  s.totals.failures = 4;
  s.totals.lastSuccess = kT0 - 60;
  s.changesCursor = 42;
  s.databaseRecovered = DatabaseRecovery{"/db.corrupt-x", kT0, "file is not a database"};

  const Json::Value v = ExpectJson(Call("GET", "/status"), 200);
  EXPECT_EQ(CLOUD_INGEST_VERSION, v["version"].asString());
  EXPECT_TRUE(v["enabled"].asBool());
  EXPECT_EQ("https://ingest.example.com", v["url"].asString());
  EXPECT_TRUE(v["auto_send"].asBool());
  EXPECT_EQ("Zip", v["upload_mode"].asString());
  EXPECT_EQ("/var/log/audit.jsonl", v["audit_log"].asString());
  EXPECT_TRUE(v["token"]["valid"].asBool());
  EXPECT_EQ("2023-11-14T23:13:20.000Z", v["token"]["valid_until"].asString());
  EXPECT_EQ("2023-11-14T22:13:20.000Z", v["token"]["issued_at"].asString());
  EXPECT_EQ(2u, v["token"]["refresh_failures"].asUInt());
  EXPECT_TRUE(v["token"]["last_error"].isNull());
  EXPECT_EQ(3u, v["queue"]["queued"].asUInt());
  EXPECT_EQ(1u, v["queue"]["failed"].asUInt());
  EXPECT_EQ(7u, v["totals"]["studies_sent"].asUInt64());
  EXPECT_EQ(70u, v["totals"]["instances_sent"].asUInt64());
  EXPECT_EQ(5'000'000'000ULL, v["totals"]["bytes_sent"].asUInt64());
  EXPECT_EQ(4u, v["totals"]["failures"].asUInt64());
  EXPECT_EQ("2023-11-14T22:12:20.000Z", v["totals"]["last_success"].asString());
  EXPECT_EQ(42, v["changes_cursor"].asInt64());
  EXPECT_EQ("/db.corrupt-x", v["database_recovered"]["moved_to"].asString());
  EXPECT_EQ("2023-11-14T22:13:20.000Z", v["database_recovered"]["at"].asString());
  EXPECT_EQ("file is not a database", v["database_recovered"]["reason"].asString());
  EXPECT_EQ(1u, service_.statusReads);
}

TEST_F(RestRoutes, StatusOfAnExpiredTokenHasNoValidUntil) {
  service_.status.enabled = true;
  service_.status.token.validNow = false;
  service_.status.token.lastError = "HTTP 401";
  const Json::Value v = ExpectJson(Call("GET", "/status"), 200);
  EXPECT_FALSE(v["token"]["valid"].asBool());
  EXPECT_TRUE(v["token"]["valid_until"].isNull());
  EXPECT_TRUE(v["token"]["issued_at"].isNull());
  EXPECT_EQ("HTTP 401", v["token"]["last_error"].asString());
  EXPECT_TRUE(v["totals"]["last_success"].isNull());
  EXPECT_TRUE(v["database_recovered"].isNull());
}

TEST(RestRoutesDisabled, OnlyStatusAndTheAppAnswerAndEverythingElseIs409) {
  RestApi::Resources resources{{"WebApp/index.html", "<html></html>"}};
  const RestApi api(nullptr, resources);
  auto call = [&](const char* method, const std::string& path) {
    RestRequest request;
    request.method = method;
    request.path = path;
    request.contentType = kJson;
    return api.Handle(request);
  };
  const RestResponse status = call("GET", "/status");
  EXPECT_EQ(200, status.status);
  const Json::Value v = ParseJson(status.body);
  EXPECT_EQ(CLOUD_INGEST_VERSION, v["version"].asString());
  EXPECT_FALSE(v["enabled"].asBool());
  EXPECT_EQ(2u, v.size()) << status.body;
  EXPECT_EQ(200, call("GET", "/app").status);
  for (const Route& route : EveryRoute()) {
    if (route.path == "/status" || route.path.rfind("/app", 0) == 0) continue;
    SCOPED_TRACE(route.path);
    const RestResponse response = call(route.method, route.path);
    EXPECT_EQ(409, response.status) << response.body;
    EXPECT_NE(std::string::npos, ParseJson(response.body)["error"].asString().find("disabled"));
  }
}

TEST_F(RestRoutes, EveryRouteRefusesAnotherMethodWith405NamingTheAllowedOne) {
  for (const Route& route : EveryRoute()) {
    for (const char* method : {"GET", "POST", "PUT", "DELETE"}) {
      if (std::string(method) == route.method) continue;
      SCOPED_TRACE(std::string(method) + " " + route.path);
      const RestResponse response = Call(method, route.path);
      const Json::Value error = ExpectError(response, 405);
      EXPECT_EQ(std::string("Allow: ") + route.method, error["details"].asString());
      ASSERT_EQ(1u, response.headers.size());
      EXPECT_EQ("Allow", response.headers[0].first);
      EXPECT_EQ(route.method, response.headers[0].second);
    }
  }
  EXPECT_EQ(0u, service_.Calls());
  EXPECT_EQ(0u, service_.statusReads);
}

TEST_F(RestRoutes, EveryPostRouteRefusesABodyNotDeclaredJsonWith415) {
  for (const Route& route : EveryRoute()) {
    if (std::string(route.method) != "POST") continue;
    for (const char* type : {"", "text/plain", "application/x-www-form-urlencoded"}) {
      SCOPED_TRACE(route.path + " " + type);
      const Json::Value error = ExpectError(Call("POST", route.path, "{}", type), 415);
      EXPECT_EQ(*type ? std::string("Content-Type: ") + type : "no Content-Type",
                error["details"].asString());
    }
  }
  EXPECT_EQ(0u, service_.Calls());
}

TEST_F(RestRoutes, UnknownRoutesAndOverlongPathsAreRefused) {
  for (const char* path : {"/nope", "/studies/NOT-HEX", "/studies/abc/retry", "/orders/x"}) {
    SCOPED_TRACE(path);
    const Json::Value error = ExpectError(Call("GET", path), 404);
    EXPECT_EQ(std::string("no such route: /cloud-ingest") + path, error["error"].asString());
  }
  const Json::Value error = ExpectError(Call("GET", "/studies/" + std::string(300, 'a')), 400);
  EXPECT_EQ("path", error["details"]["parameter"].asString());
  EXPECT_EQ(256u, error["details"]["max_length"].asUInt());
  EXPECT_EQ(0u, service_.Calls());
}

TEST_F(RestRoutes, AnUnexpectedFailureIs500WithItsMessage) {
  service_.listError = "database is locked";
  const Json::Value error = ExpectError(Call("GET", "/studies"), 500);
  EXPECT_EQ("internal error", error["error"].asString());
  EXPECT_EQ("database is locked", error["details"].asString());
}

TEST_F(RestRoutes, AppServesTheEmbeddedFilesWithTheirTypes) {
  const RestResponse index = Call("GET", "/app");
  EXPECT_EQ(200, index.status);
  EXPECT_EQ("<html></html>", index.body);
  EXPECT_EQ("text/html; charset=utf-8", index.contentType);
  EXPECT_EQ(200, Call("GET", "/app/").status);
  const RestResponse script = Call("GET", "/app/app.js");
  EXPECT_EQ("application/javascript; charset=utf-8", script.contentType);
  bool nosniff = false;
  for (const auto& [name, value] : script.headers) {
    nosniff = nosniff || (name == "X-Content-Type-Options" && value == "nosniff");
  }
  EXPECT_TRUE(nosniff);
  EXPECT_EQ("no such file: missing.css",
            ExpectError(Call("GET", "/app/missing.css"), 404)["error"].asString());
}

TEST_F(RestRoutes, ListStudiesPassesTheFiltersAndRendersTheRecords) {
  service_.listed = {Record("a", StudyState::Queued), Record("b", StudyState::Sent)};
  const Json::Value v = ExpectJson(
      Call("GET", "/studies", {}, {},
           {{"state", "queued"}, {"limit", "5000"}, {"offset", "10"}, {"since", "1700000000"}}),
      200);
  ASSERT_EQ(1u, service_.queries.size());
  const StudyQuery& q = service_.queries[0];
  EXPECT_EQ(StudyState::Queued, q.state);
  EXPECT_EQ(1000u, q.limit);  // capped
  EXPECT_EQ(10u, q.offset);
  EXPECT_EQ(kT0, q.since);
  ASSERT_EQ(2u, v["studies"].size());
  EXPECT_EQ("a", v["studies"][0]["orthanc_id"].asString());
  EXPECT_EQ("queued", v["studies"][0]["state"].asString());
  EXPECT_EQ("2023-11-14T22:13:20.000Z", v["studies"][0]["next_attempt_at"].asString());
  EXPECT_TRUE(v["studies"][1]["next_attempt_at"].isNull());  // only while queued
  EXPECT_TRUE(v["studies"][1]["order_id"].isNull());
  EXPECT_EQ(1000u, v["limit"].asUInt());
  EXPECT_EQ(10u, v["offset"].asUInt());

  ExpectJson(Call("GET", "/studies"), 200);
  EXPECT_FALSE(service_.queries[1].state.has_value());
  EXPECT_EQ(100u, service_.queries[1].limit);
  EXPECT_EQ(0u, service_.queries[1].offset);
  EXPECT_EQ(0, service_.queries[1].since);
}

TEST_F(RestRoutes, ListStudiesRefusesBadFiltersWith400) {
  const std::map<std::string, std::string> bad[] = {
      {{"state", "done"}}, {{"limit", "-1"}}, {{"offset", "ten"}}, {{"since", "yesterday"}}};
  for (const auto& query : bad) {
    SCOPED_TRACE(query.begin()->first);
    const Json::Value error = ExpectError(Call("GET", "/studies", {}, {}, query), 400);
    EXPECT_NE(std::string::npos, error["error"].asString().find(query.begin()->first));
  }
  EXPECT_TRUE(service_.queries.empty());
}

TEST_F(RestRoutes, GetStudyRendersItsHistoryOr404) {
  StudyDetails details{Record(kStudy, StudyState::Sent), {}};
  details.record.orderId = kOrder;
  details.history.push_back({kT0, 1, "started", ""});
  details.history.push_back({kT0 + 1, 1, "sent", "2 instances"});
  service_.studies[kStudy] = details;
  const Json::Value v = ExpectJson(Call("GET", std::string("/studies/") + kStudy), 200);
  EXPECT_EQ(kStudy, v["orthanc_id"].asString());
  EXPECT_EQ(kOrder, v["order_id"].asString());
  ASSERT_EQ(2u, v["history"].size());
  EXPECT_EQ("sent", v["history"][1]["event"].asString());
  EXPECT_EQ("2 instances", v["history"][1]["detail"].asString());
  EXPECT_EQ("2023-11-14T22:13:21.000Z", v["history"][1]["time"].asString());
  EXPECT_EQ(1u, v["history"][1]["attempt"].asUInt());

  const Json::Value error = ExpectError(Call("GET", "/studies/0123"), 404);
  EXPECT_EQ("study 0123 is not tracked by the plugin", error["error"].asString());
}

TEST_F(RestRoutes, SendMayAskForAutoMode) {
  service_.inOrthanc = {kStudy};
  ExpectJson(Call("POST", std::string("/studies/") + kStudy + "/send", R"({"mode": "Auto"})"), 202);
  ASSERT_EQ(1u, service_.sends.size());
  EXPECT_EQ("Auto", service_.sends[0].mode);
}

TEST_F(RestRoutes, SendQueuesWith202ForTheCallingUser) {
  service_.inOrthanc = {kStudy};
  const Json::Value v =
      ExpectJson(Call("POST", std::string("/studies/") + kStudy + "/send",
                      R"({"mode": "Nifti", "metadata": {"site": "north", "n": 1}})"),
                 202);
  EXPECT_EQ(kStudy, v["orthanc_id"].asString());
  EXPECT_EQ("Nifti", v["mode"].asString());
  ASSERT_EQ(1u, service_.sends.size());
  const EnqueueRequest& sent = service_.sends[0];
  EXPECT_EQ(kStudy, sent.orthancId);
  EXPECT_EQ("admin", sent.requestedBy);
  EXPECT_EQ("Nifti", sent.mode);
  EXPECT_EQ(R"({"n":1,"site":"north"})", sent.extraMetadata);

  ExpectJson(Call("POST", std::string("/studies/") + kStudy + "/send", ""), 202);
  EXPECT_EQ("", service_.sends[1].mode);
  EXPECT_EQ("", service_.sends[1].extraMetadata);
}

TEST_F(RestRoutes, SendRespectsSendWindowsOnlyWhenTheBodyAsks) {
  service_.inOrthanc = {kStudy};
  const std::string route = std::string("/studies/") + kStudy + "/send";
  EXPECT_TRUE(
      ExpectJson(Call("POST", route, R"({"respect_windows": true})"), 202)["respect_windows"]
          .asBool());
  EXPECT_FALSE(
      ExpectJson(Call("POST", route, R"({"respect_windows": false})"), 202)["respect_windows"]
          .asBool());
  EXPECT_FALSE(ExpectJson(Call("POST", route, "{}"), 202)["respect_windows"].asBool());
  ASSERT_EQ(3u, service_.sends.size());
  EXPECT_TRUE(service_.sends[0].respectWindows);
  EXPECT_FALSE(service_.sends[1].respectWindows);
  EXPECT_FALSE(service_.sends[2].respectWindows);
  ExpectError(Call("POST", route, R"({"respect_windows": "yes"})"), 400);
  EXPECT_EQ(3u, service_.sends.size());
}

TEST_F(RestRoutes, SendOfAStudyOrthancDoesNotHaveIs404) {
  const Json::Value error = ExpectError(Call("POST", "/studies/0abc/send", "{}"), 404);
  EXPECT_EQ("no study 0abc in Orthanc", error["error"].asString());
}

TEST_F(RestRoutes, SendRefusesABadBodyWith400BeforeReachingTheService) {
  service_.inOrthanc = {kStudy};
  for (const char* body :
       {R"({"priority": 1})", R"({"metadata": []})", R"({"metadata": {"study_instance_uid": 3}})",
        R"({"mode": "Dicomweb"})", R"({"mode": 1})", "[1]", "{", R"({"a":1}{})"}) {
    SCOPED_TRACE(body);
    ExpectError(Call("POST", std::string("/studies/") + kStudy + "/send", body), 400);
  }
  EXPECT_TRUE(service_.sends.empty());
}

TEST_F(RestRoutes, CancelAnswersTheCancelledRecord409WhenFinishedAnd404WhenUnknown) {
  service_.studies["0aaa"] = {Record("0aaa", StudyState::Sending), {}};
  service_.studies["0bbb"] = {Record("0bbb", StudyState::Sent), {}};
  const Json::Value v = ExpectJson(Call("POST", "/studies/0aaa/cancel"), 200);
  EXPECT_EQ("cancelled", v["state"].asString());

  const Json::Value finished = ExpectError(Call("POST", "/studies/0bbb/cancel"), 409);
  EXPECT_EQ("study 0bbb is sent; only queued or sending studies can be cancelled",
            finished["error"].asString());
  const Json::Value unknown = ExpectError(Call("POST", "/studies/0ccc/cancel"), 404);
  EXPECT_EQ("study 0ccc is not tracked by the plugin", unknown["error"].asString());
  EXPECT_EQ((std::vector<std::string>{"0aaa", "0bbb", "0ccc"}), service_.cancels);
}

TEST_F(RestRoutes, ACancelNamesWhoAskedForItAndHow) {
  service_.studies["0aaa"] = {Record("0aaa", StudyState::Sending), {}};
  ExpectJson(Call("POST", "/studies/0aaa/cancel"), 200);
  ASSERT_EQ(1u, service_.cancelRequests.size());
  EXPECT_EQ("admin", service_.cancelRequests[0].user);
  EXPECT_EQ("POST /cloud-ingest/studies/0aaa/cancel", service_.cancelRequests[0].via);
}

TEST_F(RestRoutes, OrderMetadataReachesTheServiceWithTheUser) {
  const std::string path = std::string("/orders/") + kOrder + "/metadata";
  const Json::Value v = ExpectJson(Call("POST", path, R"({"report": "ready"})"), 200);
  EXPECT_EQ(kOrder, v["order_id"].asString());
  EXPECT_EQ("metadata added", v["status"].asString());
  ASSERT_EQ(1u, service_.metadata.size());
  EXPECT_EQ(kOrder, service_.metadata[0].orderId);
  EXPECT_EQ("ready", service_.metadata[0].body["report"].asString());
  EXPECT_EQ("admin", service_.metadata[0].user);
}

TEST_F(RestRoutes, OrderMetadataRefusesABadOrderIdOrBodyWith400) {
  ExpectError(Call("POST", "/orders/not-a-uuid/metadata", "{}"), 400);
  ExpectError(Call("POST", std::string("/orders/") + kOrder + "/metadata", "[]"), 400);
  ExpectError(Call("POST", std::string("/orders/") + kOrder + "/metadata", R"({"a":1,"a":2})"),
              400);
  EXPECT_TRUE(service_.metadata.empty());
}

TEST_F(RestRoutes, OrderMetadataRefusedByTheCloudIs502WithItsStatus) {
  service_.metadataRefusal = IngestError(FailureKind::Permanent, "HTTP 404: no such order", 404);
  const Json::Value error =
      ExpectError(Call("POST", std::string("/orders/") + kOrder + "/metadata", "{}"), 502);
  EXPECT_EQ("the ingestion service refused the metadata: HTTP 404: no such order",
            error["error"].asString());
  EXPECT_EQ(404, error["details"]["http_status"].asInt());
}

TEST_F(RestRoutes, TestConnectionSaysWhatWorked) {
  service_.connection.url = "https://ingest.example.com";
  service_.connection.tokenUrl = "https://auth.example.com/token";
  service_.connection.httpsVerifyPeers = true;
  service_.connection.tokenObtained = true;
  service_.connection.validUntil = kT0;
  const Json::Value v = ExpectJson(Call("POST", "/test-connection"), 200);
  EXPECT_TRUE(v["ok"].asBool());
  EXPECT_EQ("obtained", v["token"].asString());
  EXPECT_EQ("2023-11-14T22:13:20.000Z", v["valid_until"].asString());
  EXPECT_EQ("https://ingest.example.com", v["url"].asString());
  EXPECT_EQ("https://auth.example.com/token", v["token_url"].asString());
  EXPECT_TRUE(v["https_verify_peers"].asBool());
  EXPECT_FALSE(v.isMember("error"));
  EXPECT_EQ(1u, service_.connectionTests);
}

TEST_F(RestRoutes, TestConnectionSaysWhatFailedStillWith200) {
  service_.connection.httpsVerifyPeers = false;
  service_.connection.error = "token endpoint: HTTP 401";
  const Json::Value v = ExpectJson(Call("POST", "/test-connection"), 200);
  EXPECT_FALSE(v["ok"].asBool());
  EXPECT_EQ("failed", v["token"].asString());
  EXPECT_EQ("token endpoint: HTTP 401", v["error"].asString());
  EXPECT_FALSE(v["https_verify_peers"].asBool());
  EXPECT_FALSE(v.isMember("valid_until"));
}

TEST_F(RestRoutes, PauseAndResumeReachTheServiceForTheCallingUser) {
  service_.status.enabled = true;
  service_.stoppedByPause = 2;
  Json::Value v = ExpectJson(Call("POST", "/queue/pause", ""), 200);
  EXPECT_TRUE(v["paused"].asBool());
  EXPECT_EQ(2u, v["stopped"].asUInt());
  v = ExpectJson(Call("POST", "/queue/pause", R"({"cancel_running": true})"), 200);
  ASSERT_EQ(2u, service_.pauses.size());
  EXPECT_EQ(RunningSends::Finish, service_.pauses[0].running);
  EXPECT_EQ(RunningSends::Stop, service_.pauses[1].running);
  EXPECT_EQ("admin", service_.pauses[1].user);
  EXPECT_TRUE(ParseJson(Call("GET", "/status").body)["paused"].asBool());

  v = ExpectJson(Call("POST", "/queue/resume", "{}"), 200);
  EXPECT_FALSE(v["paused"].asBool());
  EXPECT_EQ((std::vector<std::string>{"admin"}), service_.resumes);
  EXPECT_FALSE(ParseJson(Call("GET", "/status").body)["paused"].asBool());
}

TEST_F(RestRoutes, PauseAndResumeRefuseABadBodyWith400) {
  for (const char* body : {R"({"cancel_running": "yes"})", R"({"cancel": true})", "[true]"}) {
    SCOPED_TRACE(body);
    ExpectError(Call("POST", "/queue/pause", body), 400);
  }
  ExpectError(Call("POST", "/queue/resume", R"({"now": true})"), 400);
  EXPECT_EQ(0u, service_.Calls());
}

TEST_F(RestRoutes, BulkSendPassesTheFiltersAndAnswers202WithTheQueuedStudies) {
  service_.listed = {Record("0aaa", StudyState::Failed), Record("0bbb", StudyState::Failed)};
  const Json::Value v = ExpectJson(
      Call("POST", "/studies/send",
           R"({"state": "failed", "since": "2023-11-14T22:13:20Z", "modality": "CT", "limit": 5})"),
      202);
  EXPECT_EQ(2u, v["queued"].asUInt());
  ASSERT_EQ(2u, v["studies"].size());
  EXPECT_EQ("0aaa", v["studies"][0]["orthanc_id"].asString());
  EXPECT_EQ("queued", v["studies"][0]["state"].asString());
  ASSERT_EQ(1u, service_.bulkSends.size());
  const BulkSendQuery& q = service_.bulkSends[0];
  EXPECT_EQ(StudyState::Failed, q.state);
  EXPECT_DOUBLE_EQ(kT0, q.since);
  EXPECT_EQ("CT", q.modality);
  EXPECT_EQ(5u, q.limit);
  EXPECT_EQ("admin", q.requestedBy);

  ExpectJson(Call("POST", "/studies/send", R"({"since": 1700000000})"), 202);
  EXPECT_FALSE(service_.bulkSends[1].state.has_value());
  EXPECT_DOUBLE_EQ(kT0, service_.bulkSends[1].since);
  EXPECT_EQ(100u, service_.bulkSends[1].limit);
}

TEST_F(RestRoutes, BulkSendNeedsAFilterAndRefusesBadValuesWith400) {
  for (const char* body :
       {"", "{}", R"({"limit": 3})", R"({"state": "lost"})", R"({"state": 1})",
        R"({"since": "yesterday"})", R"({"since": -1})", R"({"modality": ""})",
        R"({"modality": 3})", R"({"state": "failed", "limit": 0})",
        R"({"state": "failed", "limit": 1001})", R"({"state": "failed", "limit": 1.5})",
        R"({"state": "failed", "user": "x"})"}) {
    SCOPED_TRACE(body);
    ExpectError(Call("POST", "/studies/send", body), 400);
  }
  EXPECT_EQ(0u, service_.Calls());
}

TEST_F(RestRoutes, PreviewRendersTheDecisionsOr404) {
  StudyPreview p;
  p.orthancId = kStudy;
  p.studyInstanceUid = "1.2.3";
  p.filtersMatch = false;
  p.modalities = {"CT"};
  p.window = {true, "no SendWindows configured"};
  p.mode = "Zip";
  p.orderMetadata["study_instance_uid"] = "1.2.3";
  p.series = 2;
  p.instances = 7;
  p.bytes = 7000;
  p.blockedBy = {"Filters"};
  service_.previewed[kStudy] = p;
  const Json::Value v =
      ExpectJson(Call("GET", std::string("/studies/") + kStudy + "/preview"), 200);
  EXPECT_FALSE(v["would_send"].asBool());
  EXPECT_EQ("Filters", v["blocked_by"][0].asString());
  EXPECT_FALSE(v["filters"]["match"].asBool());
  EXPECT_EQ("CT", v["filters"]["modalities"][0].asString());
  EXPECT_TRUE(v["send_window"]["open"].asBool());
  EXPECT_FALSE(v["paused"].asBool());
  EXPECT_EQ("Zip", v["mode"].asString());
  EXPECT_EQ("1.2.3", v["order_metadata"]["study_instance_uid"].asString());
  EXPECT_TRUE(v["order_error"].isNull());
  EXPECT_EQ(7u, v["instances"].asUInt());
  EXPECT_EQ(7000u, v["bytes"].asUInt());
  EXPECT_EQ(2u, v["series"].asUInt());

  const Json::Value error = ExpectError(Call("GET", "/studies/0abc/preview"), 404);
  EXPECT_EQ("no study 0abc in Orthanc", error["error"].asString());
}
