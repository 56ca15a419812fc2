#include "Core/Sending/DeidentifiedSource.h"

#include <boost/algorithm/string/case_conv.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <stdexcept>

#include "Core/Deidentify/BasicProfile.h"
#include "Core/DicomTags.h"
#include "Core/Sending/AttemptErrors.h"
#include "Core/Sending/OrderBuilder.h"
#include "Core/Sending/StudyFilter.h"

namespace CloudIngest {

namespace {

std::string TagString(const Json::Value& tags, const char* name) {
  const Json::Value& v = tags[name];
  return v.isString() ? v.asString() : std::string();
}

bool Lists(const std::vector<std::string>& tags, const char* keyword) {
  for (const auto& tag : tags) {
    if (TagKeywordOf(tag) == keyword) return true;
  }
  return false;
}

bool BurnedIn(const Json::Value& tags) {
  const std::string value = boost::algorithm::to_upper_copy(
      boost::algorithm::trim_copy(TagString(tags, "BurnedInAnnotation")), std::locale::classic());
  return value == "YES";
}

const char* DicomVersion(DeidentifyProfile profile) {
  switch (profile) {
    case DeidentifyProfile::Basic:
      return "2021b";
  }
  return "2021b";
}

}  // namespace

DeidentifiedSource::DeidentifiedSource(IStudySource& stored, IDeidentifier& deidentifier,
                                       const DeidentifySettings& settings)
    : stored_(stored),
      deidentifier_(deidentifier),
      settings_(settings),
      pseudonyms_(settings.pseudonymKey) {}

StudyInfo DeidentifiedSource::Pseudonymise(const StudyInfo& stored) {
  StudyInfo study = stored;
  const std::string originalUid = TagString(stored.mainTags, "StudyInstanceUID");
  const std::string patientId = pseudonyms_.PatientId(TagString(stored.mainTags, "PatientID"));
  studyInstanceUid_ = originalUid.empty() ? std::string() : pseudonyms_.Uid(originalUid);

  DeidentifyRequest common;
  common.dicomVersion = DicomVersion(settings_.profile);
  common.keep = settings_.keep;
  common.replace = settings_.replace;
  common.replace["PatientID"] = patientId;
  // Orthanc would otherwise write a random name: the pseudonym keeps it stable.
  if (!Lists(settings_.keep, "PatientName") && common.replace.count("PatientName") == 0) {
    common.replace["PatientName"] = patientId;
  }
  if (!studyInstanceUid_.empty()) common.replace["StudyInstanceUID"] = studyInstanceUid_;

  study.mainTags = Json::Value(Json::objectValue);
  for (const char* name : {"PatientID", "PatientName", "StudyInstanceUID"}) {
    const auto value = common.replace.find(name);
    if (value != common.replace.end()) study.mainTags[name] = value->second;
  }

  requests_.clear();
  refusal_ = RefusedModality(study);
  for (auto& instance : study.instances) {
    DeidentifyRequest request = common;
    instance.sizeIs = SizeIs::Estimate;  // the stored file's: the de-identified one differs
    instance.seriesInstanceUid = pseudonyms_.Uid(instance.seriesInstanceUid);
    instance.sopInstanceUid = pseudonyms_.Uid(instance.sopInstanceUid);
    request.replace["SeriesInstanceUID"] = instance.seriesInstanceUid;
    request.replace["SOPInstanceUID"] = instance.sopInstanceUid;
    const Json::Value tags = stored_.GetInstanceTags(instance.orthancId);
    // Orthanc would draw a new one per call: the series' instances would no
    // longer share their frame of reference, nor two sends their bytes.
    const std::string frameOfReference = TagString(tags, "FrameOfReferenceUID");
    if (!frameOfReference.empty()) {
      request.replace["FrameOfReferenceUID"] = pseudonyms_.Uid(frameOfReference);
    }
    if (!refusal_ && BurnedIn(tags)) {
      refusal_ = "instance " + instance.orthancId +
                 " has BurnedInAnnotation YES: de-identification does not remove text burned "
                 "into the pixels, so the study is not sent";
    }
    requests_[instance.orthancId] = std::move(request);
  }
  return study;
}

std::optional<std::string> DeidentifiedSource::RefusedModality(const StudyInfo& study) const {
  for (const auto& modality : settings_.refuseModalities) {
    if (StudyMatches({modality}, {}, study)) {
      return "modality " + modality +
             " is listed in Deidentify.RefuseModalities: its images may carry burned-in "
             "identifying text, which de-identification does not remove";
    }
  }
  return std::nullopt;
}

bool DeidentifiedSource::StudyExists(const std::string& orthancStudyId) {
  return stored_.StudyExists(orthancStudyId);
}

StudyInfo DeidentifiedSource::GetStudy(const std::string& orthancStudyId) {
  return Pseudonymise(stored_.GetStudy(orthancStudyId));
}

std::string DeidentifiedSource::ReadInstance(const std::string& orthancInstanceId) {
  const auto request = requests_.find(orthancInstanceId);
  if (request == requests_.end()) {
    throw std::runtime_error("instance " + orthancInstanceId +
                             " is not part of the de-identified study");
  }
  try {
    return deidentifier_.Deidentify(orthancInstanceId, request->second);
  } catch (const std::exception& e) {
    // Never sent as stored instead: the study fails with the reason.
    throw PermanentFailure("de-identification of instance " + orthancInstanceId +
                           " failed: " + e.what());
  }
}

Json::Value DeidentifiedSource::GetInstanceTags(const std::string& orthancInstanceId) {
  return deidentifier_.TagsOf(ReadInstance(orthancInstanceId));
}

void DropReidentifyingKeys(Json::Value& order) {
  if (order["source"].isObject()) order["source"].removeMember("orthanc_study_id");
}

}  // namespace CloudIngest
