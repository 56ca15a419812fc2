#include "Core/Sending/ProgressRecorder.h"

#include <exception>
#include <string>

namespace CloudIngest {

void ProgressRecorder::Record(unsigned instances, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  MarkActive();
  record_.instancesSent += instances;
  record_.bytesSent += bytes;
  unflushedInstances_ += instances;
  unflushedBytes_ += bytes;
  if (clock_.Now() - lastFlush_ >= kFlushInterval) FlushLocked();
}

void ProgressRecorder::Flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  FlushLocked();
}

void ProgressRecorder::FlushAfterFailure(ILogger& log) {
  try {
    Flush();
  } catch (const std::exception& e) {
    log.Error(std::string("CloudIngest: cannot record progress: ") + e.what());
  }
}

void ProgressRecorder::FlushLocked() {
  lastFlush_ = clock_.Now();
  if (unflushedInstances_ > 0) store_.CountUpload(unflushedBytes_, unflushedInstances_);
  unflushedInstances_ = 0;
  unflushedBytes_ = 0;
  store_.Update(record_, clock_.Now());
  if (observer_ != nullptr) observer_->SendProgress(record_);
}

}  // namespace CloudIngest
