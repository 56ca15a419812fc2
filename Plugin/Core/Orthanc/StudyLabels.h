#pragma once
// Orthanc's labels of a study (Orthanc 1.12.0 or newer): the SDK layer
// implements it over /studies/{id}/labels, tests with a fake.
#include <set>
#include <string>

namespace CloudIngest {

class IStudyLabels {
 public:
  virtual ~IStudyLabels() = default;
  // Each throws std::exception when Orthanc refuses (e.g. the study was deleted).
  virtual std::set<std::string> Get(const std::string& orthancStudyId) = 0;
  virtual void Add(const std::string& orthancStudyId, const std::string& label) = 0;
  virtual void Remove(const std::string& orthancStudyId, const std::string& label) = 0;
};

}  // namespace CloudIngest
