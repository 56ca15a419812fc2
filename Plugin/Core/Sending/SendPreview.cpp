#include "Core/Sending/SendPreview.h"

#include "Core/Sending/AttemptErrors.h"
#include "Core/Sending/DeidentifiedSource.h"
#include "Core/Sending/OrderBuilder.h"
#include "Core/Sending/StudyFilter.h"
#include "Core/Sending/StudySender.h"
#include "Core/Sending/UploadPlan.h"

namespace CloudIngest {

StudyPreview PreviewSend(const Configuration& config, IStudySource& source,
                         const std::string& orthancId, const std::optional<StudyRecord>& tracked,
                         const MeasuredWaits& measured, IDeidentifier* deidentifier) {
  const StudyInfo study = source.GetStudy(orthancId);
  StudyPreview p;
  p.orthancId = orthancId;
  const Json::Value& uid = study.mainTags["StudyInstanceUID"];
  p.studyInstanceUid = uid.isString() ? uid.asString() : std::string();
  p.modalities = study.modalities;
  p.callingAet = study.callingAet;
  p.series = study.numberOfSeries;
  p.instances = static_cast<unsigned>(study.instances.size());
  p.bytes = study.StoredBytes();
  // The rules of an automatic send, as StudySender applies them.
  const UploadPlan plan =
      PlanUpload(config, ModeFor(config, StudyRecord(), study), study, measured);
  p.mode = ToString(plan.mode);
  p.connections = plan.connections;
  p.modeReason = plan.reason;
  p.filtersMatch = StudyMatches(config.filters.modalities, config.filters.callingAets, study);
  if (!p.filtersMatch) p.blockedBy.push_back("Filters");
  if (tracked && !tracked->sentSignature.empty()) {
    if (tracked->sentSignature == StudySignature(study)) {
      p.unchanged = true;
      p.blockedBy.push_back("unchanged: already sent with these instances");
    } else if (config.lateInstances == LateInstancePolicy::Ignore) {
      p.blockedBy.push_back("LateInstances: instances that arrived after the send are ignored");
    }
  }
  // De-identified as the sender would: pseudonyms, refusals, and the order
  // from the de-identified first file.
  std::optional<DeidentifiedSource> deidentified;
  StudyInfo sent = study;
  if (const DeidentifySettings* settings = DeidentifyFor(config, study)) {
    p.deidentified = true;
    const Json::Value& patient = study.mainTags["PatientID"];
    p.patientId = patient.isString() ? patient.asString() : std::string();
    if (deidentifier == nullptr) {
      p.orderError = "de-identification is on but unavailable";
    } else {
      deidentified.emplace(source, *deidentifier, *settings);
      sent = deidentified->Pseudonymise(study);
      p.pseudonymousStudyInstanceUid = deidentified->StudyInstanceUid();
      const Json::Value& pseudonym = sent.mainTags["PatientID"];
      p.pseudonymousPatientId = pseudonym.isString() ? pseudonym.asString() : std::string();
      if (const auto& refusal = deidentified->Refusal()) p.blockedBy.push_back(*refusal);
    }
  }
  IStudySource& files = deidentified ? static_cast<IStudySource&>(*deidentified) : source;
  if (!p.orderError.empty()) {
    // nothing more to build
  } else if (study.instances.empty()) {
    p.orderError = "the study has no instances";
  } else {
    try {
      const Json::Value firstTags = files.GetInstanceTags(study.instances.front().orthancId);
      p.orderMetadata = OrderBuilder(config).Build(sent, firstTags, Json::objectValue);
      if (deidentified) DropReidentifyingKeys(p.orderMetadata);
    } catch (const MissingTagError& e) {
      p.orderError = e.what();
    } catch (const std::invalid_argument& e) {
      p.orderError = std::string("bad order metadata: ") + e.what();
    } catch (const PermanentFailure& e) {
      p.orderError = e.what();  // Orthanc could not de-identify the instance
    }
  }
  if (!p.orderError.empty()) p.blockedBy.push_back("order: " + p.orderError);
  return p;
}

}  // namespace CloudIngest
