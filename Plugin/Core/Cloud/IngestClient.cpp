#include "Core/Cloud/IngestClient.h"

#include <json/writer.h>

#include <algorithm>
#include <boost/algorithm/string/case_conv.hpp>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/predicate.hpp>
#include <boost/algorithm/string/replace.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <chrono>

#include "Core/Url.h"

namespace CloudIngest {

namespace {

std::string ToLower(const std::string& text) {
  return boost::algorithm::to_lower_copy(text, std::locale::classic());
}

bool EqualsNoCase(const std::string& a, const std::string& b) {
  return boost::algorithm::iequals(a, b, std::locale::classic());
}

double WallClockNow() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string ToJson(const Json::Value& value) {
  Json::StreamWriterBuilder builder;
  builder["indentation"] = "";
  builder["emitUTF8"] = true;  // non-ASCII metadata stays readable UTF-8, not \u escapes
  return Json::writeString(builder, value);
}

// '*' matches any run of characters (dots included); everything else literally.
bool GlobMatch(const std::string& pattern, const std::string& text) {
  size_t p = 0;
  size_t t = 0;
  size_t star = std::string::npos;
  size_t resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

std::string StripETag(std::string etag) {
  if (etag.size() >= 2 && (etag.compare(0, 2, "W/") == 0 || etag.compare(0, 2, "w/") == 0)) {
    etag.erase(0, 2);
  }
  etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
  return boost::algorithm::trim_copy_if(etag, boost::algorithm::is_any_of(" \t"));
}

void SetHeader(HttpRequest& request, const std::string& name, const std::string& value) {
  auto& headers = request.headers;
  headers.erase(
      std::remove_if(headers.begin(), headers.end(),
                     [&](const auto& header) { return EqualsNoCase(header.first, name); }),
      headers.end());
  headers.emplace_back(name, value);
}

std::string AppendQuery(const std::string& url, const std::string& query) {
  return url + (url.find('?') == std::string::npos ? '?' : '&') + query;
}

// A store's error text may quote the presigned query (signature, session
// token): every non-trivial query value is blanked, encoded or not.
std::string ScrubQueryValues(std::string message, const std::string& url) {
  const size_t query = url.find('?');
  if (query == std::string::npos) {
    return message;
  }
  const std::string parameters = url.substr(query + 1, url.find('#', query) - query - 1);
  size_t start = 0;
  while (start <= parameters.size()) {
    const size_t end = std::min(parameters.find('&', start), parameters.size());
    const std::string pair = parameters.substr(start, end - start);
    const size_t equals = pair.find('=');
    if (equals != std::string::npos) {
      const std::string value = pair.substr(equals + 1);
      // Form encoding: '+' is a space.
      const std::string decoded = UrlDecode(boost::algorithm::replace_all_copy(value, "+", " "));
      if (value.size() >= 6) {
        boost::algorithm::replace_all(message, value, "***");
      }
      if (decoded.size() >= 6) {
        boost::algorithm::replace_all(message, decoded, "***");
      }
    }
    start = end + 1;
  }
  return message;
}

// Names the host only: the rest of a presigned URL may be a credential.
IngestError HostRefused(const std::string& url) {
  const std::string host = UrlHost(url);
  return IngestError(FailureKind::Permanent,
                     "presigned URL host " + (host.empty() ? std::string("(unparsable)") : host) +
                         " is not in AllowedUploadHosts");
}

}  // namespace

IngestError ErrorFromResponse(const HttpResponse& response, const char* step, double now) {
  const long status = response.status;
  const std::optional<double> retryAfter = ParseRetryAfter(response.Header("retry-after"), now);
  const std::string message = std::string(step) + ": HTTP " + std::to_string(status) + ": " +
                              DescribeErrorBody(response.body);
  if (status == 401) {
    return IngestError(FailureKind::Unauthorized, message, status, retryAfter);
  }
  if (status >= 500 || status == 429 || status == 408) {
    return IngestError(FailureKind::Transient, message, status, retryAfter);
  }
  // Other 4xx, redirects (never followed) and unexpected statuses.
  return IngestError(FailureKind::Permanent, message, status, retryAfter);
}

IngestClient::IngestClient(const Configuration& config, IHttpClient& http, TokenProvider& tokens)
    : config_(config), http_(http), tokens_(tokens) {}

HttpResponse IngestClient::CallApi(HttpRequest request, const char* step) {
  const auto send = [&](const std::string& token) {
    SetHeader(request, "Authorization", "Bearer " + token);
    if (request.bodySource) {
      request.bodySource->Rewind();
    }
    try {
      HttpResponse answer = http_.Execute(request);
      meter_.RecordApiAnswer(answer.answerSeconds);
      return answer;
    } catch (const HttpAborted&) {
      throw;  // stopping, not failing: the caller must not retry or count it
    } catch (const HttpTransportError& e) {
      throw IngestError(FailureKind::Transient, std::string(step) + ": " + e.what());
    }
  };

  const std::string token = tokens_.GetToken();
  HttpResponse response = send(token);
  if (response.status != 401) {
    return response;
  }
  // The token may have been revoked or expired early: one fresh token, one retry.
  tokens_.Invalidate(token);
  response = send(tokens_.GetToken());
  if (response.status == 401) {
    throw IngestError(FailureKind::Unauthorized,
                      std::string(step) +
                          ": HTTP 401 even with a fresh token: " + DescribeErrorBody(response.body),
                      401);
  }
  return response;
}

std::string IngestClient::CreateOrder(const Json::Value& metadata) {
  HttpRequest request;
  request.method = config_.newOrder.method;
  request.url = config_.url + config_.newOrder.path;
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  request.body = ToJson(metadata);
  const HttpResponse response = CallApi(std::move(request), "new-order");
  if (response.status != 200 && response.status != 201) {
    throw ErrorFromResponse(response, "new-order", WallClockNow());
  }
  return ParseOrderResponse(response.body);
}

UploadTarget IngestClient::RequestUploadUrl(const UploadUrlRequest& upload) {
  HttpRequest request;
  request.method = config_.upload.method;
  request.url = AppendQuery(
      config_.url + config_.upload.path,
      "order_id=" + UrlEncode(upload.orderId) + "&filename=" + UrlEncode(upload.filename) +
          "&content_type=" + UrlEncode(upload.contentType) + "&study_uid=" +
          UrlEncode(upload.studyInstanceUid) + "&size=" + std::to_string(upload.size));
  request.headers = {{"Accept", "application/json"}};
  const HttpResponse response = CallApi(std::move(request), "upload");
  if (response.status != 200) {
    throw ErrorFromResponse(response, "upload", WallClockNow());
  }
  UploadTarget target = ParseUploadUrlResponse(response.body);
  CheckUploadTarget(target);
  return target;
}

long IngestClient::Upload(const UploadTarget& target, std::shared_ptr<IBodySource> body,
                          const std::string& contentType, const std::string& expectedMd5Hex) {
  return UploadAndTag(target, std::move(body), contentType, expectedMd5Hex).status;
}

IngestClient::Stored IngestClient::UploadAndTag(const UploadTarget& target,
                                                std::shared_ptr<IBodySource> body,
                                                const std::string& contentType,
                                                const std::string& expectedMd5Hex) {
  // Checked again here: a target may not come from RequestUploadUrl.
  CheckUploadTarget(target);
  HttpRequest request;
  request.method = "PUT";
  request.url = target.url;
  request.bodySource = std::move(body);
  if (request.bodySource) {
    request.bodySource->Rewind();
  }
  const bool targetSetsType =
      std::any_of(target.headers.begin(), target.headers.end(),
                  [](const auto& header) { return EqualsNoCase(header.first, "content-type"); });
  if (!targetSetsType && !contentType.empty()) {
    request.headers.emplace_back("Content-Type", contentType);
  }
  for (const auto& header : target.headers) {
    request.headers.emplace_back(header.first, header.second);
  }

  const std::string where = "PUT " + RedactUrl(target.url);
  HttpResponse response;
  try {
    response = http_.Execute(request);
  } catch (const HttpAborted&) {
    throw;  // stopping, not failing: the caller must not retry or count it
  } catch (const HttpTransportError& e) {
    // The transport's message already names the method and the redacted URL.
    throw IngestError(FailureKind::Transient, ScrubQueryValues(e.what(), target.url));
  }

  if (response.status == 403 || response.status == 401) {
    // The store refuses the signature (expired, tampered): a new URL may work.
    throw IngestError(
        FailureKind::UrlRefused,
        ScrubQueryValues(where + ": HTTP " + std::to_string(response.status) +
                             " (URL expired or refused): " + DescribeErrorBody(response.body),
                         target.url),
        response.status);
  }
  if (response.status != 200) {
    const IngestError error = ErrorFromResponse(response, where.c_str(), WallClockNow());
    throw IngestError(error.Kind(), ScrubQueryValues(error.what(), target.url), error.HttpStatus(),
                      error.RetryAfter());
  }
  if (request.bodySource) {
    meter_.RecordUploadAnswer(request.bodySource->Size(), response.answerSeconds);
  }
  const std::string etag = StripETag(response.Header("etag"));
  if (!expectedMd5Hex.empty()) {
    // No ETag: nothing to compare (some stores omit it); a different one: corrupted.
    if (!etag.empty() && ToLower(etag) != ToLower(expectedMd5Hex)) {
      throw IngestError(FailureKind::Transient,
                        where + ": ETag mismatch (sent MD5 " + ToLower(expectedMd5Hex) +
                            ", store answered " + etag.substr(0, 64) + ")",
                        response.status);
    }
  }
  return Stored{response.status, etag};
}

void IngestClient::AddMetadata(const std::string& orderId, const Json::Value& metadata) {
  HttpRequest request;
  request.method = config_.addMetadata.method;
  request.url =
      AppendQuery(config_.url + config_.addMetadata.path, "order_id=" + UrlEncode(orderId));
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  request.body = ToJson(metadata);
  const HttpResponse response = CallApi(std::move(request), "add-metadata");
  if (response.status != 200 && response.status != 204) {
    throw ErrorFromResponse(response, "add-metadata", WallClockNow());
  }
}

void IngestClient::AddMetadataByStudy(const std::string& studyInstanceUid,
                                      const Json::Value& metadata) {
  HttpRequest request;
  request.method = config_.addMetadata.method;
  request.url = AppendQuery(config_.url + config_.addMetadata.path,
                            "study_uid=" + UrlEncode(studyInstanceUid));
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  request.body = ToJson(metadata);
  const HttpResponse response = CallApi(std::move(request), "add-metadata");
  if (response.status != 200 && response.status != 204) {
    throw ErrorFromResponse(response, "add-metadata", WallClockNow());
  }
}

void IngestClient::CheckUploadTarget(const UploadTarget& target) const {
  if (!IsAllowedUploadHost(target.url)) {
    throw HostRefused(target.url);
  }
  if (IsSchemeDowngrade(target.url)) {
    throw IngestError(FailureKind::Permanent,
                      "presigned URL for host " + UrlHost(target.url) +
                          " is http:// while Url is https:// (the upload would not be "
                          "encrypted); set AllowInsecureUploads to true to allow it");
  }
  for (const auto& header : target.headers) {
    if (IsReservedUploadHeader(header.first)) {
      throw IngestError(FailureKind::Permanent,
                        "upload: header \"" + header.first +
                            "\" may not be set by the upload endpoint (it would redirect or "
                            "reframe the PUT)");
    }
  }
}

bool IngestClient::IsSchemeDowngrade(const std::string& url) const {
  // An API on http:// (a local simulator) downgrades nothing.
  return !config_.allowInsecureUploads && ParseUrl(config_.url).scheme == "https" &&
         ParseUrl(url).scheme == "http";
}

bool IngestClient::IsAllowedUploadHost(const std::string& url) const {
  // UrlHost only accepts http and https URLs with a host curl reads unambiguously.
  const std::string host = UrlHost(url);
  if (host.empty()) {
    return false;
  }
  std::vector<std::string> patterns = config_.allowedUploadHosts;
  if (patterns.empty()) {
    // Same default as the configuration: the API's own host.
    const std::string apiHost = UrlHost(config_.url);
    if (!apiHost.empty()) {
      patterns.push_back(apiHost);
    }
  }
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pattern) {
    return !pattern.empty() && GlobMatch(ToLower(pattern), host);
  });
}

}  // namespace CloudIngest
