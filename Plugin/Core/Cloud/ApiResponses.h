#pragma once
// Tolerant parsers of the ingestion API's answers (docs/REFERENCE.md, Ingestion API).
// Each throws IngestError(Permanent) with a clear message on malformed input;
// they are fuzzed, so they must never crash on any byte string.
#include <json/value.h>

#include <map>
#include <optional>
#include <string>

namespace CloudIngest {

struct TokenResponse {
  std::string accessToken;
  std::string tokenType;
  double expiresIn = 3600;
  std::string scope;
};

struct UploadTarget {
  std::string url;
  double expiresIn = 900;
  std::map<std::string, std::string> headers;  // sent as-is with the PUT
};

TokenResponse ParseTokenResponse(const std::string& body);
// {"order_id"|"orderId"|"id": uuid} or a bare (optionally quoted) UUID; must be UUID v4.
std::string ParseOrderResponse(const std::string& body);
// {"url"|"presigned_url"|"upload_url", "expires_in", "headers"}. Refuses
// `headers` that name a reserved header (IsReservedUploadHeader).
UploadTarget ParseUploadUrlResponse(const std::string& body);
// Headers the upload endpoint may not set on the PUT (any letter case): they
// would send it elsewhere (Host), reframe it on a kept-alive connection
// (Content-Length, Transfer-Encoding, Connection, Expect, TE, Upgrade) or add
// credentials (Authorization, Proxy-*).
bool IsReservedUploadHeader(const std::string& name);
// RFC 6749 {"error","error_description"} or {"error":..,"message":..}, else a
// truncated printable excerpt of the body: what is kept as last_error.
std::string DescribeErrorBody(const std::string& body);
// Retry-After as seconds (delta-seconds or HTTP-date relative to `now`).
std::optional<double> ParseRetryAfter(const std::string& value, double now);
bool IsUuidV4(const std::string& text);
// Strict JSON parse with size/depth limits; throws IngestError(Permanent).
Json::Value ParseJsonBody(const std::string& body, const char* what);

}  // namespace CloudIngest
