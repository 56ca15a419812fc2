#pragma once
// IStudySource over Orthanc's REST API, called from worker threads.
#include "Core/Orthanc/StudySource.h"
#include "OrthancRest.h"

namespace CloudIngest::Sdk {

class OrthancStudySource : public IStudySource {
 public:
  // `storageCompression`: Orthanc's StorageCompression. Without it the stored
  // attachment is the DICOM file itself, read through a route that bypasses
  // Orthanc's storage cache (which would otherwise grow by what we send).
  OrthancStudySource(OrthancPluginContext* context, bool storageCompression)
      : rest_(context), storageCompression_(storageCompression) {}
  bool StudyExists(const std::string& orthancStudyId) override;
  StudyInfo GetStudy(const std::string& orthancStudyId) override;
  std::string ReadInstance(const std::string& orthancInstanceId) override;
  Json::Value GetInstanceTags(const std::string& orthancInstanceId) override;

 private:
  OrthancRest rest_;
  bool storageCompression_;
};

}  // namespace CloudIngest::Sdk
