#pragma once
// UTC ISO 8601 times, as the audit log and the REST answers write them.
#include <optional>
#include <string>

namespace CloudIngest {

// "2026-11-28T17:04:26.123Z" (milliseconds, rounded).
std::string FormatIsoTime(double unixSeconds);
// "2026-11-28T17:04:26" with anything after the seconds ignored ("Z",
// ".5Z"); nullopt when the text does not start that way.
std::optional<double> ParseIsoTime(const std::string& text);
// Orthanc's "20261128T170426" (UTC, as in a study's LastUpdate); nullopt
// for anything else.
std::optional<double> ParseOrthancTime(const std::string& text);

}  // namespace CloudIngest
