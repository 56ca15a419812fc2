#pragma once
// The study's cloud state as one of three Orthanc labels (Labels): sending
// from the start of an attempt, sent or failed at its end. Only one of them
// at a time, and never any other label. A label Orthanc refuses is logged
// once per study and changes nothing about the send.
//
// How each attempt's outcome leaves the study:
//   Sent, Unchanged (already sent as it is)        -> Sent
//   Failed (the plugin gave up)                     -> Failed
//   Retry, Deferred, Interrupted (it goes on later) -> Sending (kept: an
//     interrupted send asks nothing of the stopping Orthanc)
//   Cancelled, Skipped (outside Filters)            -> none of the three
// A cancelled send removes the label of the previous send too: it was
// replaced by Sending when the cancelled attempt started, and what the cloud
// holds after a cancel is the plugin's history to tell, not a label.
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "Core/Configuration/ConfigurationLabels.h"
#include "Core/Logger.h"
#include "Core/Orthanc/StudyLabels.h"
#include "Core/Sending/SendObserver.h"

namespace CloudIngest {

enum class CloudState { None, Sending, Sent, Failed };
CloudState CloudStateAfter(SendOutcome outcome);

class CloudStateLabels : public SendObserver {
 public:
  CloudStateLabels(LabelSettings settings, IStudyLabels& labels, ILogger& log);

  void SendStarted(const StudyRecord& claimed) override;
  void SendProgress(const StudyRecord&) override {}
  void SendEnded(const SendEnd& end) override;

  // The study carries the label of `state` (none for None) and no other of the three.
  void Apply(const std::string& orthancStudyId, CloudState state);

 private:
  const std::optional<std::string>& LabelOf(CloudState state) const;
  void LogFailureOnce(const std::string& orthancStudyId, const std::string& problem);
  void ForgetFailure(const std::string& orthancStudyId);

  const LabelSettings settings_;
  IStudyLabels& labels_;
  ILogger& log_;
  std::mutex mutex_;
  std::set<std::string> failing_;  // studies whose failure was logged
};

}  // namespace CloudIngest
