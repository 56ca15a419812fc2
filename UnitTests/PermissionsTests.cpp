// Roles on the /cloud-ingest/ routes, GET /me, refusals (403 + audit),
// receipts and audit verification over a fake service.
#include <gtest/gtest.h>
#include <json/json.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "Core/Audit/Receipt.h"
#include "Core/Hashes.h"
#include "Core/JsonText.h"
#include "Fakes/FakeIngestService.h"
#include "Rest/Permissions.h"
#include "Rest/RestApi.h"

namespace CloudIngest {
namespace {

using Testing::FakeIngestService;

// An Orthanc study id and an order id (UUID v4) as the routes accept them.
constexpr char kStudy[] = "0123abcd-0123abcd-0123abcd-0123abcd-0123abcd";
constexpr char kOrder[] = "0b6f3c1e-9a4d-4c2b-8f7e-000000000001";

Json::Value Parse(const std::string& text) {
  static const Json::CharReaderBuilder builder;
  Json::Value value;
  std::string errors;
  EXPECT_TRUE(ParseJsonText(builder, text, value, errors)) << errors << ": " << text;
  return value;
}

PermissionSettings Roles() {
  PermissionSettings p;
  p.configured = true;
  p.users = {{"vera", Role::Viewer},
             {"otto", Role::Operator},
             {"ada", Role::Admin},
             {"nobody", Role::None}};
  p.defaultRole = Role::None;
  return p;
}

class PermissionsRest : public ::testing::Test {
 protected:
  PermissionsRest() : api_(&service_, resources_, Roles()) {
    resources_["WebApp/index.html"] = "<html></html>";
    service_.inOrthanc.push_back(kStudy);
    StudyDetails details;
    details.record.orthancId = kStudy;
    details.record.state = StudyState::Queued;
    service_.studies[kStudy] = details;
  }
  RestResponse Call(const std::string& user, const std::string& method, const std::string& path) {
    RestRequest request;
    request.method = method;
    request.path = path;
    request.user = user;
    request.contentType = method == "POST" ? "application/json" : "";
    request.body = method == "POST" ? "{}" : "";
    return api_.Handle(request);
  }

  RestApi::Resources resources_;
  FakeIngestService service_;
  RestApi api_;
};

struct RouteCase {
  const char* method;
  std::string path;
  Role required;
};

std::vector<RouteCase> Routes() {
  const std::string study = std::string("/studies/") + kStudy;
  return {{"GET", "/status", Role::Viewer},
          {"GET", "/studies", Role::Viewer},
          {"GET", study, Role::Viewer},
          {"GET", study + "/receipt", Role::Viewer},
          {"GET", "/me", Role::Viewer},
          {"GET", "/app/index.html", Role::Viewer},
          {"POST", study + "/send", Role::Operator},
          {"POST", study + "/cancel", Role::Operator},
          {"POST", std::string("/orders/") + kOrder + "/metadata", Role::Operator},
          {"POST", "/studies/send", Role::Operator},
          {"POST", "/queue/pause", Role::Operator},
          {"POST", "/test-connection", Role::Admin},
          {"GET", "/audit/verify", Role::Admin},
          {"POST", "/some-future-route", Role::Admin},
          {"DELETE", study, Role::Admin}};
}

TEST(Permissions, RolesOfUsers) {
  const PermissionSettings p = Roles();
  EXPECT_EQ(Role::Viewer, RoleOf(p, "vera"));
  EXPECT_EQ(Role::None, RoleOf(p, "stranger"));
  EXPECT_EQ(Role::None, RoleOf(p, ""));
  PermissionSettings open;
  EXPECT_EQ(Role::Admin, RoleOf(open, ""));
  EXPECT_EQ(Role::Admin, RoleOf(open, "anyone"));
  PermissionSettings viewerDefault = Roles();
  viewerDefault.defaultRole = Role::Viewer;
  EXPECT_EQ(Role::Viewer, RoleOf(viewerDefault, "stranger"));
  EXPECT_EQ(Role::None, RoleOf(viewerDefault, "nobody"));
}

TEST(Permissions, EveryRouteNeedsItsRole) {
  for (const auto& route : Routes()) {
    EXPECT_EQ(route.required, RequiredRole(route.method, route.path))
        << route.method << " " << route.path;
  }
}

TEST(Permissions, CapabilitiesFollowTheRole) {
  EXPECT_EQ(0u, Capabilities(Role::None).size());
  EXPECT_EQ("[\"view\",\"send\"]", CanonicalJson(Capabilities(Role::Operator)));
  EXPECT_EQ("[\"view\",\"send\",\"admin\"]", CanonicalJson(Capabilities(Role::Admin)));
}

TEST_F(PermissionsRest, EachRoleIsRefusedExactlyTheRoutesAboveIt) {
  const std::vector<std::pair<std::string, Role>> users = {{"nobody", Role::None},
                                                           {"stranger", Role::None},
                                                           {"vera", Role::Viewer},
                                                           {"otto", Role::Operator},
                                                           {"ada", Role::Admin}};
  for (const auto& [user, role] : users) {
    for (const auto& route : Routes()) {
      const size_t denialsBefore = service_.denials.size();
      const RestResponse r = Call(user, route.method, route.path);
      if (role < route.required) {
        EXPECT_EQ(403, r.status) << user << " " << route.method << " " << route.path;
        const Json::Value body = Parse(r.body);
        EXPECT_TRUE(body["error"].isString());
        EXPECT_EQ(ToString(route.required), body["details"]["required"].asString());
        ASSERT_EQ(denialsBefore + 1, service_.denials.size());
        EXPECT_EQ(user, service_.denials.back().user);
        EXPECT_EQ(route.method, service_.denials.back().method);
        EXPECT_EQ("/cloud-ingest" + route.path, service_.denials.back().route);
      } else {
        EXPECT_NE(403, r.status) << user << " " << route.method << " " << route.path << " "
                                 << r.body;
        EXPECT_EQ(denialsBefore, service_.denials.size());
      }
    }
  }
}

TEST_F(PermissionsRest, RefusedRequestsNeverReachTheService) {
  const size_t before = service_.Calls();
  Call("vera", "POST", std::string("/studies/") + kStudy + "/send");
  Call("otto", "GET", "/audit/verify");
  EXPECT_EQ(before, service_.Calls());
  EXPECT_TRUE(service_.sends.empty());
}

// A /studies/<id>/send over 230 characters once overflowed the stack of Orthanc's HTTP
// thread: RequiredRole ran std::regex over the whole path, which recurses once per character.
// Each path with the role a POST to it needs: operator for one id segment, else admin.
std::vector<std::pair<std::string, Role>> LongPaths() {
  std::vector<std::pair<std::string, Role>> paths;
  for (const size_t length : {size_t{257}, size_t{64 * 1024}, size_t{100 * 1024}}) {
    std::string mixed;
    while (mixed.size() < length) mixed += "a/0-";
    for (const std::string& id : {std::string(length, 'a'), std::string(length, '/'), mixed}) {
      const Role role = id.find('/') == std::string::npos ? Role::Operator : Role::Admin;
      paths.emplace_back("/studies/" + id + "/send", role);
      paths.emplace_back("/studies/" + id + "/cancel", role);
      paths.emplace_back("/orders/" + id + "/metadata", role);
    }
  }
  return paths;
}

TEST(Permissions, PathsOfAnyLengthGetARoleWithoutExhaustingTheStack) {
  for (const auto& [path, role] : LongPaths()) {
    SCOPED_TRACE(std::to_string(path.size()) + " characters: " + path.substr(0, 40));
    EXPECT_EQ(role, RequiredRole("POST", path));
    EXPECT_EQ(Role::Viewer, RequiredRole("GET", path));
  }
}

TEST_F(PermissionsRest, OverlongPathsAre400BeforeAnyRoleIsChecked) {
  for (const char* user : {"otto", "ada", "nobody", "stranger"}) {
    for (const auto& [path, role] : LongPaths()) {
      SCOPED_TRACE(std::string(user) + " " + std::to_string(path.size()) + " " +
                   path.substr(0, 40));
      const RestResponse r = Call(user, "POST", path);
      ASSERT_EQ(400, r.status);
      const Json::Value error = Parse(r.body);
      EXPECT_EQ("path", error["details"]["parameter"].asString());
      EXPECT_EQ(path.size(), error["details"]["length"].asUInt64());
      EXPECT_EQ(256u, error["details"]["max_length"].asUInt());
    }
  }
  // Neither the service nor the audit log saw them (an access_denied record would
  // carry the whole path).
  EXPECT_EQ(0u, service_.Calls());
  EXPECT_TRUE(service_.denials.empty());
}

TEST_F(PermissionsRest, MeSaysWhoAndWhatTheyMayDo) {
  const Json::Value me = Parse(Call("otto", "GET", "/me").body);
  EXPECT_EQ("otto", me["user"].asString());
  EXPECT_EQ("operator", me["role"].asString());
  EXPECT_EQ("[\"view\",\"send\"]", CanonicalJson(me["can"]));
  EXPECT_EQ(403, Call("nobody", "GET", "/me").status);
}

TEST(PermissionsOpen, WithoutPermissionsEveryoneIsAdmin) {
  FakeIngestService service;
  RestApi::Resources resources;
  RestApi api(&service, resources);
  RestRequest request;
  request.method = "GET";
  request.path = "/me";
  const Json::Value me = Parse(api.Handle(request).body);
  EXPECT_EQ("admin", me["role"].asString());
  EXPECT_EQ(false, me["permissions_configured"].asBool());
  request.path = "/audit/verify";
  EXPECT_EQ(200, api.Handle(request).status);
  EXPECT_TRUE(service.denials.empty());
}

TEST_F(PermissionsRest, ReceiptIs404UntilSentThenTheServicesAnswer) {
  const std::string path = std::string("/studies/") + kStudy + "/receipt";
  EXPECT_EQ(404, Call("vera", "GET", path).status);
  Json::Value receipt;
  receipt["order_id"] = kOrder;
  service_.receipts[kStudy] = receipt;
  const RestResponse r = Call("vera", "GET", path);
  EXPECT_EQ(200, r.status);
  EXPECT_EQ(kOrder, Parse(r.body)["order_id"].asString());
}

TEST_F(PermissionsRest, VerifyAnswersTheServicesFinding) {
  service_.verification.ok = false;
  service_.verification.records = 7;
  service_.verification.firstBadSeq = 4;
  service_.verification.reason = "record 4 has a wrong hmac";
  const Json::Value v = Parse(Call("ada", "GET", "/audit/verify").body);
  EXPECT_FALSE(v["ok"].asBool());
  EXPECT_EQ(7u, v["records"].asUInt());
  EXPECT_EQ(4u, v["first_bad_seq"].asUInt());
  EXPECT_EQ("record 4 has a wrong hmac", v["reason"].asString());
  service_.verification = AuditVerification();
  EXPECT_TRUE(Parse(Call("ada", "GET", "/audit/verify").body)["first_bad_seq"].isNull());
}

TEST(Receipts, SignedOverTheCanonicalTextWithoutHmac) {
  ReceiptHeader header{"s1", "1.2.3", kOrder, "node-a:8042", "Instances", 1.7e9, 1.7e9 + 2};
  const Json::Value receipt =
      BuildReceipt(header, {{"1.2.3.4", "1.2.3.4.dcm", 10, "aa", "bb", "bb"}});
  EXPECT_EQ("1.2.3.4", receipt["files"][0]["sop_instance_uid"].asString());
  EXPECT_EQ("bb", receipt["files"][0]["etag"].asString());
  EXPECT_EQ(10u, receipt["bytes"].asUInt());
  EXPECT_EQ("2023-11-14T22:13:20.000Z", receipt["started_at"].asString());
  const Json::Value signedReceipt = SignReceipt(receipt, "k");
  EXPECT_EQ(HmacSha256Hex("k", CanonicalJson(receipt)), signedReceipt["hmac"].asString());
  // Signing again (e.g. with another key) replaces the hmac rather than covering it.
  EXPECT_EQ(HmacSha256Hex("k2", CanonicalJson(receipt)),
            SignReceipt(signedReceipt, "k2")["hmac"].asString());
  EXPECT_FALSE(SignReceipt(receipt, "").isMember("hmac"));
}

TEST(Receipts, FilesAreListedInNameOrder) {
  ReceiptCollector collector;
  collector.Add({"2", "b.dcm", 1, "", "", ""});
  collector.Add({"1", "a.dcm", 1, "", "", ""});
  const auto files = collector.Files();
  ASSERT_EQ(2u, files.size());
  EXPECT_EQ("a.dcm", files[0].filename);
}

}  // namespace
}  // namespace CloudIngest
