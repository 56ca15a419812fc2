#include "OrthancStudySource.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <tuple>

namespace CloudIngest::Sdk {

namespace {

long InstanceNumber(const Json::Value& instance) {
  const Json::Value& v = instance["MainDicomTags"]["InstanceNumber"];
  return v.isString() ? std::strtol(v.asCString(), nullptr, 10) : 0;
}

}  // namespace

bool OrthancStudySource::StudyExists(const std::string& orthancStudyId) {
  Json::Value study;
  return rest_.TryGetJson("/studies/" + orthancStudyId, study);
}

StudyInfo OrthancStudySource::GetStudy(const std::string& orthancStudyId) {
  Json::Value study;
  if (!rest_.TryGetJson("/studies/" + orthancStudyId, study)) {
    throw StudyNotFound("no study " + orthancStudyId);
  }
  StudyInfo info;
  info.orthancId = orthancStudyId;
  info.mainTags = Json::Value(Json::objectValue);
  for (const char* group : {"PatientMainDicomTags", "MainDicomTags"}) {
    const Json::Value& tags = study[group];
    if (!tags.isObject()) continue;
    for (const auto& name : tags.getMemberNames()) info.mainTags[name] = tags[name];
  }
  info.isStable = study["IsStable"].asBool();
  info.lastUpdate = study["LastUpdate"].asString();

  Json::Value series;
  if (!rest_.TryGetJson("/studies/" + orthancStudyId + "/series", series)) {
    throw StudyNotFound("no study " + orthancStudyId);
  }
  info.numberOfSeries = series.size();
  std::map<std::string, std::string> seriesUids;  // Orthanc series id -> SeriesInstanceUID
  for (const auto& s : series) {
    seriesUids[s["ID"].asString()] = s["MainDicomTags"]["SeriesInstanceUID"].asString();
    const std::string modality = s["MainDicomTags"]["Modality"].asString();
    if (!modality.empty() && std::find(info.modalities.begin(), info.modalities.end(), modality) ==
                                 info.modalities.end()) {
      info.modalities.push_back(modality);
    }
  }

  Json::Value instances;
  if (!rest_.TryGetJson("/studies/" + orthancStudyId + "/instances", instances)) {
    throw StudyNotFound("no study " + orthancStudyId);
  }
  std::vector<std::tuple<std::string, long, std::string, InstanceInfo>> sorted;
  for (const auto& i : instances) {
    InstanceInfo instance;
    instance.orthancId = i["ID"].asString();
    instance.sopInstanceUid = i["MainDicomTags"]["SOPInstanceUID"].asString();
    const std::string parent = i["ParentSeries"].asString();
    const auto uid = seriesUids.find(parent);
    instance.seriesInstanceUid =
        uid != seriesUids.end() && !uid->second.empty() ? uid->second : parent;
    instance.size = i["FileSize"].asUInt64();
    sorted.emplace_back(instance.seriesInstanceUid, InstanceNumber(i), instance.sopInstanceUid,
                        instance);
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a), std::get<2>(a)) <
           std::tie(std::get<0>(b), std::get<1>(b), std::get<2>(b));
  });
  for (auto& entry : sorted) info.instances.push_back(std::move(std::get<3>(entry)));

  if (!info.instances.empty()) {
    Json::Value metadata;
    if (rest_.TryGetJson("/instances/" + info.instances.front().orthancId + "/metadata?expand",
                         metadata)) {
      info.callingAet = metadata["RemoteAET"].asString();
    }
  }
  return info;
}

std::string OrthancStudySource::ReadInstance(const std::string& orthancInstanceId) {
  const std::string attachment = "/instances/" + orthancInstanceId + "/attachments/dicom";
  // A file stored while StorageCompression was on stays compressed: ask.
  if (!storageCompression_ && rest_.GetBinary(attachment + "/is-compressed") == "0") {
    return rest_.GetBinary(attachment + "/compressed-data");
  }
  return rest_.GetBinary("/instances/" + orthancInstanceId + "/file");
}

Json::Value OrthancStudySource::GetInstanceTags(const std::string& orthancInstanceId) {
  Json::Value tags;
  if (!rest_.TryGetJson("/instances/" + orthancInstanceId + "/simplified-tags", tags)) {
    return Json::Value(Json::objectValue);
  }
  return tags;
}

}  // namespace CloudIngest::Sdk
