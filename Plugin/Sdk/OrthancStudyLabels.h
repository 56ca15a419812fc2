#pragma once
// IStudyLabels over Orthanc's /studies/{id}/labels (Orthanc 1.12.0 or newer:
// built only when RunningOrthanc::HasLabels()).
#include "Core/Orthanc/StudyLabels.h"
#include "Sdk/OrthancRest.h"

namespace CloudIngest::Sdk {

class OrthancStudyLabels : public IStudyLabels {
 public:
  explicit OrthancStudyLabels(OrthancPluginContext* context) : rest_(context) {}
  std::set<std::string> Get(const std::string& orthancStudyId) override;
  void Add(const std::string& orthancStudyId, const std::string& label) override;
  void Remove(const std::string& orthancStudyId, const std::string& label) override;

 private:
  OrthancRest rest_;
};

}  // namespace CloudIngest::Sdk
