#pragma once
// JSON text to a value in tests: a malformed literal fails the test loudly.
#include <json/value.h>

#include <stdexcept>
#include <string>

#include "Core/JsonText.h"

namespace CloudIngest::Testing {

inline Json::Value ParseJson(const std::string& text) {
  Json::Value value;
  std::string errors;
  if (!ParseJsonText(Json::CharReaderBuilder(), text, value, errors)) {
    throw std::runtime_error("bad JSON in test: " + errors);
  }
  return value;
}

}  // namespace CloudIngest::Testing
