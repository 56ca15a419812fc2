#include "Core/Sending/StudyFilter.h"

#include <algorithm>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/split.hpp>
#include <boost/algorithm/string/trim.hpp>

namespace CloudIngest {

namespace {

bool Contains(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

bool HasModality(const std::vector<std::string>& modalities, const StudyInfo& study) {
  for (const auto& entry : study.modalities) {
    // Multi-valued entries ("CT\\PT") count for each of their values.
    std::vector<std::string> values;
    boost::algorithm::split(values, entry, boost::algorithm::is_any_of("\\"));
    for (const auto& value : values) {
      if (Contains(modalities, boost::algorithm::trim_copy(value))) return true;
    }
  }
  return false;
}

}  // namespace

bool StudyMatches(const std::vector<std::string>& modalities, const std::vector<std::string>& aets,
                  const StudyInfo& study) {
  if (!modalities.empty() && !HasModality(modalities, study)) return false;
  return aets.empty() || Contains(aets, boost::algorithm::trim_copy(study.callingAet));
}

UploadMode ModeFor(const Configuration& config, const StudyRecord& record, const StudyInfo& study) {
  if (record.mode == "Zip") return UploadMode::Zip;
  if (record.mode == "Nifti") return UploadMode::Nifti;
  if (record.mode == "Instances") return UploadMode::Instances;
  if (record.mode == "Auto") return UploadMode::Auto;
  for (const auto& rule : config.uploadModeRules) {
    if (StudyMatches(rule.modalities, rule.callingAets, study)) return rule.mode;
  }
  return config.uploadMode;
}

const DeidentifySettings* DeidentifyFor(const Configuration& config, const StudyInfo& study) {
  const DeidentifySettings* chosen = &config.deidentify;
  for (const auto& rule : config.uploadModeRules) {
    if (!StudyMatches(rule.modalities, rule.callingAets, study)) continue;
    if (rule.deidentify) chosen = &*rule.deidentify;
    break;
  }
  return chosen->enable ? chosen : nullptr;
}

}  // namespace CloudIngest
