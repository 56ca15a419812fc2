#pragma once
// The Deidentify key (global and per UploadModeRules entry) and the checks
// that tie it to OrderMetadata.
#include <json/value.h>

#include <string>

#include "Core/Configuration/Configuration.h"

namespace CloudIngest::ConfigurationReaders {

// `value` is the Deidentify object at `path`; keys it leaves out come from
// `base` (a rule's Deidentify over the global one). Enable defaults to true
// once the object is given.
DeidentifySettings ReadDeidentify(const Json::Value& value, const std::string& path,
                                  const DeidentifySettings& base);

// A de-identification that is on needs its PseudonymKey; `path` names the
// Deidentify object it belongs to.
void RequirePseudonymKey(const DeidentifySettings& settings, const std::string& path);

// Refuses an OrderMetadata tag the profile removes (and Keep does not keep)
// while any de-identification is on: the order would re-identify the study.
void CheckOrderMetadataAgainstDeidentify(const Configuration& config);

}  // namespace CloudIngest::ConfigurationReaders
