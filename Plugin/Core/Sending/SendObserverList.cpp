#include "Core/Sending/SendObserverList.h"

#include <exception>
#include <string>

namespace CloudIngest {

template <typename Call>
void SendObserverList::Each(const Call& call) {
  for (SendObserver* observer : observers_) {
    try {
      call(*observer);
    } catch (const std::exception& e) {
      // An observer must not throw; should one, the send and the others go on.
      log_.Error(std::string("CloudIngest: an observer of the sends failed: ") + e.what());
    }
  }
}

void SendObserverList::SendStarted(const StudyRecord& claimed) {
  Each([&](SendObserver& o) { o.SendStarted(claimed); });
}

void SendObserverList::SendProgress(const StudyRecord& study) {
  Each([&](SendObserver& o) { o.SendProgress(study); });
}

void SendObserverList::SendEnded(const SendEnd& end) {
  Each([&](SendObserver& o) { o.SendEnded(end); });
}

}  // namespace CloudIngest
