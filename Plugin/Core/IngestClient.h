#pragma once
// The ingestion API as the plugin speaks it (CONTRACT section 1). One call =
// one HTTP exchange (plus one token refresh on 401); retries are the caller's.
#include <json/value.h>

#include <string>
#include <vector>

#include "ApiResponses.h"
#include "Configuration.h"
#include "Http.h"
#include "IngestError.h"
#include "TokenProvider.h"

namespace CloudIngest {

struct UploadUrlRequest {
  std::string orderId;
  std::string filename;
  std::string contentType;
  std::string studyInstanceUid;
  uint64_t size = 0;
};

class IngestClient {
 public:
  IngestClient(const Configuration& config, IHttpClient& http, TokenProvider& tokens);

  // Throws IngestError on any failure.
  std::string CreateOrder(const Json::Value& metadata);
  // Refuses (Permanent) a URL whose host is not in AllowedUploadHosts.
  UploadTarget RequestUploadUrl(const UploadUrlRequest& request);
  // PUT without Authorization; checks the ETag against `expectedMd5Hex`
  // (mismatch: Transient). 403 -> UrlRefused. Returns the HTTP status.
  long Upload(const UploadTarget& target, std::shared_ptr<IBodySource> body,
              const std::string& contentType, const std::string& expectedMd5Hex);
  void AddMetadata(const std::string& orderId, const Json::Value& metadata);
  void AddMetadataByStudy(const std::string& studyInstanceUid, const Json::Value& metadata);
  bool IsAllowedUploadHost(const std::string& url) const;

 private:
  // Sends with a Bearer token; on 401 invalidates it and retries once.
  HttpResponse CallApi(HttpRequest request, const char* step);
  const Configuration& config_;
  IHttpClient& http_;
  TokenProvider& tokens_;
};

// Maps a non-2xx answer to an IngestError with the server's message kept.
IngestError ErrorFromResponse(const HttpResponse& response, const char* step, double now);

}  // namespace CloudIngest
