#include "Core/JsonText.h"

#include <memory>

namespace CloudIngest {

bool ParseJsonText(const Json::CharReaderBuilder& builder, const std::string& text,
                   Json::Value& value, std::string& errors) {
  const std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  try {
    return reader->parse(text.data(), text.data() + text.size(), &value, &errors);
  } catch (const std::exception& e) {
    errors = e.what();
  } catch (...) {
    errors = "unknown parser failure";
  }
  return false;
}

}  // namespace CloudIngest
