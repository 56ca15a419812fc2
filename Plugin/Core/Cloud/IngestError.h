#pragma once
#include <optional>
#include <stdexcept>
#include <string>

namespace CloudIngest {

// How a failed step should be handled (docs/REFERENCE.md, Ingestion API, status handling).
enum class FailureKind {
  Transient,     // 5xx, 429, timeouts, resets, bad ETag: retry with backoff
  Unauthorized,  // 401 even after a fresh token
  UrlRefused,    // 403 on a PUT: ask for a new presigned URL
  Permanent,     // other 4xx, malformed answers, refused upload host: fail the study attempt
};

class IngestError : public std::runtime_error {
 public:
  IngestError(FailureKind kind, const std::string& message, long httpStatus = 0,
              std::optional<double> retryAfterSeconds = std::nullopt)
      : std::runtime_error(message),
        kind_(kind),
        httpStatus_(httpStatus),
        retryAfter_(retryAfterSeconds) {}
  FailureKind Kind() const { return kind_; }
  long HttpStatus() const { return httpStatus_; }
  std::optional<double> RetryAfter() const { return retryAfter_; }

 private:
  FailureKind kind_;
  long httpStatus_;
  std::optional<double> retryAfter_;
};

}  // namespace CloudIngest
