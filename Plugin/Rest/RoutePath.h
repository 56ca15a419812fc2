#pragma once
// The /cloud-ingest/ routes are told apart by splitting the path on '/' and
// comparing segments: one pass over the path, whatever its length. (libstdc++'s
// std::regex recursed once per character, and a 230-character path overflowed
// the stack of Orthanc's HTTP thread.) Nothing a client sends meets std::regex.
#include <optional>
#include <string_view>

namespace CloudIngest {

// The segments between the '/'s of a path, one at a time: "/a/b" gives "", "a", "b".
class PathSegments {
 public:
  explicit PathSegments(std::string_view path) : rest_(path) {}
  // The next segment into `segment`; false once every segment was given.
  bool Next(std::string_view& segment);

 private:
  std::string_view rest_;
  bool done_ = false;
};

// Whether `path` has exactly the segments of `pattern`, where a segment of
// `pattern` is literal text or a placeholder:
//   {study}  an Orthanc study id: 1 to 64 of 0-9, a-f and '-'
//   {order}  an order id: 1 to 128 characters (none of them '/')
//   {any}    any segment but an empty one
// A match gives the segment the placeholder stood for (empty without one), a
// view into `path`.
std::optional<std::string_view> MatchRoute(std::string_view path, std::string_view pattern);

}  // namespace CloudIngest
