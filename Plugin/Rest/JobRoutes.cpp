#include "Rest/JobRoutes.h"

#include <boost/algorithm/string/predicate.hpp>

#include <algorithm>
#include <cctype>
#include <vector>

#include "Core/IngestService.h"
#include "Core/Sending/SendJobs.h"
#include "Rest/Permissions.h"

namespace CloudIngest {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : -1;
}

// %XX decoded until nothing changes (bounded): whether the web server decoded
// once before the filter or not, an escaped spelling still reads as the route.
std::string Decoded(std::string text) {
  for (int round = 0; round < 4 && text.find('%') != std::string::npos; round++) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); i++) {
      if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
          HexValue(text[i + 2]) >= 0) {
        out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
        i += 2;
      } else {
        out += text[i];
      }
    }
    if (out == text) break;
    text = std::move(out);
  }
  return text;
}

// The path's segments as routed: empty and "." segments dropped, ".." taking
// the previous one away.
std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> segments;
  size_t begin = 0;
  while (begin <= path.size()) {
    const size_t end = std::min(path.find('/', begin), path.size());
    const std::string segment = path.substr(begin, end - begin);
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    begin = end + 1;
  }
  return segments;
}

std::optional<JobAction> ActionNamed(const std::string& name) {
  static const std::pair<const char*, JobAction> kActions[] = {{"cancel", JobAction::Cancel},
                                                               {"pause", JobAction::Pause},
                                                               {"resume", JobAction::Resume},
                                                               {"resubmit", JobAction::Resubmit}};
  for (const auto& [text, action] : kActions) {
    if (boost::algorithm::iequals(name, text, std::locale::classic())) return action;
  }
  return std::nullopt;
}

}  // namespace

std::optional<JobRequest> ParseJobRequest(const std::string& method, const std::string& uri) {
  const bool post = method == "POST";
  if (!post && method != "DELETE") return std::nullopt;
  // The query string is not the route's (the filter gets the path alone, but be sure).
  const std::vector<std::string> segments = Segments(Decoded(uri.substr(0, uri.find('?'))));
  if (segments.empty() || !boost::algorithm::iequals(segments[0], "jobs", std::locale::classic())) {
    return std::nullopt;
  }
  if (post && segments.size() == 3) {
    if (const auto action = ActionNamed(segments[2])) return JobRequest{segments[1], *action};
  }
  if (!post && segments.size() == 2) return JobRequest{segments[1], JobAction::Delete};
  return std::nullopt;
}

bool JobsGuard::Allows(const std::string& method, const std::string& uri,
                       const std::string& user) const {
  const auto request = ParseJobRequest(method, uri);
  if (!request || !jobs_.StudyOfJob(request->jobId)) return true;  // not a send's job
  if (RoleOf(permissions_, user) < Role::Operator) {
    service_.RecordAccessDenied(user, method, uri);
    return false;
  }
  if (request->action == JobAction::Cancel) jobs_.NoteCancelRequest(request->jobId, user);
  return true;
}

}  // namespace CloudIngest
