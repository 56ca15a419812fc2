#include "Core/Sending/Uploader.h"

#include <system_error>

namespace CloudIngest {

namespace {

// The store refused a presigned URL (403): the caller asks for a new one.
class NeedNewUrl : public std::runtime_error {
 public:
  explicit NeedNewUrl(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace

void Uploader::WaitBeforeRetry(const char* name, GroupRule rule, const IngestError& error,
                               unsigned tries) {
  SenderDependencies& d = attempt_.deps;
  if (error.Kind() == FailureKind::Permanent) {
    throw PermanentFailure(std::string(name) + ": " + error.what());
  }
  if (!d.retry.ShouldRetry(error, tries)) {
    throw AttemptAborted(std::string(name) + ": " + error.what() + " (after " +
                         std::to_string(tries) + " tries)");
  }
  const double delay = d.retry.NextDelay(tries, error.RetryAfter());
  if (rule == GroupRule::KeepWithinWindow) CheckGroupWindow(delay, name, error.what());
  d.log.Warning(std::string("CloudIngest: ") + name + " failed for study " +
                attempt_.record.orthancId + " (" + error.what() + "); try " +
                std::to_string(tries + 1) + " in " + std::to_string(delay) + " s");
  if (!d.stop.WaitFor(delay)) throw Interrupted();
}

void Uploader::CheckGroupWindow(double delay, const char* step, const char* error) const {
  const double idle = attempt_.Now() + delay - attempt_.progress.LastActive();
  if (idle > attempt_.deps.config.groupWindow * kIdleShareOfGroupWindow) {
    throw AttemptAborted(std::string(step) + ": " + error +
                         "; cannot continue within the service's grouping window, the next "
                         "attempt restarts from the first instance");
  }
}

UploadUrlRequest Uploader::UrlRequest(const std::string& filename, const std::string& contentType,
                                      uint64_t size) const {
  return {attempt_.record.orderId, filename, contentType, attempt_.SentStudyInstanceUid(), size};
}

UrlAskedAhead Uploader::AskAhead(UploadUrlRequest request, std::string sopInstanceUid) {
  const uint64_t askedSize = request.size;
  auto ask = [this, request = std::move(request),
              sop = std::move(sopInstanceUid)]() -> std::optional<UrlAskedAhead::Issued> {
    try {
      UploadTarget target = attempt_.deps.client.RequestUploadUrl(request);
      AuditUrlIssued(target, request.size, sop, "");
      return UrlAskedAhead::Issued{std::move(target), attempt_.Now()};
    } catch (const std::exception&) {
      return std::nullopt;  // asked again in turn, with retries and reporting
    }
  };
  try {
    return UrlAskedAhead(std::async(std::launch::async, std::move(ask)), askedSize);
  } catch (const std::system_error&) {
    return {};
  }
}

std::optional<UploadTarget> Uploader::TakeUsable(UrlAskedAhead& ahead, uint64_t size) {
  if (!ahead.issued_.valid()) return std::nullopt;
  std::optional<UrlAskedAhead::Issued> issued = ahead.issued_.get();
  if (!issued || ahead.askedSize_ != size) return std::nullopt;
  if (attempt_.Now() - issued->at >= issued->target.expiresIn * kUsableShareOfUrlLifetime) {
    return std::nullopt;  // about to expire
  }
  return std::move(issued->target);
}

void Uploader::PutWithFreshUrl(const UploadPayload& payload,
                               std::optional<UploadTarget> askedAhead) {
  const UploadUrlRequest request = UrlRequest(payload.filename, payload.contentType, payload.size);
  for (unsigned urlAttempt = 1;; urlAttempt++) {
    UploadTarget target;
    if (askedAhead) {
      target = std::move(*askedAhead);
      askedAhead.reset();
    } else {
      target = FreshUrl(payload, request);
    }
    try {
      const IngestClient::Stored stored =
          Step("put", GroupRule::KeepWithinWindow, [&] { return Put(payload, target); });
      attempt_.Audit("upload_ok", [&](AuditEvent& e) {
        e.sopInstanceUid = payload.sopInstanceUid;
        e.url = target.url;
        e.bytes = static_cast<int64_t>(payload.size);
        e.sha256 = payload.sha256Hex;
        e.httpStatus = stored.status;
        e.detail = payload.detail;
      });
      attempt_.receipt.Add(ReceiptFile{payload.sopInstanceUid, payload.filename, payload.size,
                                       payload.sha256Hex, payload.md5Hex, stored.etag});
      return;
    } catch (const NeedNewUrl& e) {
      if (urlAttempt >= attempt_.deps.config.retry.maxAttempts) {
        throw AttemptAborted(std::string("put: ") + e.what() + " (after " +
                             std::to_string(urlAttempt) + " presigned URLs)");
      }
    }
  }
}

UploadTarget Uploader::FreshUrl(const UploadPayload& payload, const UploadUrlRequest& request) {
  UploadTarget target = Step("upload-url", GroupRule::KeepWithinWindow,
                             [&] { return attempt_.deps.client.RequestUploadUrl(request); });
  AuditUrlIssued(target, request.size, payload.sopInstanceUid, payload.detail);
  return target;
}

// One PUT; a failure is audited, and a refused URL (403) asks for a new one.
IngestClient::Stored Uploader::Put(const UploadPayload& payload, const UploadTarget& target) {
  try {
    payload.body->Rewind();
    return attempt_.deps.client.UploadAndTag(target, payload.body, payload.contentType,
                                             payload.md5Hex);
  } catch (const IngestError& e) {
    attempt_.Audit("upload_failed", [&](AuditEvent& a) {
      a.sopInstanceUid = payload.sopInstanceUid;
      a.bytes = static_cast<int64_t>(payload.size);
      a.httpStatus = e.HttpStatus();
      a.detail = e.what();
    });
    if (e.Kind() == FailureKind::UrlRefused) throw NeedNewUrl(e.what());
    throw;
  }
}

void Uploader::AuditUrlIssued(const UploadTarget& target, uint64_t size,
                              const std::string& sopInstanceUid, const std::string& detail) const {
  attempt_.Audit("url_issued", [&](AuditEvent& e) {
    e.sopInstanceUid = sopInstanceUid;
    e.url = target.url;
    e.bytes = static_cast<int64_t>(size);
    e.detail = detail;
  });
}

}  // namespace CloudIngest
