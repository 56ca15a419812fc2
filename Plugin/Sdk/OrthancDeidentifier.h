#pragma once
// IDeidentifier over Orthanc's own anonymization: POST
// /instances/{id}/anonymize answers the de-identified file and stores nothing.
#include "Core/Orthanc/Deidentifier.h"
#include "OrthancRest.h"

namespace CloudIngest::Sdk {

class OrthancDeidentifier : public IDeidentifier {
 public:
  explicit OrthancDeidentifier(OrthancPluginContext* context) : rest_(context) {}
  std::string Deidentify(const std::string& orthancInstanceId,
                         const DeidentifyRequest& request) override;
  Json::Value TagsOf(const std::string& dicomFile) override;

 private:
  OrthancRest rest_;
};

}  // namespace CloudIngest::Sdk
