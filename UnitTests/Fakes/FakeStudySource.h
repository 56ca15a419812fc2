#pragma once
// A study kept in memory: tags and instance bytes, as Orthanc would report them.
#include <map>
#include <stdexcept>
#include <string>

#include "Core/Orthanc/StudySource.h"

namespace CloudIngest::Testing {

class FakeStudySource : public IStudySource {
 public:
  // Adds a study with `count` instances of `size` bytes each.
  StudyInfo& AddStudy(const std::string& id, const std::string& studyUid, unsigned count,
                      size_t size = 1000) {
    StudyInfo& s = studies_[id];
    s.orthancId = id;
    s.mainTags = Json::Value(Json::objectValue);
    if (!studyUid.empty()) s.mainTags["StudyInstanceUID"] = studyUid;
    s.mainTags["PatientName"] = "Doe^Jane";
    s.mainTags["PatientID"] = "P1";
    s.modalities = {"CT"};
    s.numberOfSeries = 1;
    for (unsigned i = 0; i < count; i++) AddInstance(id, size);
    return s;
  }
  void AddInstance(const std::string& studyId, size_t size = 1000) {
    StudyInfo& s = studies_.at(studyId);
    InstanceInfo info;
    const std::string n = std::to_string(s.instances.size() + 1);
    info.orthancId = studyId + "-i" + n;
    info.sopInstanceUid =
        "1.2.3." + std::to_string(std::hash<std::string>()(studyId) % 100000) + "." + n;
    info.size = size;
    files_[info.orthancId] = std::string(size, static_cast<char>('a' + s.instances.size() % 26));
    s.instances.push_back(info);
  }
  void Delete(const std::string& id) { studies_.erase(id); }
  // Not empty: GetStudy fails as Orthanc's REST API does on an internal error.
  std::string getStudyError;

  bool StudyExists(const std::string& id) override { return studies_.count(id) > 0; }
  StudyInfo GetStudy(const std::string& id) override {
    if (!getStudyError.empty()) throw std::runtime_error(getStudyError);
    auto it = studies_.find(id);
    if (it == studies_.end()) throw StudyNotFound("no study " + id);
    return it->second;
  }
  std::string ReadInstance(const std::string& id) override { return files_.at(id); }
  Json::Value GetInstanceTags(const std::string& id) override {
    const auto found = tags.find(id);
    return found != tags.end() ? found->second : Json::Value(Json::objectValue);
  }
  // Tags GetInstanceTags answers, by Orthanc instance id (else none).
  std::map<std::string, Json::Value> tags;

 private:
  std::map<std::string, StudyInfo> studies_;
  std::map<std::string, std::string> files_;
};

}  // namespace CloudIngest::Testing
