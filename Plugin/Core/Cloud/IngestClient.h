#pragma once
// The ingestion API as the plugin speaks it (docs/REFERENCE.md, Ingestion API). One call =
// one HTTP exchange (plus one token refresh on 401); retries are the caller's.
#include <json/value.h>

#include <optional>
#include <string>
#include <vector>

#include "Core/Cloud/ApiResponses.h"
#include "Core/Cloud/Http.h"
#include "Core/Cloud/IngestError.h"
#include "Core/Cloud/RoundTripMeter.h"
#include "Core/Cloud/TokenProvider.h"
#include "Core/Configuration/Configuration.h"

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

  // Throws IngestError on any failure, HttpAborted when the HTTP client was
  // told to stop (every call here).
  std::string CreateOrder(const Json::Value& metadata);
  // Refuses (Permanent) a URL whose host is not in AllowedUploadHosts, an
  // http:// URL while Url is https:// (unless AllowInsecureUploads), and
  // reserved headers (see IsReservedUploadHeader).
  UploadTarget RequestUploadUrl(const UploadUrlRequest& request);
  // PUT without Authorization; checks the ETag against `expectedMd5Hex`
  // (mismatch: Transient). 403 -> UrlRefused. Returns the HTTP status.
  long Upload(const UploadTarget& target, std::shared_ptr<IBodySource> body,
              const std::string& contentType, const std::string& expectedMd5Hex);
  // The same, also giving the store's ETag (unquoted, empty when absent) for receipts.
  struct Stored {
    long status = 0;
    std::string etag;
  };
  Stored UploadAndTag(const UploadTarget& target, std::shared_ptr<IBodySource> body,
                      const std::string& contentType, const std::string& expectedMd5Hex);
  void AddMetadata(const std::string& orderId, const Json::Value& metadata);
  void AddMetadataByStudy(const std::string& studyInstanceUid, const Json::Value& metadata);
  bool IsAllowedUploadHost(const std::string& url) const;
  // An http:// upload URL while the API is on https://, not allowed by AllowInsecureUploads.
  bool IsSchemeDowngrade(const std::string& url) const;
  // The round trip to the API and a small upload's wait, as measured so far.
  MeasuredWaits Waits() const { return meter_.Waits(); }

 private:
  // Throws IngestError(Permanent) when `target` may not be used.
  void CheckUploadTarget(const UploadTarget& target) const;
  // Sends with a Bearer token; on 401 invalidates it and retries once.
  HttpResponse CallApi(HttpRequest request, const char* step);
  const Configuration& config_;
  IHttpClient& http_;
  TokenProvider& tokens_;
  RoundTripMeter meter_;
};

// Maps a non-2xx answer to an IngestError with the server's message kept.
IngestError ErrorFromResponse(const HttpResponse& response, const char* step, double now);

}  // namespace CloudIngest
