#include "OrthancDeidentifier.h"

#include <json/writer.h>

#include "OrthancHandles.h"

namespace CloudIngest::Sdk {

std::string OrthancDeidentifier::Deidentify(const std::string& orthancInstanceId,
                                            const DeidentifyRequest& request) {
  Json::Value body(Json::objectValue);
  body["DicomVersion"] = request.dicomVersion;
  // Replacing the UIDs and PatientID, which Orthanc would otherwise draw at random.
  body["Force"] = true;
  body["Keep"] = Json::Value(Json::arrayValue);
  for (const auto& tag : request.keep) body["Keep"].append(tag);
  body["Replace"] = Json::Value(Json::objectValue);
  for (const auto& [tag, value] : request.replace) body["Replace"][tag] = value;
  Json::StreamWriterBuilder writer;
  writer["indentation"] = "";
  writer["emitUTF8"] = true;
  return rest_.PostBinary("/instances/" + orthancInstanceId + "/anonymize",
                          Json::writeString(writer, body));
}

Json::Value OrthancDeidentifier::TagsOf(const std::string& dicomFile) {
  OrthancPluginContext* context = rest_.Context();
  const auto flags =
      static_cast<OrthancPluginDicomToJsonFlags>(OrthancPluginDicomToJsonFlags_ConvertBinaryToNull |
                                                 OrthancPluginDicomToJsonFlags_StopAfterPixelData);
  const OrthancString json(
      context, OrthancPluginDicomBufferToJson(context, dicomFile.data(),
                                              static_cast<uint32_t>(dicomFile.size()),
                                              OrthancPluginDicomToJsonFormat_Human, flags, 0));
  if (json.IsNull()) throw std::runtime_error("Orthanc cannot read the de-identified file");
  return ParseJson(json.ToString());
}

}  // namespace CloudIngest::Sdk
