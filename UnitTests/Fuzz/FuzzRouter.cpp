// libFuzzer target for the /cloud-ingest/ router: method, path (up to 64 KB),
// query, Content-Type, user and body from the input, through
// RefuseBeforeRouting, RequiredRole and RestApi::Handle over a fake service
// with Permissions configured. Handle must answer every request (never throw,
// never crash, never exhaust the stack) with a status it documents, and a JSON
// error body for every refusal.
//
// The input is lines, so that the seeds read as requests:
//   POST                  method
//   otto                  user
//   application/json      Content-Type
//   /studies/             path: a prefix,
//   a                     a piece,
//   60000                 repeated this many times (stopping at 64 KB),
//   /send                 and a suffix
//   since=1.5&limit=3     query
//   {"mode":"Zip"}        the rest is the body
// so that a short input (-max_len 4096) makes a path of any length up to 64 KB.
// Before fuzzing, route-shaped paths of every length up to 64 KB are tried once.
#include <json/json.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>

#include "Core/JsonText.h"
#include "Fakes/FakeIngestService.h"
#include "Rest/Permissions.h"
#include "Rest/RestApi.h"
#include "Rest/RestInput.h"

namespace CloudIngest {
namespace {

constexpr size_t kMaxFuzzedPath = 64 * 1024;
constexpr char kStudy[] = "0123abcd-0123abcd-0123abcd-0123abcd-0123abcd";

PermissionSettings Roles() {
  PermissionSettings p;
  p.configured = true;
  p.users = {{"vera", Role::Viewer}, {"otto", Role::Operator}, {"ada", Role::Admin}};
  p.defaultRole = Role::None;
  return p;
}

// Aborts (a finding) naming the broken promise and the request.
void Check(bool condition, const char* promise, const RestRequest& request) {
  if (condition) return;
  std::fprintf(stderr, "broken: %s; %s by '%s', %zu-character path %.80s\n", promise,
               request.method.c_str(), request.user.c_str(), request.path.size(),
               request.path.c_str());
  std::abort();
}

// One request through everything a request meets in the plugin, with the checks.
void Serve(const RestRequest& request) {
  // The path stands for the whole URI here: a client picks both.
  Check(!RefuseBeforeRouting(request.method, request.path, "application/json"),
        "JSON is never refused before routing", request);
  RefuseBeforeRouting(request.method, request.path, request.contentType);
  const Role required = RequiredRole(request.method, request.path);

  // A fresh service each time: what it records must not pile up over a run.
  Testing::FakeIngestService service;
  service.inOrthanc.push_back(kStudy);
  service.studies[kStudy].record.orthancId = kStudy;
  const RestApi::Resources resources = {{"WebApp/index.html", "<html></html>"}};
  const RestApi api(&service, resources, Roles());
  const RestResponse response = api.Handle(request);

  static const std::set<int> kStatuses = {200, 202, 400, 403, 404, 405, 409, 415};
  Check(kStatuses.count(response.status) == 1, "a documented status", request);
  if (request.path.size() > kMaxPathLength) {
    Check(response.status == 400, "400 for a path over kMaxPathLength", request);
  }
  if (response.status == 403) {
    Check(RoleOf(Roles(), request.user) < required, "403 only below the role", request);
  }
  if (response.status >= 400) {
    static const Json::CharReaderBuilder builder;
    Json::Value error;
    std::string errors;
    Check(ParseJsonText(builder, response.body, error, errors), "a JSON error body", request);
    Check(error.isObject() && error["error"].isString(), "an \"error\" message", request);
    Check(service.denials.size() == (response.status == 403 ? 1u : 0u),
          "one access_denied record per 403", request);
  }
}

const char* const kUsers[] = {"", "stranger", "vera", "otto", "ada"};

// Route-shaped paths of every length from 1 to 64 KB, each through the router once.
void EveryLength() {
  const std::pair<std::string, std::string> shapes[] = {{"/studies/", "/send"},
                                                        {"/studies/", "/cancel"},
                                                        {"/orders/", "/metadata"},
                                                        {"/studies/", ""},
                                                        {"/app/", ""}};
  std::string fills[] = {"a", "/", "a/0-"};
  for (std::string& fill : fills) {
    while (fill.size() < kMaxFuzzedPath) fill += fill;
  }
  RestRequest request;
  request.contentType = "application/json";
  request.path.reserve(2 * kMaxFuzzedPath);  // one buffer for all: ASan keeps what is freed
  for (size_t length = 1; length <= kMaxFuzzedPath; length++) {
    const auto& [head, tail] = shapes[length % 5];
    request.method = length % 2 == 0 ? "POST" : "GET";
    request.user = kUsers[length % 5];
    const size_t fillLength = length - std::min(length, head.size() + tail.size());
    request.path.assign(head).append(fills[length % 3], 0, fillLength).append(tail);
    request.path.resize(length);  // the shortest are cut short
    Serve(request);
  }
}

// The next line of `input` from `at` (the rest when no newline follows).
std::string NextLine(const std::string& input, size_t& at) {
  const size_t end = std::min(input.find('\n', at), input.size());
  const std::string line = input.substr(std::min(at, input.size()), end - std::min(at, end));
  at = end + 1;
  return line;
}

// A count from the digits that start `text`, at most `max`.
size_t Count(const std::string& text, size_t max) {
  size_t count = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') break;
    count = std::min(count * 10 + static_cast<size_t>(c - '0'), max);
  }
  return count;
}

RestRequest ReadRequest(const std::string& input) {
  size_t at = 0;
  RestRequest request;
  request.method = NextLine(input, at);
  request.user = NextLine(input, at);
  request.contentType = NextLine(input, at);
  request.path = NextLine(input, at);
  request.path.reserve(2 * kMaxFuzzedPath);
  const std::string piece = NextLine(input, at);
  const size_t repeats = Count(NextLine(input, at), kMaxFuzzedPath);
  for (size_t i = 0; i < repeats && !piece.empty() && request.path.size() < kMaxFuzzedPath; i++) {
    request.path += piece;
  }
  request.path.resize(std::min(request.path.size(), kMaxFuzzedPath));
  request.path += NextLine(input, at);
  const std::string query = NextLine(input, at);
  for (size_t begin = 0; begin < query.size();) {
    const size_t end = std::min(query.find('&', begin), query.size());
    const std::string pair = query.substr(begin, end - begin);
    const size_t equals = std::min(pair.find('='), pair.size());
    request.query[pair.substr(0, equals)] = equals < pair.size() ? pair.substr(equals + 1) : "";
    begin = end + 1;
  }
  request.body = at < input.size() ? input.substr(at) : std::string();
  return request;
}

}  // namespace
}  // namespace CloudIngest

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  CloudIngest::EveryLength();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CloudIngest::Serve(
      CloudIngest::ReadRequest(std::string(reinterpret_cast<const char*>(data), size)));
  return 0;
}
