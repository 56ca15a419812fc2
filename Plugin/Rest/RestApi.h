#pragma once
// The /cloud-ingest/ routes (docs/REFERENCE.md, REST API), independent of the SDK:
// the SDK layer turns Orthanc's request into a RestRequest and back.
#include <json/value.h>

#include <map>
#include <string>
#include <vector>

#include "Core/Configuration/Configuration.h"  // PermissionSettings

namespace CloudIngest {

class IngestService;

struct RestRequest {
  std::string method;  // GET, POST, PUT, DELETE
  std::string path;    // below /cloud-ingest, e.g. "/studies/abc/send"
  std::map<std::string, std::string> query;
  std::string body;
  std::string contentType;  // the request's Content-Type header, empty when absent
  std::string user;         // who Orthanc says is calling, where known
};

struct RestResponse {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class RestApi {
 public:
  using Resources = std::map<std::string, std::string>;  // "WebApp/index.html" -> bytes
  // `service` is null when the plugin is disabled: only status answers then.
  // `permissions` not configured: every caller is admin.
  RestApi(IngestService* service, const Resources& resources, PermissionSettings permissions = {});
  // Never throws: errors become JSON {"error","details"} with a fitting status.
  RestResponse Handle(const RestRequest& request) const;

 private:
  RestResponse Route(const RestRequest& request) const;
  RestResponse Status() const;
  RestResponse ListStudies(const RestRequest& request) const;
  RestResponse GetStudy(const std::string& id) const;
  RestResponse SendStudy(const std::string& id, const RestRequest& request) const;
  RestResponse CancelStudy(const std::string& id, const RestRequest& request) const;
  RestResponse OrderMetadata(const std::string& orderId, const RestRequest& request) const;
  RestResponse TestConnection() const;
  RestResponse PauseQueue(const RestRequest& request) const;
  RestResponse ResumeQueue(const RestRequest& request) const;
  RestResponse BulkSend(const RestRequest& request) const;
  RestResponse PreviewStudy(const std::string& id) const;
  RestResponse App(const std::string& file) const;
  RestResponse Me(const RestRequest& request) const;
  RestResponse Receipt(const std::string& id) const;
  RestResponse VerifyAudit() const;
  // 403 and an access_denied record.
  RestResponse Refuse(const RestRequest& request, Role role, Role required) const;

  IngestService* service_;
  const Resources& resources_;
  const PermissionSettings permissions_;
};

// Orthanc splits a multipart/form-data POST into its parts and hands each part
// to the route with the part's own headers, which the sender writes, then
// answers 200 whatever the route said; a cross-site page can send one without
// a CORS preflight. True for a POST of any multipart type to /cloud-ingest/,
// which an incoming-request filter must refuse before it is routed.
bool RefuseBeforeRouting(const std::string& method, const std::string& uri,
                         const std::string& contentType);

}  // namespace CloudIngest
