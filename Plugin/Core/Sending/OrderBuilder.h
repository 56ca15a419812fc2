#pragma once
// The order metadata sent with new-order (docs/REFERENCE.md, Order metadata): default keys
// from the study's stored tags, then OrderMetadata, then a manual send's extras.
#include <json/value.h>

#include <string>

#include "Core/Configuration/Configuration.h"
#include "Core/Orthanc/StudySource.h"

namespace CloudIngest {

class MissingTagError : public std::runtime_error {
 public:
  explicit MissingTagError(const std::string& what) : std::runtime_error(what) {}
};

class OrderBuilder {
 public:
  explicit OrderBuilder(const Configuration& config) : config_(config) {}
  // Throws MissingTagError when StudyInstanceUID is absent. `instanceTags`
  // (tags of one instance, may be null) serves OrderMetadata tag references
  // not found among the study's main tags.
  Json::Value Build(const StudyInfo& study, const Json::Value& instanceTags,
                    const Json::Value& extraMetadata) const;

 private:
  const Configuration& config_;
};

}  // namespace CloudIngest
