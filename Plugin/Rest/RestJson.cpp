#include "Rest/RestJson.h"

#include <json/json.h>

#include "Core/Configuration/SendWindows.h"
#include "Core/Time.h"

namespace CloudIngest {

namespace {

std::string Iso(double time) {
  return time > 0 ? FormatIsoTime(time) : std::string();
}

Json::Value OptionalTime(double time) {
  return time > 0 ? Json::Value(FormatIsoTime(time)) : Json::Value(Json::nullValue);
}

Json::Value OptionalText(const std::string& text) {
  return text.empty() ? Json::Value(Json::nullValue) : Json::Value(text);
}

Json::Value TokenToJson(const TokenStatus& token) {
  Json::Value t;
  t["valid"] = token.validNow;
  t["valid_until"] =
      token.validNow ? Json::Value(Iso(token.validUntil)) : Json::Value(Json::nullValue);
  t["issued_at"] = OptionalTime(token.issuedAt);
  t["refresh_failures"] = token.refreshFailures;
  t["last_error"] = OptionalText(token.lastError);
  return t;
}

Json::Value TotalsToJson(const QueueTotals& totals) {
  Json::Value s;
  s["studies_sent"] = static_cast<Json::UInt64>(totals.studiesSent);
  s["instances_sent"] = static_cast<Json::UInt64>(totals.instancesSent);
  s["bytes_sent"] = static_cast<Json::UInt64>(totals.bytesSent);
  s["failures"] = static_cast<Json::UInt64>(totals.failures);
  s["last_success"] = OptionalTime(totals.lastSuccess);
  return s;
}

// A corrupt database moved aside at start-up, null otherwise.
Json::Value RecoveryToJson(const std::optional<DatabaseRecovery>& recovery) {
  if (!recovery) return Json::Value(Json::nullValue);
  Json::Value r;
  r["moved_to"] = recovery->movedTo;
  r["at"] = Iso(recovery->at);
  r["reason"] = recovery->reason;
  return r;
}

Json::Value DatabaseHealthToJson(const StoreHealth& health) {
  Json::Value v;
  v["kind"] = health.kind;
  v["reachable"] = health.reachable;
  v["last_error"] = OptionalText(health.lastError);
  return v;
}

// `alive`: a heartbeat within one lease, so its claims still hold.
Json::Value NodesToJson(const std::vector<NodeStatus>& nodes, double now, double leaseDuration) {
  Json::Value list(Json::arrayValue);
  for (const auto& node : nodes) {
    Json::Value n;
    n["name"] = node.name;
    n["last_heartbeat"] = Iso(node.lastHeartbeat);
    n["alive"] = now - node.lastHeartbeat <= leaseDuration;
    Json::Value sending(Json::arrayValue);
    for (const auto& id : node.sending) sending.append(id);
    n["sending"] = sending;
    list.append(n);
  }
  return list;
}

}  // namespace

RestResponse JsonAnswer(const Json::Value& value, int status) {
  Json::StreamWriterBuilder builder;
  builder["indentation"] = "  ";
  builder["emitUTF8"] = true;
  RestResponse response;
  response.status = status;
  response.body = Json::writeString(builder, value);
  return response;
}

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
  v["order_id"] = OptionalText(r.orderId);
  v["state"] = ToString(r.state);
  v["instances_sent"] = r.instancesSent;
  v["instances_total"] = r.instancesTotal;
  v["bytes_sent"] = static_cast<Json::UInt64>(r.bytesSent);
  v["attempts"] = r.attempts;
  v["last_error"] = OptionalText(r.lastError);
  v["trigger"] = r.trigger;
  v["mode"] = r.mode;
  v["requested_by"] = r.requestedBy;
  // While sending: the node holding the claim (another node's, in a cluster).
  v["node"] = r.state == StudyState::Sending ? Json::Value(r.node) : Json::Value();
  v["patient_name"] = r.patientName;
  v["patient_id"] = r.patientId;
  v["study_date"] = r.studyDate;
  v["study_description"] = r.studyDescription;
  v["created_at"] = OptionalTime(r.createdAt);
  v["updated_at"] = OptionalTime(r.updatedAt);
  v["sent_at"] = OptionalTime(r.sentAt);
  v["respect_windows"] = RespectsSendWindows(r.trigger, r.respectWindows);
  v["next_attempt_at"] =
      r.state == StudyState::Queued ? OptionalTime(r.nextAttemptAt) : Json::Value(Json::nullValue);
  return v;
}

Json::Value StudyDetailsToJson(const StudyDetails& study) {
  Json::Value v = StudyToJson(study.record);
  Json::Value history(Json::arrayValue);
  for (const auto& h : study.history) {
    Json::Value e;
    e["time"] = Iso(h.time);
    e["attempt"] = h.attempt;
    e["event"] = h.event;
    e["detail"] = h.detail;
    history.append(e);
  }
  v["history"] = history;
  return v;
}

Json::Value StatusToJson(const ServiceStatus& status) {
  Json::Value v;
  v["version"] = status.version;
  v["enabled"] = status.enabled;
  if (!status.enabled) return v;
  v["url"] = status.url;
  v["auto_send"] = status.autoSend;
  v["upload_mode"] = status.uploadMode;
  v["concurrency"] = status.concurrency;
  v["round_trip_ms"] =
      status.roundTripSeconds ? Json::Value(*status.roundTripSeconds * 1000) : Json::Value();
  v["audit_log"] = status.auditLog;
  v["token"] = TokenToJson(status.token);
  Json::Value q(Json::objectValue);
  for (const auto& [state, count] : status.totals.byState) q[ToString(state)] = count;
  v["queue"] = q;
  v["totals"] = TotalsToJson(status.totals);
  // A restart re-examines only the changes after this one.
  v["changes_cursor"] = static_cast<Json::Int64>(status.changesCursor);
  v["database_recovered"] = RecoveryToJson(status.databaseRecovered);
  v["node"] = status.node;
  v["database"] = DatabaseHealthToJson(status.database);
  v["nodes"] = NodesToJson(status.nodes, status.takenAt, status.leaseDuration);
  v["paused"] = status.paused;
  // null: no SendWindows, automatic sends start at any time.
  if (status.sendWindows.configured) {
    v["send_windows"]["open"] = status.sendWindows.open;
    v["send_windows"]["next_opening"] = Iso(status.sendWindows.nextOpening);
  } else {
    v["send_windows"] = Json::Value(Json::nullValue);
  }
  v["max_send_rate"] = static_cast<Json::UInt64>(status.maxSendRate);
  v["webhooks_pending"] = static_cast<Json::UInt64>(status.webhooksPending);
  return v;
}

Json::Value ConnectionTestToJson(const ConnectionTest& test) {
  Json::Value v;
  v["url"] = test.url;
  v["token_url"] = test.tokenUrl;
  v["https_verify_peers"] = test.httpsVerifyPeers;
  v["ok"] = test.tokenObtained;
  if (test.tokenObtained) {
    v["token"] = "obtained";
    v["valid_until"] = Iso(test.validUntil);
  } else {
    v["token"] = "failed";
    v["error"] = test.error;
  }
  return v;
}

Json::Value PreviewToJson(const StudyPreview& p) {
  auto list = [](const std::vector<std::string>& values) {
    Json::Value a(Json::arrayValue);
    for (const auto& value : values) a.append(value);
    return a;
  };
  Json::Value v;
  v["orthanc_id"] = p.orthancId;
  v["study_instance_uid"] = p.studyInstanceUid;
  v["would_send"] = p.blockedBy.empty();
  v["blocked_by"] = list(p.blockedBy);
  Json::Value filters;
  filters["match"] = p.filtersMatch;
  filters["modalities"] = list(p.modalities);
  filters["calling_aet"] = p.callingAet;
  v["filters"] = filters;
  Json::Value window;
  window["open"] = p.window.open;
  window["reason"] = p.window.reason;
  v["send_window"] = window;
  v["paused"] = p.paused;
  v["unchanged"] = p.unchanged;
  v["mode"] = p.mode;
  v["mode_reason"] = OptionalText(p.modeReason);
  v["connections"] = p.connections;
  v["order_metadata"] = p.orderMetadata;
  v["order_error"] = OptionalText(p.orderError);
  v["series"] = p.series;
  v["instances"] = p.instances;
  v["bytes"] = static_cast<Json::UInt64>(p.bytes);
  // Both values, for the operator on site: what is stored, what would leave.
  if (p.deidentified) {
    Json::Value replaced;
    replaced["study_instance_uid"]["original"] = p.studyInstanceUid;
    replaced["study_instance_uid"]["pseudonym"] = OptionalText(p.pseudonymousStudyInstanceUid);
    replaced["patient_id"]["original"] = p.patientId;
    replaced["patient_id"]["pseudonym"] = OptionalText(p.pseudonymousPatientId);
    v["deidentify"] = replaced;
  } else {
    v["deidentify"] = Json::Value();
  }
  return v;
}

}  // namespace CloudIngest
