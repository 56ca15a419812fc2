#pragma once
#include "Core/Orthanc/ChangeFeed.h"
#include "OrthancRest.h"

namespace CloudIngest::Sdk {

// IChangeFeed over Orthanc's /changes route.
class OrthancChangeFeed : public IChangeFeed {
 public:
  explicit OrthancChangeFeed(OrthancPluginContext* context) : rest_(context) {}
  ChangesPage GetChanges(int64_t since, unsigned limit) override;
  int64_t LastSeq() override;

 private:
  OrthancRest rest_;
};

}  // namespace CloudIngest::Sdk
