#pragma once
// How the sender reads a study from Orthanc: the SDK implements it with
// Orthanc's REST API, tests with a folder of files.
#include <json/value.h>

#include <cstdint>
#include <string>
#include <vector>

namespace CloudIngest {

// Whether ReadInstance returns exactly `size` bytes, or another file (a
// de-identified one) whose size is only known once it is read.
enum class SizeIs { Exact, Estimate };

struct InstanceInfo {
  std::string orthancId;
  std::string sopInstanceUid;
  std::string seriesInstanceUid;
  uint64_t size = 0;  // bytes of the stored DICOM file
  SizeIs sizeIs = SizeIs::Exact;
};

struct StudyInfo {
  std::string orthancId;
  Json::Value mainTags;  // {"StudyInstanceUID": ..., "PatientName": ...}: study + patient tags,
                         // "simplified" names, values as Orthanc stores them
  std::vector<std::string> modalities;  // distinct, from the series
  unsigned numberOfSeries = 0;
  std::string callingAet;  // RemoteAET of an instance, empty if unknown
  std::string lastUpdate;  // Orthanc's LastUpdate
  bool isStable = true;
  std::vector<InstanceInfo> instances;  // sorted by series then instance number

  // Of the stored DICOM files, as Orthanc lists them.
  uint64_t StoredBytes() const {
    uint64_t total = 0;
    for (const auto& instance : instances) total += instance.size;
    return total;
  }
};

class StudyNotFound : public std::runtime_error {
 public:
  explicit StudyNotFound(const std::string& what) : std::runtime_error(what) {}
};

class IStudySource {
 public:
  virtual ~IStudySource() = default;
  virtual bool StudyExists(const std::string& orthancStudyId) = 0;
  // Throws StudyNotFound when the study does not exist (any more).
  virtual StudyInfo GetStudy(const std::string& orthancStudyId) = 0;
  // The instance's DICOM file as stored.
  virtual std::string ReadInstance(const std::string& orthancInstanceId) = 0;
  // Tag values by name (e.g. "PerformingPhysicianName") looked up in the
  // study's instances; used for OrderMetadata tag references.
  virtual Json::Value GetInstanceTags(const std::string& orthancInstanceId) = 0;
};

}  // namespace CloudIngest
