#pragma once
// Parses JSON text with the reader `builder` describes: one place that turns
// jsoncpp's exceptions (it throws past its stackLimit) into a parse error.
#include <json/reader.h>

#include <string>

namespace CloudIngest {

// false, with `errors` set, when `text` is not what the builder accepts.
bool ParseJsonText(const Json::CharReaderBuilder& builder, const std::string& text,
                   Json::Value& value, std::string& errors);

}  // namespace CloudIngest
