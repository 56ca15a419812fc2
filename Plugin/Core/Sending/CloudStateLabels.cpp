#include "Core/Sending/CloudStateLabels.h"

#include <exception>
#include <utility>

#include "Core/Sending/StudySender.h"

namespace CloudIngest {

namespace {
// Bounds the memory of "logged once": past it, a study may be logged again.
constexpr size_t kMaxRememberedFailures = 10000;
const std::optional<std::string> kNoLabel;
}  // namespace

CloudState CloudStateAfter(SendOutcome outcome) {
  switch (outcome) {
    case SendOutcome::Sent:
    case SendOutcome::Unchanged:
      return CloudState::Sent;
    case SendOutcome::Failed:
      return CloudState::Failed;
    case SendOutcome::Retry:
    case SendOutcome::Deferred:
    case SendOutcome::Interrupted:
      return CloudState::Sending;
    case SendOutcome::Cancelled:
    case SendOutcome::Skipped:
      break;
  }
  return CloudState::None;
}

CloudStateLabels::CloudStateLabels(LabelSettings settings, IStudyLabels& labels, ILogger& log)
    : settings_(std::move(settings)), labels_(labels), log_(log) {}

void CloudStateLabels::SendStarted(const StudyRecord& claimed) {
  Apply(claimed.orthancId, CloudState::Sending);
}

void CloudStateLabels::SendEnded(const SendEnd& end) {
  // Orthanc is stopping: no REST call into it, and Sending, set at the
  // start, is already the study's label.
  if (end.outcome == SendOutcome::Interrupted) return;
  Apply(end.study.orthancId, CloudStateAfter(end.outcome));
}

const std::optional<std::string>& CloudStateLabels::LabelOf(CloudState state) const {
  switch (state) {
    case CloudState::Sending:
      return settings_.sending;
    case CloudState::Sent:
      return settings_.sent;
    case CloudState::Failed:
      return settings_.failed;
    case CloudState::None:
      break;
  }
  return kNoLabel;
}

void CloudStateLabels::Apply(const std::string& orthancStudyId, CloudState state) {
  const std::optional<std::string>& wanted = LabelOf(state);
  try {
    const std::set<std::string> present = labels_.Get(orthancStudyId);
    // Removed first: a reader never sees two of them at once.
    for (const CloudState other : {CloudState::Sending, CloudState::Sent, CloudState::Failed}) {
      const std::optional<std::string>& label = LabelOf(other);
      if (label && label != wanted && present.count(*label) > 0) {
        labels_.Remove(orthancStudyId, *label);
      }
    }
    if (wanted && present.count(*wanted) == 0) labels_.Add(orthancStudyId, *wanted);
    ForgetFailure(orthancStudyId);
  } catch (const std::exception& e) {
    LogFailureOnce(orthancStudyId, e.what());
  }
}

void CloudStateLabels::LogFailureOnce(const std::string& orthancStudyId,
                                      const std::string& problem) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (failing_.size() >= kMaxRememberedFailures) failing_.clear();
    if (!failing_.insert(orthancStudyId).second) return;
  }
  log_.Warning("CloudIngest: cannot set the cloud-state label of study " + orthancStudyId + " (" +
               problem + "); its sends go on unaffected (logged once per study)");
}

void CloudStateLabels::ForgetFailure(const std::string& orthancStudyId) {
  std::lock_guard<std::mutex> lock(mutex_);
  failing_.erase(orthancStudyId);
}

}  // namespace CloudIngest
