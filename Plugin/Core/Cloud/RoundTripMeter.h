#pragma once
// How long the network and the service make each request wait, measured on
// real exchanges (HttpResponse::answerSeconds). Two figures:
//  - the round trip: the smallest recent answer of the API's own small
//    exchanges (order, upload URL, add-metadata), since the server's time and
//    queueing behind uploads only ever add to a sample;
//  - the wait of one small upload: the median recent answer of PUTs of at
//    most kSmallUploadBytes, i.e. round trip plus the store's time per file,
//    which per-instance sending pays once per instance.
#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>

namespace CloudIngest {

// The last few samples of one figure; thread-safe.
class RecentSamples {
 public:
  static constexpr size_t kSamples = 16;

  // A sample at or below 0 (not measured) is ignored.
  void Record(double seconds);
  // Seconds; nullopt before the first sample.
  std::optional<double> Smallest() const;
  std::optional<double> Median() const;

 private:
  mutable std::mutex mutex_;
  std::array<double, kSamples> samples_{};
  size_t count_ = 0;  // samples held, at most kSamples
  size_t next_ = 0;   // where the next sample goes
};

// What UploadMode/Concurrency "auto" decide from (Sending/UploadPlan.h).
struct MeasuredWaits {
  std::optional<double> roundTrip;    // seconds
  std::optional<double> smallUpload;  // seconds
};

class RoundTripMeter {
 public:
  // A PUT body this small waits mostly for the network and the store, not its bytes.
  static constexpr uint64_t kSmallUploadBytes = 64 * 1024;

  void RecordApiAnswer(double seconds) { api_.Record(seconds); }
  void RecordUploadAnswer(uint64_t bodyBytes, double seconds) {
    if (bodyBytes <= kSmallUploadBytes) uploads_.Record(seconds);
  }
  MeasuredWaits Waits() const { return {api_.Smallest(), uploads_.Median()}; }

 private:
  RecentSamples api_;
  RecentSamples uploads_;
};

}  // namespace CloudIngest
