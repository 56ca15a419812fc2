#pragma once
// Which studies the filters and the upload-mode rules select.
#include <string>
#include <vector>

#include "Core/Configuration/Configuration.h"
#include "Core/Orthanc/StudySource.h"
#include "Core/Store/StudyRecord.h"

namespace CloudIngest {

// Whether `study` has one of `modalities` and was sent by one of `aets`
// (an empty list accepts any).
bool StudyMatches(const std::vector<std::string>& modalities, const std::vector<std::string>& aets,
                  const StudyInfo& study);

// A manual send's mode, else the first matching UploadModeRules entry, else UploadMode.
UploadMode ModeFor(const Configuration& config, const StudyRecord& record, const StudyInfo& study);

// The de-identification a study gets: the first matching UploadModeRules
// entry's Deidentify, else the global one; null when it is off. A manual
// send's mode does not change it.
const DeidentifySettings* DeidentifyFor(const Configuration& config, const StudyInfo& study);

}  // namespace CloudIngest
