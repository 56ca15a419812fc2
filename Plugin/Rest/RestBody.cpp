#include "RestBody.h"
#include "Core/JsonText.h"

#include <boost/algorithm/string.hpp>

#include <json/json.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace CloudIngest {

Json::Value ParseRestBody(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return Json::Value(Json::objectValue);
  if (body.size() > 1024 * 1024) throw RestBodyError("the body is larger than 1 MiB");
  Json::CharReaderBuilder builder;
  builder["failIfExtra"] = true;
  builder["rejectDupKeys"] = true;
  builder["stackLimit"] = 64;
  Json::Value value;
  std::string errors;
  if (!ParseJsonText(builder, body, value, errors))
    throw RestBodyError("the body is not valid JSON", errors);
  if (!value.isObject()) throw RestBodyError("the body must be a JSON object");
  return value;
}

bool IsJsonContentType(const std::string& contentType) {
  const std::string type = boost::algorithm::trim_copy_if(
      contentType.substr(0, contentType.find(';')), boost::algorithm::is_any_of(" \t"));
  return boost::algorithm::iequals(type, "application/json", std::locale::classic());
}

}  // namespace CloudIngest
