#pragma once
// A study as it leaves when de-identification is on: every instance read
// through Orthanc's anonymization with the study's pseudonyms, the study's
// description carrying pseudonymous UIDs. Orthanc's stored study is untouched.
#include <map>
#include <optional>
#include <string>

#include "Core/Configuration/Configuration.h"
#include "Core/Deidentify/Pseudonyms.h"
#include "Core/Orthanc/Deidentifier.h"
#include "Core/Orthanc/StudySource.h"

namespace CloudIngest {

class DeidentifiedSource : public IStudySource {
 public:
  DeidentifiedSource(IStudySource& stored, IDeidentifier& deidentifier,
                     const DeidentifySettings& settings);

  // The study as the cloud sees it: the instances' SOP and series UIDs and
  // the main tags replaced by pseudonyms (other main tags left out: the order
  // reads them from the de-identified file). Reads every instance's stored
  // tags (BurnedInAnnotation, FrameOfReferenceUID) and remembers each
  // instance's replacements: call before ReadInstance, not while instances
  // are read.
  StudyInfo Pseudonymise(const StudyInfo& stored);
  const std::string& StudyInstanceUid() const { return studyInstanceUid_; }
  // Why the study must not go (a modality listed in RefuseModalities, an
  // instance whose BurnedInAnnotation is YES: the profile does not touch
  // pixels), or nullopt; known after Pseudonymise.
  const std::optional<std::string>& Refusal() const { return refusal_; }

  bool StudyExists(const std::string& orthancStudyId) override;
  StudyInfo GetStudy(const std::string& orthancStudyId) override;
  // The de-identified file; throws PermanentFailure when Orthanc cannot
  // de-identify it, std::runtime_error for an instance Pseudonymise did not see.
  std::string ReadInstance(const std::string& orthancInstanceId) override;
  // The tags of the de-identified file.
  Json::Value GetInstanceTags(const std::string& orthancInstanceId) override;

 private:
  std::optional<std::string> RefusedModality(const StudyInfo& study) const;

  IStudySource& stored_;
  IDeidentifier& deidentifier_;
  const DeidentifySettings& settings_;
  Pseudonyms pseudonyms_;
  std::string studyInstanceUid_;
  std::optional<std::string> refusal_;
  std::map<std::string, DeidentifyRequest> requests_;  // by Orthanc instance id
};

// Removes from a de-identified study's order what would name the original:
// Orthanc's study id is a plain hash of the original PatientID and
// StudyInstanceUID.
void DropReidentifyingKeys(Json::Value& order);

}  // namespace CloudIngest
