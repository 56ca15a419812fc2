#include "Core/Sending/MemoryBudget.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>

namespace CloudIngest {

MemoryBudget::Reservation& MemoryBudget::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    ShrinkTo(0);
    budget_ = other.budget_;
    bytes_ = other.bytes_;
    other.budget_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

void MemoryBudget::Reservation::ShrinkTo(uint64_t bytes) {
  if (budget_ == nullptr || bytes >= bytes_) return;
  budget_->Release(bytes_ - bytes);
  bytes_ = bytes;
}

MemoryBudget::Reservation MemoryBudget::Reserve(uint64_t bytes,
                                                const std::function<bool()>& interrupted) {
  const uint64_t wanted = std::min(bytes, capacity_);
  std::unique_lock<std::mutex> lock(mutex_);
  // Polled, because the stop and cancel flags have no way to notify us.
  while (inUse_ + wanted > capacity_) {
    if (interrupted && interrupted()) return {};
    released_.wait_for(lock, std::chrono::milliseconds(100));
  }
  inUse_ += wanted;
  peak_ = std::max(peak_, inUse_);
  return Reservation(this, wanted);
}

void MemoryBudget::Release(uint64_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    inUse_ -= std::min(bytes, inUse_);
  }
  released_.notify_all();
  // glibc keeps freed blocks below its mmap threshold (up to 32 MB) in the
  // arena of the thread that freed them, and Orthanc runs several arenas:
  // without giving them back, memory held in turn by different upload
  // threads adds up far beyond the budget.
  if (bytes >= kTrimAbove) malloc_trim(0);
}

uint64_t MemoryBudget::InUse() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return inUse_;
}

uint64_t MemoryBudget::PeakInUse() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return peak_;
}

}  // namespace CloudIngest
