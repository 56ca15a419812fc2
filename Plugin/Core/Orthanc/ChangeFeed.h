#pragma once
// Orthanc's log of changes (/changes), read at start-up to find studies that
// changed while the plugin was not listening (e.g. Orthanc was killed before
// a study became stable, so its StableStudy event never comes).
#include <cstdint>
#include <string>
#include <vector>

namespace CloudIngest {

struct Change {
  int64_t seq = 0;
  std::string changeType;    // "NewStudy", "StableStudy", "NewChildInstance", ...
  std::string resourceType;  // "Study", "Series", "Instance", "Patient"
  std::string id;
};

struct ChangesPage {
  std::vector<Change> changes;
  int64_t last = 0;
  bool done = true;
};

class IChangeFeed {
 public:
  virtual ~IChangeFeed() = default;
  virtual ChangesPage GetChanges(int64_t since, unsigned limit) = 0;
  virtual int64_t LastSeq() = 0;
};

}  // namespace CloudIngest
