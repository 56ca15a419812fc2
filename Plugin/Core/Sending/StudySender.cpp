#include "Core/Sending/StudySender.h"

#include <json/json.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <sstream>
#include <vector>

#include "Core/Hashes.h"
#include "Core/Sending/AttemptErrors.h"
#include "Core/Sending/AttemptState.h"
#include "Core/Sending/DeidentifiedSource.h"
#include "Core/Sending/StudyFilter.h"
#include "Core/Sending/UploadModes.h"
#include "Core/Sending/UploadPlan.h"
#include "Core/Sending/Uploader.h"
#include "Core/Time.h"

namespace CloudIngest {

namespace {

// Seconds (one try a second) a new order's id waits for the database.
constexpr unsigned kOrderIdTries = 30;

// The reason kept when MaxStudyAttempts are used up.
std::string GaveUp(const std::string& reason, unsigned attempts) {
  return reason + " (gave up after " + std::to_string(attempts) + " attempts)";
}

std::string TagString(const Json::Value& tags, const char* name) {
  const Json::Value& v = tags[name];
  return v.isString() ? v.asString() : std::string();
}

}  // namespace

const char* ToString(SendOutcome outcome) {
  // In the order of the enum.
  static const char* const kNames[] = {"sent",   "unchanged", "skipped",     "retry",
                                       "failed", "cancelled", "interrupted", "deferred"};
  const auto index = static_cast<size_t>(outcome);
  return index < std::size(kNames) ? kNames[index] : "?";
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

// One attempt: decides whether the study goes, then order, uploads (per the
// study's mode) and add-metadata, and records how it ended.
class StudySender::Attempt {
 public:
  Attempt(SenderDependencies& d, StudyRecord record)
      : d_(d), state_(d, std::move(record)), record_(state_.record), uploader_(state_) {}

  SendOutcome Run() {
    StudyInfo study;
    try {
      study = d_.source.GetStudy(record_.orthancId);
    } catch (const StudyNotFound&) {
      d_.log.Warning("CloudIngest: study " + record_.orthancId +
                     " no longer exists; not sending it");
      d_.queue.MarkFailed(record_, "the study no longer exists in Orthanc", Now());
      return SendOutcome::Failed;
    }
    if (auto deferred = DeferWhileInstancesArrive(study)) return *deferred;
    const std::string signature = StudySignature(study);
    if (auto skipped = SkipIfNotNeeded(study, signature)) return *skipped;
    if (study.instances.empty()) return Fail("the study has no instances");

    StudyInfo sent = study;  // what the cloud sees of it
    if (const DeidentifySettings* settings = DeidentifyFor(d_.config, study)) {
      Identify(study);
      if (d_.deidentifier == nullptr) return Fail("de-identification is on but unavailable");
      deidentified_.emplace(d_.source, *d_.deidentifier, *settings);
      sent = deidentified_->Pseudonymise(study);
      if (const auto& refusal = deidentified_->Refusal()) return Fail(*refusal);
      state_.source = &*deidentified_;
      state_.pseudonymousStudyInstanceUid = deidentified_->StudyInstanceUid();
    }

    Json::Value metadata;
    try {
      metadata = BuildOrderMetadata(sent);
    } catch (const MissingTagError& e) {
      return Fail(e.what());
    } catch (const std::invalid_argument& e) {
      return Fail(std::string("bad order metadata: ") + e.what());
    } catch (const PermanentFailure& e) {
      return Fail(e.what());
    }
    if (!deidentified_) Identify(study);  // a de-identified study was identified above
    return Send(sent, metadata, signature);
  }

 private:
  // The exchanges with the cloud; every failure ends in the queue here.
  SendOutcome Send(const StudyInfo& study, const Json::Value& metadata,
                   const std::string& signature) {
    try {
      CreateOrderOnce(metadata);
      UploadFiles(study);
      state_.progress.Flush();
      if (state_.Cancelled()) return SendOutcome::Cancelled;
      Complete(metadata, signature);
      return SendOutcome::Sent;
    } catch (const Interrupted&) {
      state_.progress.FlushAfterFailure(d_.log);
      if (state_.Cancelled()) return SendOutcome::Cancelled;
      // Orthanc is stopping: the study goes back to the queue for the next start.
      d_.queue.MarkRetry(record_, "interrupted by Orthanc's shutdown", Now(), Now(),
                         RetryReason::Interrupted);
      return SendOutcome::Interrupted;
    } catch (const PermanentFailure& e) {
      return Fail(e.what());
    } catch (const std::exception& e) {
      return RetryLater(e.what());
    }
  }

  void CreateOrderOnce(const Json::Value& metadata) {
    if (!record_.orderId.empty()) return;
    record_.orderId = uploader_.Step("new-order", GroupRule::Ignore,
                                     [&] { return d_.client.CreateOrder(metadata); });
    // Kept before anything else can fail, so a later attempt reuses this
    // order. A database that is restarting is waited for: losing the id
    // would make the next attempt open a second order.
    KeepOrderId();
    state_.Audit("order_created");
  }

  void KeepOrderId() {
    for (unsigned tries = 1;; ++tries) {
      try {
        d_.queue.Update(record_, Now());
        return;
      } catch (const DatabaseError& e) {
        if (tries >= kOrderIdTries) throw;
        d_.log.Warning("CloudIngest: study " + record_.orthancId + ": cannot record order " +
                       record_.orderId + " yet (" + e.what() + "); trying again");
        if (!d_.stop.WaitFor(1.0)) throw;
      }
    }
  }

  void UploadFiles(const StudyInfo& study) {
    const UploadPlan plan =
        PlanUpload(d_.config, ModeFor(d_.config, record_, study), study, d_.client.Waits());
    state_.mode = plan.mode;
    state_.connections = plan.connections;
    if (!plan.reason.empty()) {
      d_.queue.AddHistory(record_, {Now(), record_.attempts, "upload-plan", plan.reason});
    }
    switch (state_.mode) {
      case UploadMode::Zip:
        SendZip(state_, uploader_, study);
        break;
      case UploadMode::Nifti:
        SendNifti(state_, uploader_, study);
        break;
      case UploadMode::Instances:
      case UploadMode::Auto:  // never left by PlanUpload
        SendInstances(state_, uploader_, study.instances);
        break;
    }
  }

  // What this attempt put in the cloud, for GET /studies/{id}/receipt.
  void SaveReceipt() {
    const ReceiptHeader header{record_.orthancId,
                               record_.studyInstanceUid,
                               record_.orderId,
                               d_.config.cluster.nodeName,
                               ToString(state_.mode),
                               state_.startedAt,
                               Now()};
    d_.queue.SaveReceipt(record_.orthancId,
                         CanonicalJson(BuildReceipt(header, state_.receipt.Files())));
  }

  // add-metadata with upload_status "complete", then the study is sent.
  void Complete(const Json::Value& metadata, const std::string& signature) {
    Json::Value complete = metadata;
    complete["upload_status"] = "complete";
    complete["number_of_instances_uploaded"] = std::to_string(record_.instancesSent);
    uploader_.Step("add-metadata", GroupRule::Ignore, [&] {
      d_.client.AddMetadata(record_.orderId, complete);
      return 0;
    });
    state_.Audit("metadata_added");
    state_.Audit("study_sent", [&](AuditEvent& e) {
      e.bytes = static_cast<int64_t>(record_.bytesSent);
      e.detail = std::to_string(record_.instancesSent) + " instances";
    });
    d_.queue.Update(record_, Now());
    SaveReceipt();
    d_.queue.MarkSent(record_, signature, Now());
    d_.log.Info("CloudIngest: study " + record_.orthancId + " sent (" +
                std::to_string(record_.instancesSent) + " instances, order " + record_.orderId +
                ")");
  }

  // Automatic sends only. Orthanc decides StableStudy per node; with several
  // nodes on one index, another node may still be adding instances. The
  // study's LastUpdate is shared: the send waits until it is StableAge old.
  // (One node needs no check: its own StableStudy already waited.)
  std::optional<SendOutcome> DeferWhileInstancesArrive(const StudyInfo& study) {
    if (!d_.config.cluster.sharedStore || record_.trigger == "manual") return std::nullopt;
    const std::optional<double> lastUpdate = ParseOrthancTime(study.lastUpdate);
    if (!lastUpdate) return std::nullopt;
    // LastUpdate holds whole seconds: the instance may be up to 1 s younger.
    const double stableAt = *lastUpdate + 1 + d_.config.cluster.stableAge;
    if (Now() >= stableAt) return std::nullopt;
    const std::string why = "an instance was added " +
                            std::to_string(static_cast<long>(Now() - *lastUpdate)) +
                            " s ago (on this or another node); waiting until the study is stable";
    d_.queue.Postpone(record_, stableAt, why, Now());
    return SendOutcome::Deferred;
  }

  // Automatic sends only: a study outside Filters, or one already sent as it
  // is now (or whose late instances are ignored), is not sent.
  std::optional<SendOutcome> SkipIfNotNeeded(const StudyInfo& study, const std::string& signature) {
    if (record_.trigger == "manual") return std::nullopt;
    if (!StudyMatches(d_.config.filters.modalities, d_.config.filters.callingAets, study)) {
      d_.log.Info("CloudIngest: study " + record_.orthancId + " does not match Filters; not sent");
      d_.queue.Remove(record_);
      return SendOutcome::Skipped;
    }
    if (record_.sentSignature.empty()) return std::nullopt;
    if (record_.sentSignature == signature) {
      // "Stable" fired again for a study already sent as it is.
      d_.queue.AddHistory(
          record_, {Now(), record_.attempts, "unchanged", "already sent with the same instances"});
      d_.queue.MarkSent(record_, signature, Now(), false);
      return SendOutcome::Unchanged;
    }
    if (d_.config.lateInstances == LateInstancePolicy::Ignore) {
      d_.queue.AddHistory(record_, {Now(), record_.attempts, "late-instances-ignored",
                                    "instances arrived after the study was sent"});
      d_.queue.MarkSent(record_, record_.sentSignature, Now(), false);
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
    // De-identified: the tags of the de-identified file, so the order says nothing the file does
    // not.
    const Json::Value firstTags = state_.source->GetInstanceTags(study.instances.front().orthancId);
    Json::Value order = OrderBuilder(d_.config).Build(study, firstTags, extra);
    if (deidentified_) DropReidentifyingKeys(order);
    return order;
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
    state_.progress.Flush();  // the store's record, and the send's first progress
  }

  double Now() const { return d_.clock.Now(); }

  SendOutcome Fail(const std::string& reason) {
    state_.progress.FlushAfterFailure(d_.log);
    d_.log.Error("CloudIngest: study " + record_.orthancId + " failed: " + reason);
    RecordFailureAudit(reason);
    d_.queue.MarkFailed(record_, reason, Now());
    return SendOutcome::Failed;
  }

  SendOutcome RetryLater(const std::string& reason) {
    state_.progress.FlushAfterFailure(d_.log);
    if (d_.retry.StudyAttemptsExhausted(record_.attempts)) {
      return Fail(GaveUp(reason, record_.attempts));
    }
    const double delay = d_.retry.StudyDelay(record_.attempts);
    d_.log.Warning("CloudIngest: study " + record_.orthancId + " attempt " +
                   std::to_string(record_.attempts) + " failed (" + reason + "); retrying in " +
                   std::to_string(static_cast<int>(delay)) + " s");
    RecordFailureAudit(reason);
    d_.queue.MarkRetry(record_, reason, Now() + delay, Now());
    return SendOutcome::Retry;
  }

  void RecordFailureAudit(const std::string& reason) {
    try {
      state_.Audit("study_failed", [&](AuditEvent& e) { e.detail = reason; });
    } catch (const std::exception& e) {
      d_.log.Error(std::string("CloudIngest: cannot write the audit log: ") + e.what());
    }
  }

  SenderDependencies& d_;
  std::optional<DeidentifiedSource> deidentified_;  // set when the study is de-identified
  AttemptState state_;
  StudyRecord& record_;  // the attempt's copy, in state_
  Uploader uploader_;
};

SendOutcome StudySender::Run(const StudyRecord& claimed) {
  try {
    Attempt attempt(d_, claimed);
    const SendOutcome outcome = attempt.Run();
    if (outcome == SendOutcome::Cancelled) {
      d_.log.Info("CloudIngest: study " + claimed.orthancId + ": attempt " +
                  std::to_string(claimed.attempts) + " stopped (cancelled)");
    }
    return outcome;
  } catch (const std::exception& e) {
    // Orthanc, database or audit failures outside the attempt's own handling:
    // the study stays queued (it is not lost), and the attempt still counts.
    d_.log.Error("CloudIngest: study " + claimed.orthancId + ": " + e.what());
    try {
      // The same rule as the attempt's own RetryLater, without its audit
      // record: what failed here may be the audit log itself.
      const double now = d_.clock.Now();
      if (d_.retry.StudyAttemptsExhausted(claimed.attempts)) {
        d_.queue.MarkFailed(claimed, GaveUp(e.what(), claimed.attempts), now);
        return SendOutcome::Failed;
      }
      d_.queue.MarkRetry(claimed, e.what(), now + d_.retry.StudyDelay(claimed.attempts), now);
    } catch (const std::exception& again) {
      d_.log.Error(std::string("CloudIngest: cannot record the retry: ") + again.what());
    }
    return SendOutcome::Retry;
  }
}

}  // namespace CloudIngest
