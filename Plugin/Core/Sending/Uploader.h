#pragma once
// The HTTP side of one send attempt: each step retried with backoff, and
// one path from a payload to the cloud (a presigned URL, then its PUT) for
// instances, ZIPs and NIfTI bundles alike.
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "Core/Cloud/Http.h"
#include "Core/Cloud/IngestClient.h"
#include "Core/Cloud/IngestError.h"
#include "Core/Sending/AttemptErrors.h"
#include "Core/Sending/AttemptState.h"

namespace CloudIngest {

// How a step's retries treat the service's grouping window.
enum class GroupRule {
  Ignore,            // before the first PUT or after the last one
  KeepWithinWindow,  // between two PUTs: a wait that would split the study
                     // in the cloud aborts the attempt instead
};

// One file to upload and what its request and audit records say about it.
struct UploadPayload {
  std::shared_ptr<IBodySource> body;
  uint64_t size = 0;
  std::string md5Hex;
  std::string sha256Hex;
  std::string filename;
  std::string contentType;
  std::string sopInstanceUid;  // empty for a ZIP
  std::string detail;          // for the audit log
};

// A presigned URL asked for ahead, while the thread's previous PUT runs:
// each thread then waits for one exchange per instance instead of two.
class UrlAskedAhead {
 public:
  struct Issued {
    UploadTarget target;
    double at = 0;
  };
  UrlAskedAhead() = default;
  UrlAskedAhead(std::future<std::optional<Issued>> issued, uint64_t askedSize)
      : issued_(std::move(issued)), askedSize_(askedSize) {}

 private:
  friend class Uploader;
  std::future<std::optional<Issued>> issued_;  // not valid when none was asked
  uint64_t askedSize_ = 0;
};

class Uploader {
 public:
  explicit Uploader(AttemptState& attempt) : attempt_(attempt) {}

  // Runs `call` (one HTTP exchange) with retries and backoff. Throws
  // Interrupted, PermanentFailure or AttemptAborted when it cannot succeed.
  template <typename F>
  auto Step(const char* name, GroupRule rule, F&& call) -> decltype(call()) {
    for (unsigned tries = 1;; tries++) {
      attempt_.ThrowIfStopping();
      try {
        return call();
      } catch (const HttpAborted&) {
        throw Interrupted();  // the transfer was cut short by the shutdown
      } catch (const IngestError& e) {
        WaitBeforeRetry(name, rule, e, tries);
      }
    }
  }

  // The URL request for a file of this study's order.
  UploadUrlRequest UrlRequest(const std::string& filename, const std::string& contentType,
                              uint64_t size) const;

  // Asks for `request`'s URL on another thread. Returns an empty ask when no
  // thread could be started: the URL is then asked in turn.
  UrlAskedAhead AskAhead(UploadUrlRequest request, std::string sopInstanceUid);
  // The URL asked ahead, when it was issued for `size` bytes and is not about
  // to expire. Waits for the answer.
  std::optional<UploadTarget> TakeUsable(UrlAskedAhead& ahead, uint64_t size);

  // One presigned URL (`askedAhead`, if given, for the first try) and one
  // PUT, with retries; a refused URL (403) is replaced by a new one, a
  // bounded number of times.
  void PutWithFreshUrl(const UploadPayload& payload,
                       std::optional<UploadTarget> askedAhead = std::nullopt);

  // A URL asked ahead is used while less than this share of its lifetime is gone.
  static constexpr double kUsableShareOfUrlLifetime = 0.5;
  // A retry between two PUTs may leave the study idle for this share of the
  // grouping window at most.
  static constexpr double kIdleShareOfGroupWindow = 0.75;

 private:
  // Throws when `error` ends the step, else logs and waits before the next try.
  void WaitBeforeRetry(const char* name, GroupRule rule, const IngestError& error, unsigned tries);
  void CheckGroupWindow(double delay, const char* step, const char* error) const;
  UploadTarget FreshUrl(const UploadPayload& payload, const UploadUrlRequest& request);
  IngestClient::Stored Put(const UploadPayload& payload, const UploadTarget& target);
  void AuditUrlIssued(const UploadTarget& target, uint64_t size, const std::string& sopInstanceUid,
                      const std::string& detail) const;

  AttemptState& attempt_;
};

}  // namespace CloudIngest
