#include "StudySender.h"

#include <json/json.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <system_error>
#include <thread>
#include <vector>

#include "FileBodySource.h"
#include "Hashes.h"
#include "NiftiConverter.h"
#include "StudyZipper.h"

namespace CloudIngest {

namespace {

// The attempt cannot go on now; the study is queued again and the next
// attempt restarts from its first instance.
class AttemptAborted : public std::runtime_error {
 public:
  explicit AttemptAborted(const std::string& what) : std::runtime_error(what) {}
};

// Retrying cannot help (missing tags, 4xx, refused host).
class PermanentFailure : public std::runtime_error {
 public:
  explicit PermanentFailure(const std::string& what) : std::runtime_error(what) {}
};

// The store refused a presigned URL (403): the caller asks for a new one.
class NeedNewUrl : public std::runtime_error {
 public:
  explicit NeedNewUrl(const std::string& what) : std::runtime_error(what) {}
};

class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

bool Contains(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

std::string Trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

bool Matches(const std::vector<std::string>& modalities, const std::vector<std::string>& aets,
             const StudyInfo& study) {
  if (!modalities.empty()) {
    bool any = false;
    for (const auto& entry : study.modalities) {
      // Multi-valued entries ("CT\\PT") count for each of their values.
      std::istringstream values(entry);
      for (std::string m; std::getline(values, m, '\\');) {
        any = any || Contains(modalities, Trim(m));
      }
    }
    if (!any) return false;
  }
  return aets.empty() || Contains(aets, Trim(study.callingAet));
}

// A manual send's mode, else the first matching UploadModeRules entry, else UploadMode.
UploadMode ModeFor(const Configuration& config, const StudyRecord& record, const StudyInfo& study) {
  if (record.mode == "Zip") return UploadMode::Zip;
  if (record.mode == "Nifti") return UploadMode::Nifti;
  if (record.mode == "Instances") return UploadMode::Instances;
  for (const auto& rule : config.uploadModeRules) {
    if (Matches(rule.modalities, rule.callingAets, study)) return rule.mode;
  }
  return config.uploadMode;
}

// A single S3 PUT holds at most 5 GB.
constexpr uint64_t kMaxSinglePut = 5ull * 1000 * 1000 * 1000;

std::string TagString(const Json::Value& tags, const char* name) {
  const Json::Value& v = tags[name];
  return v.isString() ? v.asString() : std::string();
}

}  // namespace

const char* ToString(SendOutcome outcome) {
  switch (outcome) {
    case SendOutcome::Sent:
      return "sent";
    case SendOutcome::Unchanged:
      return "unchanged";
    case SendOutcome::Skipped:
      return "skipped";
    case SendOutcome::Retry:
      return "retry";
    case SendOutcome::Failed:
      return "failed";
    case SendOutcome::Cancelled:
      return "cancelled";
    case SendOutcome::Interrupted:
      return "interrupted";
  }
  return "?";
}

std::string StudySignature(const StudyInfo& study) {
  std::vector<std::string> ids;
  ids.reserve(study.instances.size());
  for (const auto& i : study.instances) ids.push_back(i.orthancId);
  std::sort(ids.begin(), ids.end());
  Digest digest(Digest::Algorithm::Sha256);
  for (const auto& id : ids) digest.Update(id.data(), id.size() + 1);  // include the NUL separator
  return std::to_string(ids.size()) + ":" + digest.HexFinal().substr(0, 32);
}

// The state of one attempt, shared by its upload threads.
class StudySender::Attempt {
 public:
  Attempt(SenderDependencies& d, StudyRecord record) : d_(d), record_(std::move(record)) {}

  SendOutcome Run() {
    StudyInfo study;
    try {
      study = d_.source.GetStudy(record_.orthancId);
    } catch (const StudyNotFound&) {
      d_.log.Warning("CloudIngest: study " + record_.orthancId +
                     " no longer exists; not sending it");
      d_.queue.MarkFailed(record_.orthancId, "the study no longer exists in Orthanc", Now());
      return SendOutcome::Failed;
    }
    const std::string signature = StudySignature(study);
    if (auto skipped = SkipIfNotNeeded(study, signature)) return *skipped;
    if (study.instances.empty()) return Fail("the study has no instances");

    Json::Value metadata;
    try {
      metadata = BuildOrderMetadata(study);
    } catch (const MissingTagError& e) {
      return Fail(e.what());
    } catch (const std::invalid_argument& e) {
      return Fail(std::string("bad order metadata: ") + e.what());
    }
    Identify(study);

    try {
      if (record_.orderId.empty()) {
        record_.orderId = Step("new-order", false, [&] { return d_.client.CreateOrder(metadata); });
        // Kept before anything else can fail, so a later attempt reuses this order.
        d_.queue.Update(record_, Now());
        Audit("order_created");
      }
      switch (ModeFor(d_.config, record_, study)) {
        case UploadMode::Zip:
          SendZip(study);
          break;
        case UploadMode::Nifti:
          SendNifti(study);
          break;
        case UploadMode::Instances:
          UploadAll(study.instances);
          break;
      }
      FlushProgress();
      if (Cancelled()) return SendOutcome::Cancelled;
      Json::Value complete = metadata;
      complete["upload_status"] = "complete";
      complete["number_of_instances_uploaded"] = std::to_string(record_.instancesSent);
      Step("add-metadata", false, [&] {
        d_.client.AddMetadata(record_.orderId, complete);
        return 0;
      });
      Audit("metadata_added");
      Audit("study_sent", [&](AuditEvent& e) {
        e.bytes = static_cast<int64_t>(record_.bytesSent);
        e.detail = std::to_string(record_.instancesSent) + " instances";
      });
      d_.queue.Update(record_, Now());
      d_.queue.MarkSent(record_.orthancId, signature, Now());
      d_.log.Info("CloudIngest: study " + record_.orthancId + " sent (" +
                  std::to_string(record_.instancesSent) + " instances, order " + record_.orderId +
                  ")");
      return SendOutcome::Sent;
    } catch (const Interrupted&) {
      FlushProgressAfterFailure();
      if (Cancelled()) return SendOutcome::Cancelled;
      // Orthanc is stopping: the study goes back to the queue for the next start.
      d_.queue.MarkRetry(record_.orthancId, "interrupted by Orthanc's shutdown", Now(), Now(),
                         false);
      return SendOutcome::Interrupted;
    } catch (const PermanentFailure& e) {
      return Fail(e.what());
    } catch (const std::exception& e) {
      return RetryLater(e.what());
    }
  }

 private:
  // Automatic sends only: a study outside Filters, or one already sent as it
  // is now (or whose late instances are ignored), is not sent.
  std::optional<SendOutcome> SkipIfNotNeeded(const StudyInfo& study, const std::string& signature) {
    if (record_.trigger == "manual") return std::nullopt;
    if (!Matches(d_.config.filters.modalities, d_.config.filters.callingAets, study)) {
      d_.log.Info("CloudIngest: study " + record_.orthancId + " does not match Filters; not sent");
      d_.queue.Remove(record_.orthancId);
      return SendOutcome::Skipped;
    }
    if (record_.sentSignature.empty()) return std::nullopt;
    if (record_.sentSignature == signature) {
      // "Stable" fired again for a study already sent as it is.
      d_.queue.AddHistory(record_.orthancId, {Now(), record_.attempts, "unchanged",
                                              "already sent with the same instances"});
      d_.queue.MarkSent(record_.orthancId, signature, Now(), false);
      return SendOutcome::Unchanged;
    }
    if (d_.config.lateInstances == LateInstancePolicy::Ignore) {
      d_.queue.AddHistory(record_.orthancId, {Now(), record_.attempts, "late-instances-ignored",
                                              "instances arrived after the study was sent"});
      d_.queue.MarkSent(record_.orthancId, record_.sentSignature, Now(), false);
      return SendOutcome::Unchanged;
    }
    return std::nullopt;
  }

  // Default keys from the stored tags, OrderMetadata, then a manual send's extras.
  Json::Value BuildOrderMetadata(const StudyInfo& study) {
    Json::Value extra(Json::objectValue);
    if (!record_.extraMetadata.empty()) {
      Json::CharReaderBuilder builder;
      std::string errors;
      std::istringstream in(record_.extraMetadata);
      if (!Json::parseFromStream(builder, in, &extra, &errors) || !extra.isObject()) {
        extra = Json::Value(Json::objectValue);
      }
    }
    const Json::Value firstTags = d_.source.GetInstanceTags(study.instances.front().orthancId);
    return OrderBuilder(d_.config).Build(study, firstTags, extra);
  }

  // What the operator page shows of the study, recorded before the first request.
  void Identify(const StudyInfo& study) {
    record_.studyInstanceUid = TagString(study.mainTags, "StudyInstanceUID");
    record_.patientName = TagString(study.mainTags, "PatientName");
    record_.patientId = TagString(study.mainTags, "PatientID");
    record_.studyDate = TagString(study.mainTags, "StudyDate");
    record_.studyDescription = TagString(study.mainTags, "StudyDescription");
    record_.instancesTotal = static_cast<unsigned>(study.instances.size());
    record_.instancesSent = 0;
    record_.bytesSent = 0;
    d_.queue.Update(record_, Now());
  }

  double Now() const { return d_.clock.Now(); }
  bool Cancelled() const { return d_.isCancelled && d_.isCancelled(record_.orthancId); }

  template <typename Fill>
  void Audit(const char* event, Fill&& fill) {
    AuditEvent e;
    e.event = event;
    e.orthancStudyId = record_.orthancId;
    e.studyInstanceUid = record_.studyInstanceUid;
    e.orderId = record_.orderId;
    e.attempt = record_.attempts;
    e.user = record_.requestedBy;
    fill(e);
    d_.audit.Record(e, Now());
  }
  void Audit(const char* event) {
    Audit(event, [](AuditEvent&) {});
  }

  // What was uploaded before a failure still counts; a database that fails
  // here is reported by the outcome's own write just after.
  void FlushProgressAfterFailure() {
    try {
      FlushProgress();
    } catch (const std::exception& e) {
      d_.log.Error(std::string("CloudIngest: cannot record progress: ") + e.what());
    }
  }

  SendOutcome Fail(const std::string& reason) {
    FlushProgressAfterFailure();
    d_.log.Error("CloudIngest: study " + record_.orthancId + " failed: " + reason);
    RecordFailureAudit(reason);
    d_.queue.MarkFailed(record_.orthancId, reason, Now());
    return SendOutcome::Failed;
  }

  SendOutcome RetryLater(const std::string& reason) {
    FlushProgressAfterFailure();
    if (record_.attempts >= d_.config.retry.maxStudyAttempts) {
      return Fail(reason + " (gave up after " + std::to_string(record_.attempts) + " attempts)");
    }
    const double delay =
        std::min(d_.config.retry.studyRetryDelay * std::pow(2.0, record_.attempts - 1.0), 900.0);
    d_.log.Warning("CloudIngest: study " + record_.orthancId + " attempt " +
                   std::to_string(record_.attempts) + " failed (" + reason + "); retrying in " +
                   std::to_string(static_cast<int>(delay)) + " s");
    RecordFailureAudit(reason);
    d_.queue.MarkRetry(record_.orthancId, reason, Now() + delay, Now());
    return SendOutcome::Retry;
  }

  void RecordFailureAudit(const std::string& reason) {
    try {
      Audit("study_failed", [&](AuditEvent& e) { e.detail = reason; });
    } catch (const std::exception& e) {
      d_.log.Error(std::string("CloudIngest: cannot write the audit log: ") + e.what());
    }
  }

  // Runs one HTTP step with retries and backoff. `keepsGroup`: the step sits
  // between two PUTs, so waiting longer than the grouping window would split
  // the study in the cloud: abort the attempt instead.
  template <typename F>
  auto Step(const char* name, bool keepsGroup, F&& call) -> decltype(call()) {
    for (unsigned attempt = 1;; attempt++) {
      if (d_.stop.Stopped() || Cancelled()) throw Interrupted();
      try {
        return call();
      } catch (const IngestError& e) {
        if (e.Kind() == FailureKind::Permanent) {
          throw PermanentFailure(std::string(name) + ": " + e.what());
        }
        if (!d_.retry.ShouldRetry(e, attempt)) {
          throw AttemptAborted(std::string(name) + ": " + e.what() + " (after " +
                               std::to_string(attempt) + " tries)");
        }
        const double delay = d_.retry.NextDelay(attempt, e.RetryAfter());
        if (keepsGroup) CheckGroupWindow(delay, name, e.what());
        d_.log.Warning(std::string("CloudIngest: ") + name + " failed for study " +
                       record_.orthancId + " (" + e.what() + "); try " +
                       std::to_string(attempt + 1) + " in " + std::to_string(delay) + " s");
        if (!d_.stop.WaitFor(delay)) throw Interrupted();
      }
    }
  }

  void CheckGroupWindow(double delay, const char* step, const char* error) {
    const double idle = Now() + delay - lastProgress_.load();
    if (idle > d_.config.groupWindow * 0.75) {
      throw AttemptAborted(std::string(step) + ": " + error +
                           "; cannot continue within the service's grouping window, the next "
                           "attempt restarts from the first instance");
    }
  }

  void UploadAll(const std::vector<InstanceInfo>& instances) {
    lastProgress_ = Now();
    std::atomic<size_t> next{0};
    std::atomic<bool> abort{false};
    std::exception_ptr firstError;
    std::mutex errorMutex;
    auto worker = [&] {
      UrlAhead ahead;  // the URL of `index`, asked during the previous PUT
      size_t index = next.fetch_add(1);
      while (index < instances.size() && !abort.load()) {
        const size_t following = next.fetch_add(1);
        UrlAhead nextAhead;
        if (following < instances.size()) nextAhead = RequestUrlAhead(instances[following]);
        try {
          UploadOne(instances[index], ahead);
        } catch (...) {
          std::lock_guard<std::mutex> lock(errorMutex);
          if (!firstError) firstError = std::current_exception();
          abort = true;
        }
        ahead = std::move(nextAhead);
        index = following;
      }
    };
    const size_t threads =
        std::max<size_t>(1, std::min<size_t>(d_.config.concurrency, instances.size()));
    std::vector<std::thread> pool;
    for (size_t i = 1; i < threads; i++) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
    if (firstError) std::rethrow_exception(firstError);
  }

  // A presigned URL asked for ahead, while the thread's previous PUT runs:
  // each thread then waits for one exchange per instance instead of two.
  // Empty (not valid) when none was asked; holds nullopt when asking failed.
  struct IssuedUrl {
    UploadTarget target;
    double at = 0;
  };
  using UrlAhead = std::future<std::optional<IssuedUrl>>;

  UploadUrlRequest UrlRequestFor(const InstanceInfo& instance, uint64_t size) const {
    return {record_.orderId, instance.sopInstanceUid + ".dcm", "application/dicom",
            record_.studyInstanceUid, size};
  }

  // Asked with the size Orthanc listed; empty when no thread could be started
  // (the URL is then asked in turn).
  UrlAhead RequestUrlAhead(const InstanceInfo& instance) {
    try {
      return std::async(std::launch::async,
                        [this, request = UrlRequestFor(instance, instance.size),
                         sop = instance.sopInstanceUid]() -> std::optional<IssuedUrl> {
                          try {
                            UploadTarget target = d_.client.RequestUploadUrl(request);
                            AuditUrlIssued(target, request, sop, "");
                            return IssuedUrl{std::move(target), Now()};
                          } catch (const std::exception&) {
                            return std::nullopt;  // asked again in turn, with retries and reporting
                          }
                        });
    } catch (const std::system_error&) {
      return {};
    }
  }

  void UploadOne(const InstanceInfo& instance, UrlAhead& ahead) {
    if (d_.stop.Stopped() || Cancelled()) throw Interrupted();
    auto body = std::make_shared<StringBodySource>(d_.source.ReadInstance(instance.orthancId));
    const std::string md5 = Md5Hex(body->Data());
    const std::string sha256 = Sha256Hex(body->Data());
    const uint64_t size = body->Size();
    std::optional<UploadTarget> prefetched;
    if (ahead.valid()) {
      if (auto issued = ahead.get();
          issued && instance.size == size &&  // asked with the size Orthanc listed
          Now() - issued->at < issued->target.expiresIn / 2) {  // not about to expire
        prefetched = std::move(issued->target);
      }
    }
    PutWithFreshUrls(UrlRequestFor(instance, size), body, md5, sha256, instance.sopInstanceUid, "",
                     std::move(prefetched));
    RecordProgress(1, size);
  }

  // Zip mode: the whole study as one ZIP, built in a temporary file (removed
  // whatever happens) and sent with one presigned URL.
  void SendZip(const StudyInfo& study) {
    if (StudyZipper::MaximumSize(study, ZipCompression::Store) > kMaxSinglePut) {
      Audit("url_issued", [&](AuditEvent& e) {
        e.detail = "study too large for one ZIP upload (5 GB): sent per instance instead";
      });
      d_.log.Warning("CloudIngest: study " + record_.orthancId +
                     " is larger than 5 GB, sending it per instance instead of as one ZIP");
      UploadAll(study.instances);
      return;
    }
    lastProgress_ = Now();
    StudyZip zip;
    try {
      zip = StudyZipper(d_.source, d_.config.temporaryDirectory, ZipCompression::Store)
                .Zip(study, [&] { return d_.stop.Stopped() || Cancelled(); });
    } catch (const ZipCancelled&) {
      throw Interrupted();
    }
    auto body = std::make_shared<FileBodySource>(zip.Path());
    PutWithFreshUrls({record_.orderId, record_.studyInstanceUid + ".zip", "application/zip",
                      record_.studyInstanceUid, zip.size},
                     body, zip.md5Hex, zip.sha256Hex, "",
                     "zip of " + std::to_string(zip.entryCount) + " instances");
    RecordProgress(static_cast<unsigned>(zip.entryCount), zip.size);
  }

  // Nifti mode: each series that dcm2niix converts (diffusion MR: .nii.gz +
  // .bvec + .bval) goes as one ZIP; the others as DICOM (or not at all, per
  // NiftiFallback), all in the same order.
  void SendNifti(const StudyInfo& study) {
    std::vector<std::string> series;
    for (const auto& i : study.instances) {
      if (!Contains(series, i.seriesInstanceUid)) series.push_back(i.seriesInstanceUid);
    }
    const NiftiConverter converter(d_.source, d_.config.temporaryDirectory, d_.config.dcm2niixPath);
    for (const auto& key : series) {
      lastProgress_ = Now();
      try {
        const NiftiBundle bundle =
            converter.Convert(study, key, [&] { return d_.stop.Stopped() || Cancelled(); });
        std::string bvals;
        for (const double b : bundle.bvals) {
          std::ostringstream value;
          value << b;
          bvals += (bvals.empty() ? "" : ",") + value.str();
        }
        auto body = std::make_shared<FileBodySource>(bundle.Path());
        PutWithFreshUrls({record_.orderId, bundle.seriesInstanceUid + ".nifti.zip",
                          "application/zip", record_.studyInstanceUid, bundle.size},
                         body, bundle.md5Hex, bundle.sha256Hex, "",
                         "nifti of series " + bundle.seriesInstanceUid + ": " +
                             std::to_string(bundle.instanceCount) + " instances, b-values " +
                             bvals);
        RecordProgress(static_cast<unsigned>(bundle.instanceCount), bundle.size);
      } catch (const ZipCancelled&) {
        throw Interrupted();
      } catch (const NiftiNotConvertible& e) {
        std::vector<InstanceInfo> instances;
        for (const auto& i : study.instances) {
          if (i.seriesInstanceUid == key) instances.push_back(i);
        }
        const std::string action = d_.config.niftiFallbackToDicom ? "sent as DICOM" : "not sent";
        d_.log.Warning("CloudIngest: series " + key + " of study " + record_.orthancId +
                       " not converted to NIfTI (" + e.what() + "); " + action);
        d_.queue.AddHistory(record_.orthancId, {Now(), record_.attempts, "nifti-not-convertible",
                                                std::string(e.what()) + "; " + action});
        Audit("upload_failed", [&](AuditEvent& a) {
          a.detail = "nifti not convertible (" + ToString(e.Failure()) + ") for series " + key +
                     ": " + e.what() + "; " + action;
        });
        if (d_.config.niftiFallbackToDicom) UploadAll(instances);
      }
    }
  }

  void AuditUrlIssued(const UploadTarget& target, const UploadUrlRequest& request,
                      const std::string& sopInstanceUid, const std::string& detail) {
    Audit("url_issued", [&](AuditEvent& e) {
      e.sopInstanceUid = sopInstanceUid;
      e.url = target.url;
      e.bytes = static_cast<int64_t>(request.size);
      e.detail = detail;
    });
  }

  // One presigned URL (`prefetched`, if given, for the first try) and one
  // PUT, with retries; a refused URL (403) is replaced by a new one, a
  // bounded number of times.
  void PutWithFreshUrls(const UploadUrlRequest& request, const std::shared_ptr<IBodySource>& body,
                        const std::string& md5, const std::string& sha256,
                        const std::string& sopInstanceUid, const std::string& detail,
                        std::optional<UploadTarget> prefetched = std::nullopt) {
    for (unsigned urlAttempt = 1;; urlAttempt++) {
      UploadTarget target;
      if (prefetched) {
        target = std::move(*prefetched);
        prefetched.reset();
      } else {
        target = Step("upload-url", true, [&] { return d_.client.RequestUploadUrl(request); });
        AuditUrlIssued(target, request, sopInstanceUid, detail);
      }
      try {
        const long status = Step("put", true, [&] {
          try {
            body->Rewind();
            return d_.client.Upload(target, body, request.contentType, md5);
          } catch (const IngestError& e) {
            AuditUploadFailure(sopInstanceUid, request.size, e);
            if (e.Kind() == FailureKind::UrlRefused) throw NeedNewUrl(e.what());
            throw;
          }
        });
        Audit("upload_ok", [&](AuditEvent& e) {
          e.sopInstanceUid = sopInstanceUid;
          e.url = target.url;
          e.bytes = static_cast<int64_t>(request.size);
          e.sha256 = sha256;
          e.httpStatus = status;
          e.detail = detail;
        });
        return;
      } catch (const NeedNewUrl& e) {
        if (urlAttempt >= d_.config.retry.maxAttempts) {
          throw AttemptAborted(std::string("put: ") + e.what() + " (after " +
                               std::to_string(urlAttempt) + " presigned URLs)");
        }
      }
    }
  }

  void AuditUploadFailure(const std::string& sopInstanceUid, uint64_t size,
                          const IngestError& error) {
    Audit("upload_failed", [&](AuditEvent& e) {
      e.sopInstanceUid = sopInstanceUid;
      e.bytes = static_cast<int64_t>(size);
      e.httpStatus = error.HttpStatus();
      e.detail = error.what();
    });
  }

  // Progress reaches the database at most every kProgressInterval (two SQLite
  // writes per instance were half of the plugin's CPU per instance), and
  // always at the end of the uploads (FlushProgress).
  void RecordProgress(unsigned instances, uint64_t size) {
    std::lock_guard<std::mutex> lock(progressMutex_);
    lastProgress_ = Now();
    record_.instancesSent += instances;
    record_.bytesSent += size;
    unflushedInstances_ += instances;
    unflushedBytes_ += size;
    if (Now() - lastFlush_ >= kProgressInterval) FlushProgressLocked();
  }

  void FlushProgress() {
    std::lock_guard<std::mutex> lock(progressMutex_);
    FlushProgressLocked();
  }

  void FlushProgressLocked() {
    lastFlush_ = Now();
    if (unflushedInstances_ > 0) d_.queue.CountUpload(unflushedBytes_, unflushedInstances_);
    unflushedInstances_ = 0;
    unflushedBytes_ = 0;
    d_.queue.Update(record_, Now());
  }

  static constexpr double kProgressInterval = 0.5;  // seconds

  SenderDependencies& d_;
  StudyRecord record_;
  std::mutex progressMutex_;
  std::atomic<double> lastProgress_{0};
  double lastFlush_ = 0;
  unsigned unflushedInstances_ = 0;
  uint64_t unflushedBytes_ = 0;
};

SendOutcome StudySender::Run(const StudyRecord& claimed) {
  try {
    Attempt attempt(d_, claimed);
    return attempt.Run();
  } catch (const std::exception& e) {
    // Database or audit failures: keep the study queued, it is not lost.
    d_.log.Error("CloudIngest: study " + claimed.orthancId + ": " + e.what());
    try {
      d_.queue.MarkRetry(claimed.orthancId, e.what(),
                         d_.clock.Now() + d_.config.retry.studyRetryDelay, d_.clock.Now());
    } catch (const std::exception& again) {
      d_.log.Error(std::string("CloudIngest: cannot record the retry: ") + again.what());
    }
    return SendOutcome::Retry;
  }
}

}  // namespace CloudIngest
