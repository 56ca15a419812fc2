#pragma once
// GET /studies/{id}/preview: what an automatic send of a study would do now
// (the decisions, the mode, the order, the files), computed with the sender's
// own rules and nothing sent.
#include <json/value.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "Core/Cloud/RoundTripMeter.h"
#include "Core/Configuration/Configuration.h"
#include "Core/Orthanc/Deidentifier.h"
#include "Core/Orthanc/StudySource.h"
#include "Core/Store/StudyRecord.h"

namespace CloudIngest {

// Whether SendWindows let automatic sends start at a given time.
struct SendWindowVerdict {
  bool open = true;
  std::string reason;
};

struct StudyPreview {
  std::string orthancId;
  std::string studyInstanceUid;
  bool filtersMatch = true;  // Filters select it for an automatic send
  std::vector<std::string> modalities;
  std::string callingAet;
  SendWindowVerdict window;
  bool paused = false;
  bool unchanged = false;     // already sent with exactly these instances
  std::string mode;           // "Instances", "Zip" or "Nifti" (Auto: what it picks now)
  unsigned connections = 0;   // uploads at a time
  std::string modeReason;     // how UploadMode/Concurrency "auto" decided; empty otherwise
  Json::Value orderMetadata;  // the new-order body; null when it cannot be built
  std::string orderError;     // why it cannot
  unsigned series = 0;
  unsigned instances = 0;
  uint64_t bytes = 0;  // of the stored DICOM files
  // Why an automatic send would not go now (empty: it would go). A manual
  // send ignores Filters and "unchanged".
  std::vector<std::string> blockedBy;
  // With Deidentify on for the study: what leaves in place of the original
  // identifiers (the order above is then built from the de-identified file).
  bool deidentified = false;
  std::string pseudonymousStudyInstanceUid;
  std::string pseudonymousPatientId;
  std::string patientId;  // the original, for the operator
};

// Filters, mode, order metadata, files and "unchanged" from the study as
// Orthanc holds it now; `tracked` is the plugin's record of it, if any.
// The window and pause decisions are the caller's. Throws StudyNotFound.
// `measured`: the waits measured so far (UploadMode and Concurrency "auto").
// `deidentifier` (may be null) de-identifies one instance, as a send would, to
// show the order of a study sent de-identified.
StudyPreview PreviewSend(const Configuration& config, IStudySource& source,
                         const std::string& orthancId, const std::optional<StudyRecord>& tracked,
                         const MeasuredWaits& measured, IDeidentifier* deidentifier = nullptr);

}  // namespace CloudIngest
