#include "Core/Cloud/RoundTripMeter.h"

#include <algorithm>
#include <vector>

namespace CloudIngest {

void RecentSamples::Record(double seconds) {
  if (!(seconds > 0)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  samples_[next_] = seconds;
  next_ = (next_ + 1) % kSamples;
  count_ = std::min(count_ + 1, kSamples);
}

std::optional<double> RecentSamples::Smallest() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (count_ == 0) return std::nullopt;
  return *std::min_element(samples_.begin(),
                           samples_.begin() + static_cast<std::ptrdiff_t>(count_));
}

std::optional<double> RecentSamples::Median() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (count_ == 0) return std::nullopt;
  std::vector<double> sorted(samples_.begin(),
                             samples_.begin() + static_cast<std::ptrdiff_t>(count_));
  const auto middle = sorted.begin() + static_cast<std::ptrdiff_t>(count_ / 2);
  std::nth_element(sorted.begin(), middle, sorted.end());
  return *middle;
}

}  // namespace CloudIngest
