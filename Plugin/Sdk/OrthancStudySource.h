#pragma once
// IStudySource over Orthanc's REST API, called from worker threads.
#include "Core/StudySource.h"
#include "OrthancRest.h"

namespace CloudIngest::Sdk {

class OrthancStudySource : public IStudySource {
 public:
  explicit OrthancStudySource(OrthancPluginContext* context) : rest_(context) {}
  bool StudyExists(const std::string& orthancStudyId) override;
  StudyInfo GetStudy(const std::string& orthancStudyId) override;
  std::string ReadInstance(const std::string& orthancInstanceId) override;
  Json::Value GetInstanceTags(const std::string& orthancInstanceId) override;

 private:
  OrthancRest rest_;
};

}  // namespace CloudIngest::Sdk
