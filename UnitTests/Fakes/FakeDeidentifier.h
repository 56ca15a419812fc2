#pragma once
// Orthanc's anonymization stand-in: the "file" it answers is a JSON object of
// the replacements it was asked for (plus an emptied PatientSex), so a test
// can read back what Orthanc would have written.
#include <json/reader.h>

#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>

#include "Core/Orthanc/Deidentifier.h"
#include "TestJson.h"

namespace CloudIngest::Testing {

class FakeDeidentifier : public IDeidentifier {
 public:
  std::string Deidentify(const std::string& id, const DeidentifyRequest& request) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failure.empty()) throw std::runtime_error(failure);
    requests_[id] = request;
    Json::Value file(Json::objectValue);
    for (const auto& [tag, value] : request.replace) file[tag] = value;
    file["PatientSex"] = "";
    return "DEID" + file.toStyledString();
  }
  Json::Value TagsOf(const std::string& dicomFile) override {
    return ParseJson(dicomFile.substr(4));
  }
  DeidentifyRequest Request(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.at(id);
  }
  std::string failure;  // not empty: Deidentify throws it

 private:
  std::mutex mutex_;
  std::map<std::string, DeidentifyRequest> requests_;
};

}  // namespace CloudIngest::Testing
