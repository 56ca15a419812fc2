#include "Sdk/OrthancStudyLabels.h"

namespace CloudIngest::Sdk {

namespace {
// Orthanc ids and labels (checked at start-up) need no escaping in a URI.
std::string LabelsUri(const std::string& orthancStudyId) {
  return "/studies/" + orthancStudyId + "/labels";
}
}  // namespace

std::set<std::string> OrthancStudyLabels::Get(const std::string& orthancStudyId) {
  std::set<std::string> labels;
  for (const auto& label : rest_.GetJson(LabelsUri(orthancStudyId))) {
    labels.insert(label.asString());
  }
  return labels;
}

void OrthancStudyLabels::Add(const std::string& orthancStudyId, const std::string& label) {
  rest_.Put(LabelsUri(orthancStudyId) + "/" + label, "");
}

void OrthancStudyLabels::Remove(const std::string& orthancStudyId, const std::string& label) {
  rest_.Delete(LabelsUri(orthancStudyId) + "/" + label);
}

}  // namespace CloudIngest::Sdk
