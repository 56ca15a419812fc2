#pragma once
// How one study's files go, decided when its upload starts: the mode (an
// UploadMode "Auto" becomes Instances or Zip) and the uploads at a time
// (Concurrency "auto" grows with the round-trip time). Both from the
// round-trip time the API's exchanges measured (Cloud/RoundTripMeter.h).
#include <cstdint>
#include <optional>
#include <string>

#include "Core/Cloud/RoundTripMeter.h"
#include "Core/Configuration/Configuration.h"
#include "Core/Orthanc/StudySource.h"

namespace CloudIngest {

// A single S3 PUT holds at most 5 GB: a larger study never goes as one ZIP.
constexpr uint64_t kMaxSinglePutBytes = 5ull * 1000 * 1000 * 1000;

// Concurrency "auto": one upload per this many seconds of round trip, so
// that requests in flight cover the time each waits for its answer. The
// benchmark at 20 ms and 1 Gbit/s: 2.5 ms (8 uploads) was slower than 32.
constexpr double kRoundTripPerConnection = 0.001;
// UploadMode "Auto": the ZIP is built (every instance read) before its PUT
// starts; this local rate prices that wait. Conservative for a local disk.
constexpr double kZipBuildBytesPerSecond = 100e6;
// UploadMode "Auto": Zip only when per-instance waits (each upload waits for
// its answer: the round trip, or a small upload's measured wait when longer)
// would cost at least this long; below it either mode is quick, and per
// instance starts sooner.
constexpr double kMinWaitsForZip = 0.5;

struct UploadPlan {
  UploadMode mode = UploadMode::Instances;  // never Auto
  unsigned connections = 1;                 // uploads at a time (Instances mode)
  // How Auto decided, for the study's history and /preview; empty when
  // neither UploadMode nor Concurrency is automatic.
  std::string reason;
};

// `configured` is the study's mode from UploadMode, UploadModeRules or a
// manual send; `measured` what the exchanges so far measured.
UploadPlan PlanUpload(const Configuration& config, UploadMode configured, const StudyInfo& study,
                      const MeasuredWaits& measured);

}  // namespace CloudIngest
