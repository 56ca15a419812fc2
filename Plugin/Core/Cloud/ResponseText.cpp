#include "Core/Cloud/ResponseText.h"

#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <cstring>
#include <vector>

#include "Core/Cloud/IngestError.h"

namespace CloudIngest::ResponseText {

void Fail(const std::string& message) {
  throw IngestError(FailureKind::Permanent, message);
}

std::string TrimSpace(const std::string& text) {
  return boost::algorithm::trim_copy_if(text, boost::algorithm::is_any_of(" \t\r\n"));
}

namespace {

// Length of the valid UTF-8 sequence starting at text[i], 0 if invalid.
size_t Utf8SequenceLength(const std::string& text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length;
  unsigned char min2 = 0x80;
  unsigned char max2 = 0xBF;
  if (lead < 0x80) {
    return 1;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) min2 = 0xA0;  // overlong
    if (lead == 0xED) max2 = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) min2 = 0x90;
    if (lead == 0xF4) max2 = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size()) {
    return 0;
  }
  if (byte(i + 1) < min2 || byte(i + 1) > max2) {
    return 0;
  }
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) {
      return 0;
    }
  }
  return length;
}

}  // namespace

std::string Printable(const std::string& text, size_t limit) {
  static const std::string kEllipsis = "...";
  std::string result;
  std::vector<size_t> boundaries;  // where each character starts, to cut cleanly
  bool pendingSpace = false;
  for (size_t i = 0; i < text.size() && result.size() <= limit;) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead <= 0x20 || lead == 0x7F) {
      pendingSpace = !result.empty();
      ++i;
      continue;
    }
    if (pendingSpace) {
      boundaries.push_back(result.size());
      result += ' ';
      pendingSpace = false;
    }
    boundaries.push_back(result.size());
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      result += '?';
      ++i;
    } else {
      result.append(text, i, length);
      i += length;
    }
  }
  if (result.size() > limit) {
    size_t cut = 0;
    for (const size_t boundary : boundaries) {
      if (boundary + kEllipsis.size() > limit) {
        break;
      }
      cut = boundary;
    }
    result.resize(cut);
    while (!result.empty() && result.back() == ' ') {
      result.pop_back();
    }
    result += kEllipsis;
  }
  return result;
}

const Json::Value* FirstMember(const Json::Value& object, std::initializer_list<const char*> keys,
                               const char** foundKey) {
  for (const char* key : keys) {
    const Json::Value* member = object.find(key, key + std::strlen(key));
    if (member != nullptr && !member->isNull()) {
      if (foundKey != nullptr) {
        *foundKey = key;
      }
      return member;
    }
  }
  return nullptr;
}

}  // namespace CloudIngest::ResponseText
