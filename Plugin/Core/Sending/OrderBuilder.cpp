// The order metadata object (docs/REFERENCE.md, Order metadata).
#include "Core/Sending/OrderBuilder.h"

#include <boost/algorithm/string.hpp>

#include <json/writer.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>

namespace CloudIngest {

namespace {

// A name paired with the DICOM keyword it stands for.
struct Named {
  const char* name;
  const char* keyword;
};

// Order metadata key -> the stored tag it comes from.
const Named kDefaultKeys[] = {
    {"study_instance_uid", "StudyInstanceUID"},
    {"patient_id", "PatientID"},
    {"patient_name", "PatientName"},
    {"patient_birth_date", "PatientBirthDate"},
    {"patient_sex", "PatientSex"},
    {"accession_number", "AccessionNumber"},
    {"study_date", "StudyDate"},
    {"study_time", "StudyTime"},
    {"study_description", "StudyDescription"},
    {"referring_physician_name", "ReferringPhysicianName"},
    {"institution_name", "InstitutionName"},
};

// Tags commonly found among Orthanc's stored tags, so that an OrderMetadata
// reference written as a keyword finds a "gggg,eeee" key and vice versa.
// The name is the tag in lower-case hex, as Orthanc formats tags.
const Named kTagNames[] = {
    {"0002,0010", "TransferSyntaxUID"},
    {"0008,0005", "SpecificCharacterSet"},
    {"0008,0008", "ImageType"},
    {"0008,0012", "InstanceCreationDate"},
    {"0008,0013", "InstanceCreationTime"},
    {"0008,0016", "SOPClassUID"},
    {"0008,0018", "SOPInstanceUID"},
    {"0008,0020", "StudyDate"},
    {"0008,0021", "SeriesDate"},
    {"0008,0022", "AcquisitionDate"},
    {"0008,0023", "ContentDate"},
    {"0008,0030", "StudyTime"},
    {"0008,0031", "SeriesTime"},
    {"0008,0032", "AcquisitionTime"},
    {"0008,0033", "ContentTime"},
    {"0008,0050", "AccessionNumber"},
    {"0008,0054", "RetrieveAETitle"},
    {"0008,0060", "Modality"},
    {"0008,0061", "ModalitiesInStudy"},
    {"0008,0070", "Manufacturer"},
    {"0008,0080", "InstitutionName"},
    {"0008,0081", "InstitutionAddress"},
    {"0008,0090", "ReferringPhysicianName"},
    {"0008,1010", "StationName"},
    {"0008,1030", "StudyDescription"},
    {"0008,103e", "SeriesDescription"},
    {"0008,1040", "InstitutionalDepartmentName"},
    {"0008,1048", "PhysiciansOfRecord"},
    {"0008,1050", "PerformingPhysicianName"},
    {"0008,1060", "NameOfPhysiciansReadingStudy"},
    {"0008,1070", "OperatorsName"},
    {"0008,1090", "ManufacturerModelName"},
    {"0010,0010", "PatientName"},
    {"0010,0020", "PatientID"},
    {"0010,0021", "IssuerOfPatientID"},
    {"0010,0030", "PatientBirthDate"},
    {"0010,0032", "PatientBirthTime"},
    {"0010,0040", "PatientSex"},
    {"0010,1000", "OtherPatientIDs"},
    {"0010,1001", "OtherPatientNames"},
    {"0010,1010", "PatientAge"},
    {"0010,1020", "PatientSize"},
    {"0010,1030", "PatientWeight"},
    {"0010,2160", "EthnicGroup"},
    {"0010,4000", "PatientComments"},
    {"0018,0010", "ContrastBolusAgent"},
    {"0018,0015", "BodyPartExamined"},
    {"0018,0050", "SliceThickness"},
    {"0018,0087", "MagneticFieldStrength"},
    {"0018,1000", "DeviceSerialNumber"},
    {"0018,1020", "SoftwareVersions"},
    {"0018,1030", "ProtocolName"},
    {"0018,5100", "PatientPosition"},
    {"0020,000d", "StudyInstanceUID"},
    {"0020,000e", "SeriesInstanceUID"},
    {"0020,0010", "StudyID"},
    {"0020,0011", "SeriesNumber"},
    {"0020,0013", "InstanceNumber"},
    {"0020,0032", "ImagePositionPatient"},
    {"0020,0037", "ImageOrientationPatient"},
    {"0020,0052", "FrameOfReferenceUID"},
    {"0020,1206", "NumberOfStudyRelatedSeries"},
    {"0020,1208", "NumberOfStudyRelatedInstances"},
    {"0028,0010", "Rows"},
    {"0028,0011", "Columns"},
    {"0028,0030", "PixelSpacing"},
    {"0032,1032", "RequestingPhysician"},
    {"0032,1060", "RequestedProcedureDescription"},
    {"0032,4000", "StudyComments"},
    {"0038,0010", "AdmissionID"},
    {"0040,0009", "ScheduledProcedureStepID"},
    {"0040,0241", "PerformedStationAETitle"},
    {"0040,0253", "PerformedProcedureStepID"},
    {"0040,0254", "PerformedProcedureStepDescription"},
    {"0040,1001", "RequestedProcedureID"},
};

std::string Lower(const std::string& s) {
  return boost::algorithm::to_lower_copy(s, std::locale::classic());
}

bool IsTagNumber(const std::string& s) {
  return s.size() == 9 && s[4] == ',' && std::all_of(s.begin(), s.end(), [](unsigned char c) {
           return c == ',' || std::isxdigit(c);
         });
}

// DICOM pads values to an even length with a space (or NUL for UIDs).
std::string TrimTrailing(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

// A tag's value as one string; nullopt when absent or empty.
std::optional<std::string> ToText(const Json::Value& value) {
  std::string text;
  switch (value.type()) {
    case Json::nullValue:
      return std::nullopt;
    case Json::stringValue:
      text = value.asString();
      break;
    case Json::booleanValue:
    case Json::intValue:
    case Json::uintValue:
    case Json::realValue:
      text = value.asString();
      break;
    case Json::arrayValue: {
      // Multi-valued or sequence: joined the DICOM way.
      bool first = true;
      for (const Json::Value& item : value) {
        if (!first) text += '\\';
        first = false;
        text += ToText(item).value_or("");
      }
      break;
    }
    case Json::objectValue:
      // Orthanc's full format {"Name", "Type", "Value"}; else an item of a sequence.
      if (value.isMember("Value")) return ToText(value["Value"]);
      {
        Json::StreamWriterBuilder writer;
        writer["indentation"] = "";
        writer["emitUTF8"] = true;
        text = Json::writeString(writer, value);
      }
      break;
  }
  text = TrimTrailing(std::move(text));
  if (text.empty()) return std::nullopt;
  return text;
}

const Json::Value* FindMember(const Json::Value& tags, const std::string& key) {
  return tags.find(key.data(), key.data() + key.size());
}

// Looks a tag up by keyword or "gggg,eeee", whichever spelling `tags` uses.
const Json::Value* FindTag(const Json::Value& tags, const std::string& name) {
  if (!tags.isObject()) return nullptr;
  if (const Json::Value* v = FindMember(tags, name)) return v;

  const bool byNumber = IsTagNumber(name);
  const std::string number = byNumber ? Lower(name) : "";
  std::string keyword = byNumber ? "" : name;
  std::string alias;
  for (const Named& entry : kTagNames) {
    if (byNumber ? number == entry.name : keyword == entry.keyword) {
      alias = byNumber ? entry.keyword : entry.name;
      if (byNumber) keyword = entry.keyword;
      break;
    }
  }
  if (!alias.empty()) {
    if (const Json::Value* v = FindMember(tags, alias)) return v;
  }
  // Tag numbers in either case; Orthanc's full format names the keyword inside.
  for (auto it = tags.begin(); it != tags.end(); ++it) {
    const std::string key = it.name();
    const std::string lowered = Lower(key);
    if ((byNumber && lowered == number) || (!alias.empty() && lowered == alias)) return &*it;
    if (!keyword.empty() && it->isObject() && (*it)["Name"].isString() &&
        (*it)["Name"].asString() == keyword) {
      return &*it;
    }
  }
  return nullptr;
}

std::optional<std::string> Lookup(const StudyInfo& study, const Json::Value& instanceTags,
                                  const std::string& name) {
  for (const Json::Value* tags : {&study.mainTags, &instanceTags}) {
    if (const Json::Value* v = FindTag(*tags, name)) {
      if (auto text = ToText(*v)) return text;
    }
  }
  return std::nullopt;
}

Json::Value Modalities(const std::vector<std::string>& entries) {
  std::vector<std::string> seen;
  for (const std::string& entry : entries) {
    size_t start = 0;
    while (start <= entry.size()) {
      const size_t end = std::min(entry.find('\\', start), entry.size());
      std::string modality = TrimTrailing(entry.substr(start, end - start));
      modality.erase(0, modality.find_first_not_of(' '));
      if (!modality.empty() && std::find(seen.begin(), seen.end(), modality) == seen.end()) {
        seen.push_back(modality);
      }
      start = end + 1;
    }
  }
  Json::Value array(Json::arrayValue);
  for (const std::string& modality : seen) array.append(modality);
  return array;
}

}  // namespace

std::string TagKeywordOf(const std::string& reference) {
  if (!IsTagNumber(reference)) return reference;
  const std::string number = Lower(reference);
  for (const Named& entry : kTagNames) {
    if (number == entry.name) return entry.keyword;
  }
  return reference;
}

Json::Value OrderBuilder::Build(const StudyInfo& study, const Json::Value& instanceTags,
                                const Json::Value& extraMetadata) const {
  Json::Value order(Json::objectValue);
  for (const Named& entry : kDefaultKeys) {
    if (auto text = Lookup(study, instanceTags, entry.keyword)) order[entry.name] = *text;
  }
  if (!order.isMember("study_instance_uid")) {
    throw MissingTagError("study has no StudyInstanceUID");
  }

  const Json::Value modalities = Modalities(study.modalities);
  if (!modalities.empty()) order["modalities"] = modalities;
  order["number_of_series"] = std::to_string(study.numberOfSeries);
  order["number_of_instances"] = std::to_string(study.instances.size());

  Json::Value source(Json::objectValue);
  if (!study.orthancId.empty()) source["orthanc_study_id"] = study.orthancId;
  const std::string callingAet = TrimTrailing(study.callingAet);
  if (!callingAet.empty()) source["calling_aet"] = callingAet;
  order["source"] = source;

  // Configured entries override defaults; an absent tag leaves the key as it was.
  for (const auto& [key, value] : config_.orderMetadata) {
    if (value.isConstant) {
      order[key] = value.constant;
    } else if (auto text = Lookup(study, instanceTags, value.tag)) {
      order[key] = *text;
    }
  }

  // A manual send's extras win; null removes a key (not the study's UID).
  if (extraMetadata.isNull()) return order;
  if (!extraMetadata.isObject()) throw std::invalid_argument("metadata must be a JSON object");
  for (auto it = extraMetadata.begin(); it != extraMetadata.end(); ++it) {
    const std::string key = it.name();
    if (!it->isNull()) {
      order[key] = *it;
    } else if (key == "study_instance_uid") {
      throw std::invalid_argument("metadata cannot remove study_instance_uid");
    } else {
      order.removeMember(key);
    }
  }
  return order;
}

}  // namespace CloudIngest
