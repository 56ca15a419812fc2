#include "Rest/RestApi.h"

#include <boost/algorithm/string.hpp>

#include <json/json.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "Core/Cloud/ApiResponses.h"
#include "Core/Cloud/IngestError.h"
#include "Core/IngestService.h"
#include "Rest/Permissions.h"
#include "Rest/RestInput.h"
#include "Rest/RestJson.h"
#include "Rest/RoutePath.h"

namespace CloudIngest {

bool RefuseBeforeRouting(const std::string& method, const std::string& uri,
                         const std::string& contentType) {
  if (method != "POST") return false;
  const std::string type = boost::algorithm::trim_copy_if(
      contentType.substr(0, contentType.find(';')), boost::algorithm::is_any_of(" \t"));
  if (!boost::algorithm::istarts_with(type, "multipart/", std::locale::classic())) return false;
  // The first path segment, as Orthanc routes it: empty and "." segments do not count.
  PathSegments segments(uri);
  std::string_view segment;
  while (segments.Next(segment)) {
    if (!segment.empty() && segment != ".") return segment == "cloud-ingest";
  }
  return false;
}

RestApi::RestApi(IngestService* service, const Resources& resources, PermissionSettings permissions)
    : service_(service), resources_(resources), permissions_(std::move(permissions)) {}

RestResponse RestApi::Handle(const RestRequest& request) const {
  try {
    // First: nothing else may walk a path of any length, nor an audit record carry it.
    RequireMaxLength("path", request.path, kMaxPathLength);
    const Role role = RoleOf(permissions_, request.user);
    const Role required = RequiredRole(request.method, request.path);
    if (role < required) return Refuse(request, role, required);
    return Route(request);
  } catch (const RestError& e) {
    RestResponse response = JsonError(e.Status(), e.what(), e.Details());
    if (e.Status() == 405 && e.Details().isString()) {
      response.headers.emplace_back("Allow", e.Details().asString().substr(7));
    }
    return response;
  } catch (const std::exception& e) {
    return JsonError(500, "internal error", Json::Value(e.what()));
  }
}

RestResponse RestApi::Route(const RestRequest& request) const {
  const std::string& path = request.path;

  if (path == "/status") {
    RequireMethod(request, "GET");
    return Status();
  }
  if (path == "/app" || path.rfind("/app/", 0) == 0) {
    RequireMethod(request, "GET");
    return App(path.size() <= 5 ? std::string() : path.substr(5));
  }
  if (path == "/me") {
    RequireMethod(request, "GET");
    return Me(request);
  }
  if (service_ == nullptr) {
    throw RestError(409, "the CloudIngest plugin is disabled (CloudIngest.Enable is false)");
  }
  if (const auto id = MatchRoute(path, "/studies/{study}/receipt")) {
    RequireMethod(request, "GET");
    return Receipt(std::string(*id));
  }
  if (path == "/audit/verify") {
    RequireMethod(request, "GET");
    return VerifyAudit();
  }
  if (path == "/studies") {
    RequireMethod(request, "GET");
    return ListStudies(request);
  }
  if (path == "/studies/send") {
    RequireMethod(request, "POST");
    return BulkSend(request);
  }
  if (path == "/queue/pause" || path == "/queue/resume") {
    RequireMethod(request, "POST");
    return path == "/queue/pause" ? PauseQueue(request) : ResumeQueue(request);
  }
  if (const auto id = MatchRoute(path, "/studies/{study}/preview")) {
    RequireMethod(request, "GET");
    return PreviewStudy(std::string(*id));
  }
  if (const auto id = MatchRoute(path, "/studies/{study}/send")) {
    RequireMethod(request, "POST");
    return SendStudy(std::string(*id), request);
  }
  if (const auto id = MatchRoute(path, "/studies/{study}/cancel")) {
    RequireMethod(request, "POST");
    return CancelStudy(std::string(*id), request);
  }
  if (const auto id = MatchRoute(path, "/studies/{study}")) {
    RequireMethod(request, "GET");
    return GetStudy(std::string(*id));
  }
  if (const auto id = MatchRoute(path, "/orders/{order}/metadata")) {
    RequireMethod(request, "POST");
    return OrderMetadata(std::string(*id), request);
  }
  if (path == "/test-connection") {
    RequireMethod(request, "POST");
    return TestConnection();
  }
  throw RestError(404, "no such route: /cloud-ingest" + path);
}

RestResponse RestApi::Status() const {
  return JsonAnswer(StatusToJson(service_ != nullptr ? service_->Status() : ServiceStatus()));
}

RestResponse RestApi::ListStudies(const RestRequest& request) const {
  StudyQuery query;
  const auto stateText = QueryValue(request.query, "state", 16);
  if (stateText && !stateText->empty()) {
    query.state = ParseStudyState(*stateText);
    if (!query.state) {
      throw RestError(400, "'state' must be one of queued, sending, sent, failed, cancelled");
    }
  }
  query.limit = ParseUnsigned(request.query, "limit", 100, 1000);
  query.offset = ParseUnsigned(request.query, "offset", 0, 1000000);
  query.since = ParseSince(request.query);
  Json::Value list(Json::arrayValue);
  for (const auto& record : service_->ListStudies(query)) list.append(StudyToJson(record));
  Json::Value v;
  v["studies"] = list;
  v["limit"] = query.limit;
  v["offset"] = query.offset;
  return JsonAnswer(v);
}

RestResponse RestApi::GetStudy(const std::string& id) const {
  const auto study = service_->FindStudy(id);
  if (!study) throw RestError(404, "study " + id + " is not tracked by the plugin");
  return JsonAnswer(StudyDetailsToJson(*study));
}

RestResponse RestApi::SendStudy(const std::string& id, const RestRequest& request) const {
  const Json::Value body = ParseBodyObject(request.body);
  for (const auto& key : body.getMemberNames()) {
    if (key != "metadata" && key != "mode" && key != "respect_windows") {
      throw RestError(400, "unknown key '" + key + "' (allowed: metadata, mode, respect_windows)");
    }
  }
  EnqueueRequest enqueue;
  enqueue.orthancId = id;
  enqueue.requestedBy = request.user;
  if (body.isMember("metadata")) {
    if (!body["metadata"].isObject()) throw RestError(400, "'metadata' must be a JSON object");
    if (body["metadata"].isMember("study_instance_uid") &&
        !body["metadata"]["study_instance_uid"].isString()) {
      throw RestError(400,
                      "'metadata.study_instance_uid' cannot be removed or changed to a non-string");
    }
    Json::StreamWriterBuilder builder;
    builder["indentation"] = "";
    builder["emitUTF8"] = true;
    enqueue.extraMetadata = Json::writeString(builder, body["metadata"]);
  }
  if (body.isMember("mode")) {
    static const std::set<std::string> kModes = {"Instances", "Zip", "Nifti", "Auto"};
    if (!body["mode"].isString() || kModes.count(body["mode"].asString()) == 0) {
      throw RestError(400, "'mode' must be \"Instances\", \"Zip\", \"Nifti\" or \"Auto\"");
    }
    enqueue.mode = body["mode"].asString();
  }
  if (body.isMember("respect_windows")) {
    if (!body["respect_windows"].isBool()) {
      throw RestError(400, "'respect_windows' must be true or false");
    }
    enqueue.respectWindows = body["respect_windows"].asBool();
  }
  const auto queued = service_->Send(enqueue);
  if (!queued) throw RestError(404, "no study " + id + " in Orthanc");
  return JsonAnswer(StudyToJson(*queued), 202);
}

RestResponse RestApi::CancelStudy(const std::string& id, const RestRequest& request) const {
  // Route hands no request here, so the record names no user (yet).
  const CancelResult result =
      service_->Cancel({id, request.user, "POST /cloud-ingest/studies/" + id + "/cancel"});
  switch (result.outcome) {
    case CancelResult::Outcome::NotTracked:
      throw RestError(404, "study " + id + " is not tracked by the plugin");
    case CancelResult::Outcome::NotCancellable:
      throw RestError(409, "study " + id + " is " + ToString(result.study.state) +
                               "; only queued or sending studies can be cancelled");
    case CancelResult::Outcome::Cancelled:
      break;
  }
  return JsonAnswer(StudyToJson(result.study));
}

RestResponse RestApi::OrderMetadata(const std::string& orderId, const RestRequest& request) const {
  if (!IsUuidV4(orderId)) throw RestError(400, "order id must be a UUID v4");
  const Json::Value body = ParseBodyObject(request.body);
  try {
    service_->AddOrderMetadata(orderId, body, request.user);
  } catch (const IngestError& e) {
    Json::Value details;
    details["http_status"] = static_cast<Json::Int64>(e.HttpStatus());
    throw RestError(502, std::string("the ingestion service refused the metadata: ") + e.what(),
                    details);
  }
  Json::Value v;
  v["order_id"] = orderId;
  v["status"] = "metadata added";
  return JsonAnswer(v);
}

RestResponse RestApi::TestConnection() const {
  return JsonAnswer(ConnectionTestToJson(service_->TestConnection()));
}

namespace {

// Only `allowed` keys in a POST body; 400 naming the first other one.
void RequireKnownKeys(const Json::Value& body, const std::vector<std::string>& allowed) {
  for (const auto& key : body.getMemberNames()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      throw RestError(400, "unknown key '" + key +
                               "' (allowed: " + boost::algorithm::join(allowed, ", ") + ")");
    }
  }
}

}  // namespace

RestResponse RestApi::PauseQueue(const RestRequest& request) const {
  const Json::Value body = ParseBodyObject(request.body);
  RequireKnownKeys(body, {"cancel_running"});
  if (body.isMember("cancel_running") && !body["cancel_running"].isBool()) {
    throw RestError(400, "'cancel_running' must be true or false");
  }
  PauseRequest pause;
  pause.user = request.user;
  pause.running =
      body.get("cancel_running", false).asBool() ? RunningSends::Stop : RunningSends::Finish;
  const unsigned stopped = service_->Pause(pause);
  Json::Value v;
  v["paused"] = true;
  v["stopped"] = stopped;
  return JsonAnswer(v);
}

RestResponse RestApi::ResumeQueue(const RestRequest& request) const {
  RequireKnownKeys(ParseBodyObject(request.body), {});
  service_->Resume(request.user);
  Json::Value v;
  v["paused"] = false;
  return JsonAnswer(v);
}

RestResponse RestApi::BulkSend(const RestRequest& request) const {
  const Json::Value body = ParseBodyObject(request.body);
  RequireKnownKeys(body, {"state", "since", "modality", "limit"});
  BulkSendQuery query;
  query.requestedBy = request.user;
  if (!body.isMember("state") && !body.isMember("since") && !body.isMember("modality")) {
    throw RestError(400, "give at least one of 'state', 'since', 'modality'");
  }
  if (body.isMember("state")) {
    const Json::Value& state = body["state"];
    query.state = state.isString() ? ParseStudyState(state.asString()) : std::nullopt;
    if (!query.state) {
      throw RestError(400, "'state' must be one of queued, sending, sent, failed, cancelled");
    }
  }
  if (body.isMember("since")) {
    const Json::Value& since = body["since"];
    if (since.isNumeric() && since.asDouble() >= 0) {
      query.since = since.asDouble();
    } else if (since.isString()) {
      query.since = ParseSince({{"since", since.asString()}});
    } else {
      throw RestError(400, "'since' must be Unix seconds or an ISO 8601 UTC time");
    }
  }
  if (body.isMember("modality")) {
    const Json::Value& modality = body["modality"];
    if (!modality.isString() || modality.asString().empty() || modality.asString().size() > 16) {
      throw RestError(400, "'modality' must be a modality such as \"CT\" (at most 16 characters)");
    }
    query.modality = modality.asString();
  }
  if (body.isMember("limit")) {
    const Json::Value& limit = body["limit"];
    if (!limit.isIntegral() || limit.asInt64() < 1 || limit.asInt64() > 1000) {
      throw RestError(400, "'limit' must be an integer from 1 to 1000");
    }
    query.limit = static_cast<unsigned>(limit.asUInt());
  }
  Json::Value studies(Json::arrayValue);
  for (const auto& record : service_->BulkSend(query)) studies.append(StudyToJson(record));
  Json::Value v;
  v["queued"] = studies.size();
  v["studies"] = studies;
  return JsonAnswer(v, 202);
}

RestResponse RestApi::PreviewStudy(const std::string& id) const {
  const auto preview = service_->Preview(id);
  if (!preview) throw RestError(404, "no study " + id + " in Orthanc");
  return JsonAnswer(PreviewToJson(*preview));
}

RestResponse RestApi::Refuse(const RestRequest& request, Role role, Role required) const {
  if (service_ != nullptr) {
    service_->RecordAccessDenied(request.user, request.method, "/cloud-ingest" + request.path);
  }
  Json::Value details;
  details["user"] = request.user;
  details["role"] = ToString(role);
  details["required"] = ToString(required);
  return JsonError(403,
                   request.user.empty() ? std::string("access denied: no user")
                                        : "access denied: " + request.user + " is " +
                                              ToString(role) + ", this needs " + ToString(required),
                   details);
}

RestResponse RestApi::Me(const RestRequest& request) const {
  const Role role = RoleOf(permissions_, request.user);
  Json::Value v;
  v["user"] = request.user;
  v["role"] = ToString(role);
  v["can"] = Capabilities(role);
  v["permissions_configured"] = permissions_.configured;
  return JsonAnswer(v);
}

RestResponse RestApi::Receipt(const std::string& id) const {
  auto receipt = service_->Receipt(id);
  if (!receipt) throw RestError(404, "study " + id + " was never sent: no receipt");
  return JsonAnswer(*receipt);
}

RestResponse RestApi::VerifyAudit() const {
  const AuditVerification result = service_->VerifyAudit();
  Json::Value v;
  v["ok"] = result.ok;
  v["records"] = static_cast<Json::UInt64>(result.records);
  v["first_bad_seq"] = result.firstBadSeq
                           ? Json::Value(static_cast<Json::UInt64>(*result.firstBadSeq))
                           : Json::Value();
  v["reason"] = result.reason;
  return JsonAnswer(v);
}

RestResponse RestApi::App(const std::string& file) const {
  const std::string name = "WebApp/" + (file.empty() ? std::string("index.html") : file);
  auto it = resources_.find(name);
  if (it == resources_.end()) throw RestError(404, "no such file: " + file);
  RestResponse response;
  response.body = it->second;
  const auto dot = name.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : name.substr(dot + 1);
  response.contentType = ext == "html"  ? "text/html; charset=utf-8"
                         : ext == "js"  ? "application/javascript; charset=utf-8"
                         : ext == "css" ? "text/css; charset=utf-8"
                         : ext == "svg" ? "image/svg+xml"
                                        : "application/octet-stream";
  response.headers.emplace_back("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; object-src 'none'");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return response;
}

}  // namespace CloudIngest
