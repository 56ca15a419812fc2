#pragma once
// How the sender has Orthanc de-identify an instance without storing the
// result: the SDK implements it with Orthanc's own anonymization engine,
// tests with a fake.
#include <json/value.h>

#include <map>
#include <string>
#include <vector>

namespace CloudIngest {

struct DeidentifyRequest {
  std::string dicomVersion;                    // Orthanc's profile name, e.g. "2021b"
  std::vector<std::string> keep;               // tags left as they are
  std::map<std::string, std::string> replace;  // tag -> value (pseudonyms included)
};

class IDeidentifier {
 public:
  virtual ~IDeidentifier() = default;
  // The de-identified DICOM file of a stored instance; Orthanc's copy is
  // untouched. Throws on failure (the study then fails with the reason).
  virtual std::string Deidentify(const std::string& orthancInstanceId,
                                 const DeidentifyRequest& request) = 0;
  // The tags of a DICOM file by keyword (as /instances/{id}/simplified-tags).
  virtual Json::Value TagsOf(const std::string& dicomFile) = 0;
};

}  // namespace CloudIngest
