#include "Text.h"

namespace CloudIngest {

void ReplaceAll(std::string& text, const std::string& needle, const std::string& replacement) {
  if (needle.empty()) return;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + replacement.size())) {
    text.replace(pos, needle.size(), replacement);
  }
}

}  // namespace CloudIngest
