#include "Rest/RoutePath.h"

#include <stdexcept>
#include <string>

namespace CloudIngest {

namespace {

constexpr size_t kMaxStudyIdLength = 64;
constexpr size_t kMaxOrderIdLength = 128;

bool IsPlaceholder(std::string_view segment) {
  return !segment.empty() && segment.front() == '{';
}

bool Fits(std::string_view wanted, std::string_view segment) {
  if (!IsPlaceholder(wanted)) return wanted == segment;
  if (wanted == "{study}") {
    return !segment.empty() && segment.size() <= kMaxStudyIdLength &&
           segment.find_first_not_of("0123456789abcdef-") == std::string_view::npos;
  }
  if (wanted == "{order}") return !segment.empty() && segment.size() <= kMaxOrderIdLength;
  if (wanted == "{any}") return !segment.empty();
  throw std::logic_error("unknown route placeholder " + std::string(wanted));
}

}  // namespace

bool PathSegments::Next(std::string_view& segment) {
  if (done_) return false;
  const size_t slash = rest_.find('/');
  segment = rest_.substr(0, slash);
  if (slash == std::string_view::npos) {
    done_ = true;
  } else {
    rest_.remove_prefix(slash + 1);
  }
  return true;
}

std::optional<std::string_view> MatchRoute(std::string_view path, std::string_view pattern) {
  PathSegments segments(path);
  PathSegments wantedSegments(pattern);
  std::string_view wanted;
  std::string_view segment;
  std::string_view parameter;
  while (wantedSegments.Next(wanted)) {
    if (!segments.Next(segment) || !Fits(wanted, segment)) return std::nullopt;
    if (IsPlaceholder(wanted)) parameter = segment;
  }
  if (segments.Next(segment)) return std::nullopt;  // the path goes on
  return parameter;
}

}  // namespace CloudIngest
