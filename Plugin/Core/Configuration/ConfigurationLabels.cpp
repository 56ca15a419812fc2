#include "Core/Configuration/ConfigurationLabels.h"

#include <utility>
#include <vector>

#include "Core/Configuration/ConfigurationReaders.h"

namespace CloudIngest {

using namespace ConfigurationReaders;

namespace {

const std::vector<std::string> kLabelKeys = {"Enable", "Sending", "Sent", "Failed"};
constexpr size_t kMaxLabelLength = 64;  // Orthanc's, for MySQL's primary keys

void ReadLabel(const Json::Value& object, const char* key, const std::string& path,
               const char* example, std::optional<std::string>& out) {
  const Json::Value* value = Find(object, key);
  if (value == nullptr) return;
  const std::string here = Child(path, key);
  if (value->isNull()) {
    out.reset();
    return;
  }
  const std::string fix =
      std::string("use a name such as \"") + example + "\", or null to leave this state unlabelled";
  if (!value->isString()) Fail(here, "expected a label or null, found " + Describe(*value), fix);
  if (!IsValidOrthancLabel(value->asString())) {
    Fail(here,
         "expected 1 to 64 letters, digits, '_' or '-' (Orthanc's rule for labels), found " +
             Quote(value->asString()),
         fix);
  }
  out = value->asString();
}

}  // namespace

bool IsValidOrthancLabel(const std::string& label) {
  if (label.empty() || label.size() > kMaxLabelLength) return false;
  for (const char c : label) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!allowed) return false;
  }
  return true;
}

void ReadLabels(const Json::Value& section, LabelSettings& out) {
  const Json::Value* object = nullptr;
  if (!ReadObject(section, "Labels", "CloudIngest",
                  "{\"Enable\": true, \"Sent\": \"cloud-sent\", \"Failed\": \"cloud-failed\", "
                  "\"Sending\": \"cloud-sending\"}",
                  object)) {
    return;
  }
  const std::string path = "CloudIngest.Labels";
  CheckKeys(*object, kLabelKeys, path);
  ReadBool(*object, "Enable", path, out.enable);
  ReadLabel(*object, "Sending", path, "cloud-sending", out.sending);
  ReadLabel(*object, "Sent", path, "cloud-sent", out.sent);
  ReadLabel(*object, "Failed", path, "cloud-failed", out.failed);
  // One label per state: two states under one name could not be told apart,
  // and leaving one would remove the other.
  const std::pair<const char*, const std::optional<std::string>*> states[] = {
      {"Sending", &out.sending}, {"Sent", &out.sent}, {"Failed", &out.failed}};
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = i + 1; j < 3; ++j) {
      if (*states[i].second && *states[i].second == *states[j].second) {
        Fail(Child(path, states[j].first),
             "is the same label as " + std::string(states[i].first) + " (" +
                 Quote(**states[j].second) + ")",
             "give each state its own label");
      }
    }
  }
}

}  // namespace CloudIngest
