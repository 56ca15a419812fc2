#include "Core/Store/StudyRecord.h"

#include <boost/algorithm/string.hpp>

#include <algorithm>
#include <cctype>

namespace CloudIngest {

std::string ToString(StudyState state) {
  switch (state) {
    case StudyState::Queued:
      return "queued";
    case StudyState::Sending:
      return "sending";
    case StudyState::Sent:
      return "sent";
    case StudyState::Failed:
      return "failed";
    case StudyState::Cancelled:
      return "cancelled";
  }
  return "unknown";  // unreachable for valid enum values
}

std::optional<StudyState> ParseStudyState(const std::string& text) {
  // Case-insensitive: "?state=Sent" from a person typing a URL should work too.
  const std::string lower = boost::algorithm::to_lower_copy(text, std::locale::classic());
  for (const StudyState state : {StudyState::Queued, StudyState::Sending, StudyState::Sent,
                                 StudyState::Failed, StudyState::Cancelled}) {
    if (lower == ToString(state)) {
      return state;
    }
  }
  return std::nullopt;
}

}  // namespace CloudIngest
