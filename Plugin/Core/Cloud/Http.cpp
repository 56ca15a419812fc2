#include "Core/Cloud/Http.h"

#include <algorithm>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/predicate.hpp>
#include <cstring>

namespace CloudIngest {

bool IsHttpToken(const std::string& text) {
  using namespace boost::algorithm;
  return !text.empty() && all(text, is_from_range('a', 'z') || is_from_range('A', 'Z') ||
                                        is_from_range('0', '9') || is_any_of("!#$%&'*+-.^_`|~"));
}

size_t StringBodySource::Read(char* buffer, size_t max) {
  const size_t count = std::min(max, data_.size() - position_);
  if (count > 0) {
    std::memcpy(buffer, data_.data() + position_, count);
    position_ += count;
  }
  return count;
}

std::string HttpResponse::Header(const std::string& lowerCaseName) const {
  const auto found = headers.find(lowerCaseName);
  return found == headers.end() ? std::string() : found->second;
}

}  // namespace CloudIngest
