#pragma once
// A byte budget for instances held in memory while they are uploaded, shared
// by every upload thread of every study worker: without it, Instances mode
// holds Concurrency x StudyWorkers whole instances, whatever their size.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace CloudIngest {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t bytes) : capacity_(bytes > 0 ? bytes : 1) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Bytes held until destroyed (or shrunk); moves, never copies.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& other) noexcept { *this = std::move(other); }
    Reservation& operator=(Reservation&& other) noexcept;
    ~Reservation() { ShrinkTo(0); }
    // Gives back what is held beyond `bytes` (e.g. a read buffer once copied).
    void ShrinkTo(uint64_t bytes);
    uint64_t Bytes() const { return bytes_; }

   private:
    friend class MemoryBudget;
    Reservation(MemoryBudget* budget, uint64_t bytes) : budget_(budget), bytes_(bytes) {}
    MemoryBudget* budget_ = nullptr;
    uint64_t bytes_ = 0;
  };

  // Waits until `bytes` fit. More than the whole budget is capped at the
  // budget, so such an instance waits until it is held alone. `interrupted`
  // is polled while waiting: when it turns true, nothing is reserved and
  // the returned reservation holds 0 bytes.
  Reservation Reserve(uint64_t bytes, const std::function<bool()>& interrupted);

  uint64_t Capacity() const { return capacity_; }
  uint64_t InUse() const;
  uint64_t PeakInUse() const;

  // Releasing at least this much also returns freed heap memory to the system.
  static constexpr uint64_t kTrimAbove = 4ull << 20;

 private:
  void Release(uint64_t bytes);

  const uint64_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable released_;
  uint64_t inUse_ = 0;
  uint64_t peak_ = 0;
};

}  // namespace CloudIngest
