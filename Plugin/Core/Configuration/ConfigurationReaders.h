#pragma once
// Typed readers of the CloudIngest section's JSON values, shared by the
// section parse (Configuration.cpp) and the value checks (ConfigurationValues.cpp).
// Each reader fails with a ConfigurationError that reads
//   CloudIngest.<Key>: <problem>; <fix>
#include <json/value.h>

#include <string>
#include <utility>
#include <vector>

#include "Core/Configuration/ConfigurationError.h"

namespace CloudIngest::ConfigurationReaders {

// Whether an error message may quote the value found or only name its type.
enum class Echo { Value, TypeOnly };

std::string Lower(const std::string& text);
std::string Upper(const std::string& text);
// Without leading and trailing spaces and tabs.
std::string TrimBlanks(const std::string& text);

// Shortened, escaped and quoted: safe to put in a one-line message.
std::string Quote(const std::string& text);
std::string TypeName(const Json::Value& value);
std::string NumberText(double number);
// What the user wrote, for "found ..." (never used for secrets).
std::string Describe(const Json::Value& value);

[[noreturn]] void Fail(const std::string& path, const std::string& problem, const std::string& fix);
// "path.key", the key shortened.
std::string Child(const std::string& path, const std::string& key);
// Rejects keys not in `known`, suggesting the closest one when it is close.
void CheckKeys(const Json::Value& object, const std::vector<std::string>& known,
               const std::string& path);
const Json::Value* Find(const Json::Value& object, const char* key);

// Each returns false when `key` is absent (and leaves `out` alone).
bool ReadBool(const Json::Value& object, const char* key, const std::string& path, bool& out);
bool ReadString(const Json::Value& object, const char* key, const std::string& path,
                std::string& out, const std::string& example, Echo echo = Echo::Value);
bool ReadInteger(const Json::Value& object, const char* key, const std::string& path, unsigned min,
                 unsigned max, unsigned example, unsigned& out);
// Seconds: a finite number in (0, max].
bool ReadSeconds(const Json::Value& object, const char* key, const std::string& path, double max,
                 const std::string& example, double& out);
bool ReadObject(const Json::Value& object, const char* key, const std::string& path,
                const std::string& example, const Json::Value*& out);

// An array of strings; `item` checks/normalises each element (path "Key[i]").
template <typename Check>
bool ReadStringArray(const Json::Value& object, const char* key, const std::string& path,
                     const std::string& example, std::vector<std::string>& out, Check item) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  const std::string here = Child(path, key);
  if (!v->isArray()) {
    Fail(here, "expected an array of strings, found " + Describe(*v),
         "write it as an array such as " + example);
  }
  std::vector<std::string> values;
  for (Json::ArrayIndex i = 0; i < v->size(); ++i) {
    const Json::Value& element = (*v)[i];
    const std::string elementPath = here + "[" + std::to_string(i) + "]";
    if (!element.isString()) {
      Fail(elementPath, "expected a string, found " + Describe(element),
           "write it as an array of strings such as " + example);
    }
    values.push_back(item(element.asString(), elementPath));
  }
  out = std::move(values);
  return true;
}

// A string naming one of `choices` (any letter case).
template <typename T>
bool ReadChoice(const Json::Value& section, const char* key,
                const std::vector<std::pair<std::string, T>>& choices, T& out) {
  std::string list;
  for (const auto& choice : choices) list += (list.empty() ? "\"" : " or \"") + choice.first + "\"";
  std::string value;
  if (!ReadString(section, key, "CloudIngest", value, list)) return false;
  for (const auto& choice : choices) {
    if (Lower(value) == Lower(choice.first)) {
      out = choice.second;
      return true;
    }
  }
  Fail(Child("CloudIngest", key), "expected " + list + ", found " + Quote(value),
       "use one of these");
}

}  // namespace CloudIngest::ConfigurationReaders
