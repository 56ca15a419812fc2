// The order metadata object (docs/REFERENCE.md, Order metadata).
#include "Core/Sending/OrderBuilder.h"

#include "Core/DicomTags.h"

#include <boost/algorithm/string.hpp>

#include <json/writer.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>
#include <utility>

namespace CloudIngest {

namespace {

// Order metadata key -> the keyword of the stored tag it comes from.
const std::pair<const char*, const char*> kDefaultKeys[] = {
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

std::string Lower(const std::string& s) {
  return boost::algorithm::to_lower_copy(s, std::locale::classic());
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
  // The other spelling of the same tag, when it is one of the tags DicomTags knows.
  std::string keyword = byNumber ? "" : name;
  std::string alias = byNumber ? "" : TagNumberOf(name);
  if (byNumber && TagKeywordOf(name) != name) alias = keyword = TagKeywordOf(name);
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

Json::Value OrderBuilder::Build(const StudyInfo& study, const Json::Value& instanceTags,
                                const Json::Value& extraMetadata) const {
  Json::Value order(Json::objectValue);
  for (const auto& [key, keyword] : kDefaultKeys) {
    if (auto text = Lookup(study, instanceTags, keyword)) order[key] = *text;
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
