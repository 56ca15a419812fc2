#pragma once
// Labels: the study's cloud state as an Orthanc label (Orthanc 1.12.0 or
// newer), so that Orthanc Explorer 2's label filter and /tools/find show
// what went to the cloud (docs/REFERENCE.md, Labels).
#include <json/value.h>

#include <optional>
#include <string>

namespace CloudIngest {

struct LabelSettings {
  bool enable = false;
  // Each absent (null in the configuration) leaves that state unlabelled.
  std::optional<std::string> sending = "cloud-sending";
  std::optional<std::string> sent = "cloud-sent";
  std::optional<std::string> failed = "cloud-failed";
};

// Orthanc's rule (ServerToolbox::IsValidLabel): 1 to 64 ASCII letters,
// digits, '_' or '-'.
bool IsValidOrthancLabel(const std::string& label);

// Reads CloudIngest.Labels (absent: disabled).
void ReadLabels(const Json::Value& section, LabelSettings& out);

}  // namespace CloudIngest
