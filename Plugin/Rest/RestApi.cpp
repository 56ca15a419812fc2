#include "RestApi.h"

#include <json/json.h>

#include <ctime>
#include <iomanip>
#include <regex>
#include <sstream>

#include "../Core/ApiResponses.h"
#include "../Core/AuditLog.h"
#include "../Core/CloudIngestService.h"
#include "RestBody.h"

namespace CloudIngest {

namespace {

class RestError : public std::runtime_error {
 public:
  RestError(int status, const std::string& message, Json::Value details = {})
      : std::runtime_error(message), status_(status), details_(std::move(details)) {}
  int Status() const { return status_; }
  const Json::Value& Details() const { return details_; }

 private:
  int status_;
  Json::Value details_;
};

std::string Write(const Json::Value& value) {
  Json::StreamWriterBuilder builder;
  builder["indentation"] = "  ";
  builder["emitUTF8"] = true;
  return Json::writeString(builder, value);
}

RestResponse JsonAnswer(const Json::Value& value, int status = 200) {
  RestResponse response;
  response.status = status;
  response.body = Write(value);
  return response;
}

std::string Iso(double time) {
  return time > 0 ? FormatIsoTime(time) : std::string();
}

Json::Value OptionalTime(double time) {
  return time > 0 ? Json::Value(FormatIsoTime(time)) : Json::Value(Json::nullValue);
}

void RequireMethod(const RestRequest& request, const char* method) {
  if (request.method != method) {
    throw RestError(405, std::string("use ") + method + " for this route",
                    Json::Value(std::string("Allow: ") + method));
  }
}

Json::Value ParseBodyObject(const std::string& body) {
  try {
    return ParseRestBody(body);
  } catch (const RestBodyError& e) {
    throw RestError(400, e.what(), e.Details().empty() ? Json::Value() : Json::Value(e.Details()));
  }
}

unsigned ParseUnsigned(const std::map<std::string, std::string>& query, const char* key,
                       unsigned fallback, unsigned max) {
  auto it = query.find(key);
  if (it == query.end()) return fallback;
  if (it->second.empty() || it->second.size() > 9 ||
      it->second.find_first_not_of("0123456789") != std::string::npos) {
    throw RestError(400, std::string("'") + key + "' must be a non-negative integer");
  }
  return std::min<unsigned>(static_cast<unsigned>(std::stoul(it->second)), max);
}

// `since`: Unix seconds or ISO 8601 ("2026-11-28T17:04:26Z").
double ParseSince(const std::map<std::string, std::string>& query) {
  auto it = query.find("since");
  if (it == query.end() || it->second.empty()) return 0;
  const std::string& text = it->second;
  static const std::regex number(R"(\d{1,12}(\.\d+)?)");
  if (std::regex_match(text, number)) return std::stod(text);
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (in.fail()) throw RestError(400, "'since' must be Unix seconds or an ISO 8601 UTC time");
  return static_cast<double>(timegm(&tm));
}

}  // namespace

RestResponse JsonError(int status, const std::string& message, const Json::Value& details) {
  Json::Value body;
  body["error"] = message;
  body["details"] = details;
  return JsonAnswer(body, status);
}

Json::Value StudyToJson(const StudyRecord& r) {
  Json::Value v;
  v["orthanc_id"] = r.orthancId;
  v["study_instance_uid"] = r.studyInstanceUid;
  v["order_id"] = r.orderId.empty() ? Json::Value(Json::nullValue) : Json::Value(r.orderId);
  v["state"] = ToString(r.state);
  v["instances_sent"] = r.instancesSent;
  v["instances_total"] = r.instancesTotal;
  v["bytes_sent"] = static_cast<Json::UInt64>(r.bytesSent);
  v["attempts"] = r.attempts;
  v["last_error"] = r.lastError.empty() ? Json::Value(Json::nullValue) : Json::Value(r.lastError);
  v["trigger"] = r.trigger;
  v["mode"] = r.mode;
  v["requested_by"] = r.requestedBy;
  v["patient_name"] = r.patientName;
  v["patient_id"] = r.patientId;
  v["study_date"] = r.studyDate;
  v["study_description"] = r.studyDescription;
  v["created_at"] = OptionalTime(r.createdAt);
  v["updated_at"] = OptionalTime(r.updatedAt);
  v["sent_at"] = OptionalTime(r.sentAt);
  v["next_attempt_at"] =
      r.state == StudyState::Queued ? OptionalTime(r.nextAttemptAt) : Json::Value(Json::nullValue);
  return v;
}

RestApi::RestApi(CloudIngestService* service, const Resources& resources)
    : service_(service), resources_(resources) {}

RestResponse RestApi::Handle(const RestRequest& request) const {
  try {
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
  static const std::regex studyRoute(R"(/studies/([0-9a-f\-]{1,64}))");
  static const std::regex studyAction(R"(/studies/([0-9a-f\-]{1,64})/(send|cancel))");
  static const std::regex orderRoute(R"(/orders/([^/]{1,128})/metadata)");
  const std::string& path = request.path;
  std::smatch m;

  if (path == "/status") {
    RequireMethod(request, "GET");
    return Status();
  }
  if (path == "/app" || path.rfind("/app/", 0) == 0) {
    RequireMethod(request, "GET");
    return App(path.size() <= 5 ? std::string() : path.substr(5));
  }
  if (service_ == nullptr) {
    throw RestError(409, "the CloudIngest plugin is disabled (CloudIngest.Enable is false)");
  }
  if (path == "/studies") {
    RequireMethod(request, "GET");
    return ListStudies(request);
  }
  if (std::regex_match(path, m, studyAction)) {
    RequireMethod(request, "POST");
    return m[2] == "send" ? SendStudy(m[1], request) : CancelStudy(m[1]);
  }
  if (std::regex_match(path, m, studyRoute)) {
    RequireMethod(request, "GET");
    return GetStudy(m[1]);
  }
  if (std::regex_match(path, m, orderRoute)) {
    RequireMethod(request, "POST");
    return OrderMetadata(m[1], request);
  }
  if (path == "/test-connection") {
    RequireMethod(request, "POST");
    return TestConnection();
  }
  throw RestError(404, "no such route: /cloud-ingest" + path);
}

RestResponse RestApi::Status() const {
  Json::Value v;
  v["version"] = CLOUD_INGEST_VERSION;
  v["enabled"] = service_ != nullptr;
  if (service_ == nullptr) return JsonAnswer(v);
  const Configuration& config = service_->Config();
  v["url"] = config.url;
  v["auto_send"] = config.autoSend;
  v["upload_mode"] = ToString(config.uploadMode);
  v["audit_log"] = config.auditLog;

  const TokenState token = service_->Tokens().State();
  Json::Value t;
  const bool valid = token.valid && token.expiresAt > service_->Clock().Now();
  t["valid"] = valid;
  t["valid_until"] = valid ? Json::Value(Iso(token.expiresAt)) : Json::Value(Json::nullValue);
  t["issued_at"] = OptionalTime(token.issuedAt);
  t["refresh_failures"] = token.refreshFailures;
  t["last_error"] =
      token.lastError.empty() ? Json::Value(Json::nullValue) : Json::Value(token.lastError);
  v["token"] = t;

  const QueueTotals totals = service_->Queue().Totals();
  Json::Value q(Json::objectValue);
  for (const auto& [state, count] : totals.byState) q[ToString(state)] = count;
  v["queue"] = q;
  Json::Value s;
  s["studies_sent"] = static_cast<Json::UInt64>(totals.studiesSent);
  s["instances_sent"] = static_cast<Json::UInt64>(totals.instancesSent);
  s["bytes_sent"] = static_cast<Json::UInt64>(totals.bytesSent);
  s["failures"] = static_cast<Json::UInt64>(totals.failures);
  s["last_success"] = OptionalTime(totals.lastSuccess);
  v["totals"] = s;
  // Orthanc's /changes are accounted for up to here; a restart re-examines
  // only later ones (-1 before the first scan).
  v["changes_cursor"] = static_cast<Json::Int64>(service_->Queue().GetChangesCursor());
  return JsonAnswer(v);
}

RestResponse RestApi::ListStudies(const RestRequest& request) const {
  std::optional<StudyState> state;
  auto it = request.query.find("state");
  if (it != request.query.end() && !it->second.empty()) {
    state = ParseStudyState(it->second);
    if (!state) {
      throw RestError(400, "'state' must be one of queued, sending, sent, failed, cancelled");
    }
  }
  const unsigned limit = ParseUnsigned(request.query, "limit", 100, 1000);
  const unsigned offset = ParseUnsigned(request.query, "offset", 0, 1000000);
  const double since = ParseSince(request.query);
  Json::Value list(Json::arrayValue);
  for (const auto& record : service_->Queue().List(state, limit, offset, since)) {
    list.append(StudyToJson(record));
  }
  Json::Value v;
  v["studies"] = list;
  v["limit"] = limit;
  v["offset"] = offset;
  return JsonAnswer(v);
}

RestResponse RestApi::GetStudy(const std::string& id) const {
  auto record = service_->Queue().Get(id);
  if (!record) throw RestError(404, "study " + id + " is not tracked by the plugin");
  Json::Value v = StudyToJson(*record);
  Json::Value history(Json::arrayValue);
  for (const auto& h : service_->Queue().History(id)) {
    Json::Value e;
    e["time"] = Iso(h.time);
    e["attempt"] = h.attempt;
    e["event"] = h.event;
    e["detail"] = h.detail;
    history.append(e);
  }
  v["history"] = history;
  return JsonAnswer(v);
}

RestResponse RestApi::SendStudy(const std::string& id, const RestRequest& request) const {
  const Json::Value body = ParseBodyObject(request.body);
  for (const auto& key : body.getMemberNames()) {
    if (key != "metadata" && key != "mode") {
      throw RestError(400, "unknown key '" + key + "' (allowed: metadata, mode)");
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
    if (!body["mode"].isString() ||
        (body["mode"].asString() != "Instances" && body["mode"].asString() != "Zip" &&
         body["mode"].asString() != "Nifti")) {
      throw RestError(400, "'mode' must be \"Instances\", \"Zip\" or \"Nifti\"");
    }
    enqueue.mode = body["mode"].asString();
  }
  if (!service_->Source().StudyExists(id)) throw RestError(404, "no study " + id + " in Orthanc");
  return JsonAnswer(StudyToJson(service_->Send(enqueue)), 202);
}

RestResponse RestApi::CancelStudy(const std::string& id) const {
  auto record = service_->Queue().Get(id);
  if (!record) throw RestError(404, "study " + id + " is not tracked by the plugin");
  if (!service_->Cancel(id)) {
    throw RestError(409, "study " + id + " is " + ToString(record->state) +
                             "; only queued or sending studies can be cancelled");
  }
  return JsonAnswer(StudyToJson(*service_->Queue().Get(id)));
}

RestResponse RestApi::OrderMetadata(const std::string& orderId, const RestRequest& request) const {
  if (!IsUuidV4(orderId)) throw RestError(400, "order id must be a UUID v4");
  const Json::Value body = ParseBodyObject(request.body);
  try {
    service_->Client().AddMetadata(orderId, body);
  } catch (const IngestError& e) {
    Json::Value details;
    details["http_status"] = static_cast<Json::Int64>(e.HttpStatus());
    throw RestError(502, std::string("the ingestion service refused the metadata: ") + e.what(),
                    details);
  }
  AuditEvent e;
  e.event = "metadata_added";
  e.orderId = orderId;
  e.user = request.user;
  service_->Audit().Record(e, service_->Clock().Now());
  Json::Value v;
  v["order_id"] = orderId;
  v["status"] = "metadata added";
  return JsonAnswer(v);
}

RestResponse RestApi::TestConnection() const {
  Json::Value v;
  const Configuration& config = service_->Config();
  v["url"] = config.url;
  v["token_url"] = config.tokenUrl;
  v["https_verify_peers"] = config.httpsVerifyPeers;
  try {
    service_->Tokens().GetToken();
    const TokenState state = service_->Tokens().State();
    v["ok"] = true;
    v["token"] = "obtained";
    v["valid_until"] = Iso(state.expiresAt);
  } catch (const std::exception& e) {
    v["ok"] = false;
    v["token"] = "failed";
    v["error"] = e.what();
  }
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
