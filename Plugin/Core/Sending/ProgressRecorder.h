#pragma once
// An attempt's progress (instances and bytes sent) in its study record and
// the store, written at most every kFlushInterval: two SQLite writes per
// instance were half of the plugin's CPU per instance.
#include <atomic>
#include <cstdint>
#include <mutex>

#include "Core/Clock.h"
#include "Core/Logger.h"
#include "Core/Sending/SendObserver.h"
#include "Core/Store/StudyStore.h"

namespace CloudIngest {

class ProgressRecorder {
 public:
  // `record` is the attempt's own copy; this writes its counters.
  // `observer` (may be null) hears of each write.
  ProgressRecorder(StudyRecord& record, StudyStore& store, const IClock& clock,
                   SendObserver* observer = nullptr)
      : record_(record), store_(store), clock_(clock), observer_(observer) {}

  // Counts what one upload sent (from any upload thread).
  void Record(unsigned instances, uint64_t bytes);
  // Writes what is not written yet, whenever it was last written.
  void Flush();
  // Flush after a failure: what was uploaded still counts, and a database
  // that fails here is reported by the outcome's own write just after.
  void FlushAfterFailure(ILogger& log);

  // The last moment the attempt moved on (an upload, or the start of a step
  // that takes long such as building a ZIP): a study idle past the grouping
  // window would be split in the cloud.
  void MarkActive() { lastActive_ = clock_.Now(); }
  double LastActive() const { return lastActive_.load(); }

  static constexpr double kFlushInterval = 0.5;  // seconds

 private:
  void FlushLocked();

  StudyRecord& record_;
  StudyStore& store_;
  const IClock& clock_;
  SendObserver* observer_;
  std::mutex mutex_;
  std::atomic<double> lastActive_{0};
  double lastFlush_ = 0;
  unsigned unflushedInstances_ = 0;
  uint64_t unflushedBytes_ = 0;
};

}  // namespace CloudIngest
