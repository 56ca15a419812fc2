#include "RestBody.h"

#include <json/json.h>

#include <memory>

namespace CloudIngest {

Json::Value ParseRestBody(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return Json::Value(Json::objectValue);
  if (body.size() > 1024 * 1024) throw RestBodyError("the body is larger than 1 MiB");
  Json::CharReaderBuilder builder;
  builder["failIfExtra"] = true;
  builder["rejectDupKeys"] = true;
  builder["stackLimit"] = 64;
  const std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  Json::Value value;
  std::string errors;
  bool ok = false;
  try {
    ok = reader->parse(body.data(), body.data() + body.size(), &value, &errors);
  } catch (const Json::Exception& e) {
    errors = e.what();  // jsoncpp throws past stackLimit
  }
  if (!ok) throw RestBodyError("the body is not valid JSON", errors);
  if (!value.isObject()) throw RestBodyError("the body must be a JSON object");
  return value;
}

}  // namespace CloudIngest
