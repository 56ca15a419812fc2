#pragma once
// The /cloud-ingest/ routes (CONTRACT section 3), independent of the SDK:
// the SDK layer turns Orthanc's request into a RestRequest and back.
#include <json/value.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace CloudIngest {

class CloudIngestService;
struct StudyRecord;

struct RestRequest {
  std::string method;  // GET, POST, PUT, DELETE
  std::string path;    // below /cloud-ingest, e.g. "/studies/abc/send"
  std::map<std::string, std::string> query;
  std::string body;
  std::string user;  // who Orthanc says is calling, where known
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
  RestApi(CloudIngestService* service, const Resources& resources);
  // Never throws: errors become JSON {"error","details"} with a fitting status.
  RestResponse Handle(const RestRequest& request) const;

 private:
  RestResponse Route(const RestRequest& request) const;
  RestResponse Status() const;
  RestResponse ListStudies(const RestRequest& request) const;
  RestResponse GetStudy(const std::string& id) const;
  RestResponse SendStudy(const std::string& id, const RestRequest& request) const;
  RestResponse CancelStudy(const std::string& id) const;
  RestResponse OrderMetadata(const std::string& orderId, const RestRequest& request) const;
  RestResponse TestConnection() const;
  RestResponse App(const std::string& file) const;

  CloudIngestService* service_;
  const Resources& resources_;
};

Json::Value StudyToJson(const StudyRecord& record);
// {"error": message, "details": details}
RestResponse JsonError(int status, const std::string& message, const Json::Value& details = {});

}  // namespace CloudIngest
