#include "Core/Sending/UploadPlan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "Core/Packaging/StudyZipper.h"

namespace CloudIngest {

namespace {

std::string Format(const char* format, double value) {
  char text[32];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

// Below a millisecond (a local network) with two decimals, so it never reads "0.0 ms".
std::string Milliseconds(double seconds) {
  return Format(seconds < 0.001 ? "%.2f ms" : "%.1f ms", seconds * 1000);
}
std::string Seconds(double seconds) {
  return Format("%.2f s", seconds);
}
std::string Megabytes(uint64_t bytes) {
  return Format("%.1f MB", static_cast<double>(bytes) / 1e6);
}

unsigned ConnectionsFor(const Configuration& config, std::optional<double> roundTrip) {
  if (config.concurrencyMode == ConcurrencyMode::Fixed || !roundTrip) return config.concurrency;
  const double wanted = std::ceil(*roundTrip / kRoundTripPerConnection);
  return static_cast<unsigned>(std::clamp(wanted, static_cast<double>(config.concurrency),
                                          static_cast<double>(config.maxConcurrency)));
}

// Instances or Zip, and why, for UploadMode "Auto".
std::pair<UploadMode, std::string> ChooseMode(const StudyInfo& study, unsigned connections,
                                              const MeasuredWaits& measured) {
  if (!measured.roundTrip) {
    return {UploadMode::Instances, "UploadMode Auto: Instances, no round trip measured yet"};
  }
  if (StudyZipper::MaximumSize(study, ZipCompression::Store) > kMaxSinglePutBytes) {
    return {UploadMode::Instances, "UploadMode Auto: Instances, the study is over 5 GB"};
  }
  const uint64_t bytes = study.StoredBytes();
  const size_t count = study.instances.size();
  const double roundTrip = *measured.roundTrip;
  // Each upload waits for its answer, `connections` at a time.
  const double perUpload = std::max(roundTrip, measured.smallUpload.value_or(0));
  const double perInstance =
      std::ceil(static_cast<double>(count) / std::max(1u, connections)) * perUpload;
  // One URL and one PUT, after the ZIP is built.
  const double oneZip = 2 * roundTrip + static_cast<double>(bytes) / kZipBuildBytesPerSecond;
  const std::string figures =
      std::to_string(count) + " instances / " + std::to_string(connections) +
      " uploads at a time x " + Milliseconds(perUpload) + " per upload (round trip " +
      Milliseconds(roundTrip) +
      (measured.smallUpload ? ", small upload " + Milliseconds(*measured.smallUpload) : "") +
      ") = " + Seconds(perInstance) + " of waits; one ZIP of " + Megabytes(bytes) + " costs " +
      Seconds(oneZip);
  if (perInstance >= kMinWaitsForZip && perInstance > oneZip) {
    return {UploadMode::Zip, "UploadMode Auto: Zip, " + figures};
  }
  return {UploadMode::Instances, "UploadMode Auto: Instances, " + figures};
}

}  // namespace

UploadPlan PlanUpload(const Configuration& config, UploadMode configured, const StudyInfo& study,
                      const MeasuredWaits& measured) {
  const std::optional<double>& roundTrip = measured.roundTrip;
  UploadPlan plan;
  plan.mode = configured;
  plan.connections = ConnectionsFor(config, roundTrip);
  if (config.concurrencyMode == ConcurrencyMode::Auto) {
    plan.reason = "Concurrency auto: " + std::to_string(plan.connections) + " uploads at a time" +
                  (roundTrip ? " for a " + Milliseconds(*roundTrip) + " round trip"
                             : ", no round trip measured yet");
  }
  if (configured == UploadMode::Auto) {
    auto [mode, why] = ChooseMode(study, plan.connections, measured);
    plan.mode = mode;
    plan.reason = plan.reason.empty() ? why : why + "; " + plan.reason;
  }
  return plan;
}

}  // namespace CloudIngest
