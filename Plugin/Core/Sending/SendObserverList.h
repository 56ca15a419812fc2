#pragma once
// Several observers of the sends (Orthanc's jobs list, the cloud-state
// labels) behind the service's one SendObserver: each hears every event, in
// the order they were added, and one that throws does not keep the others
// from hearing it.
#include <vector>

#include "Core/Logger.h"
#include "Core/Sending/SendObserver.h"

namespace CloudIngest {

class SendObserverList : public SendObserver {
 public:
  explicit SendObserverList(ILogger& log) : log_(log) {}
  // Before the service starts; `observer` outlives the list's use.
  void Add(SendObserver& observer) { observers_.push_back(&observer); }

  void SendStarted(const StudyRecord& claimed) override;
  void SendProgress(const StudyRecord& study) override;
  void SendEnded(const SendEnd& end) override;

 private:
  template <typename Call>
  void Each(const Call& call);

  ILogger& log_;
  std::vector<SendObserver*> observers_;
};

}  // namespace CloudIngest
