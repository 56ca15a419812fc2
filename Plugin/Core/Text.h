#pragma once
// Small string helpers shared by the core.
#include <string>

namespace CloudIngest {

// Replaces every occurrence of `needle` (non-empty) in `text`.
void ReplaceAll(std::string& text, const std::string& needle, const std::string& replacement);

}  // namespace CloudIngest
