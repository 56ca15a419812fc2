#pragma once
// How a step of a send attempt ends when it cannot go on; StudySender turns
// each into the study's outcome.
#include <stdexcept>
#include <string>

namespace CloudIngest {

// The attempt cannot go on now; the study is queued again and the next
// attempt restarts from its first instance.
class AttemptAborted : public std::runtime_error {
 public:
  explicit AttemptAborted(const std::string& what) : std::runtime_error(what) {}
};

// Retrying cannot help (missing tags, 4xx, refused host).
class PermanentFailure : public std::runtime_error {
 public:
  explicit PermanentFailure(const std::string& what) : std::runtime_error(what) {}
};

// Orthanc is stopping, or the study was cancelled.
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

}  // namespace CloudIngest
