#include "Core/Configuration/ConfigurationReaders.h"

#include <algorithm>
#include <boost/algorithm/string/case_conv.hpp>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <sstream>

namespace CloudIngest::ConfigurationReaders {

namespace {

// Keeps the message on one line whatever bytes a user put in a key or value.
std::string Escape(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

// Shortens to `max` bytes without cutting a UTF-8 sequence, then escapes.
std::string Shorten(const std::string& s, size_t max = 60) {
  if (s.size() <= max) return Escape(s);
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return Escape(s.substr(0, cut)) + "...";
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

// ASCII only: keys and enum names are ASCII, and a user's UTF-8 stays as written.
std::string Lower(const std::string& text) {
  return boost::algorithm::to_lower_copy(text, std::locale::classic());
}

std::string Upper(const std::string& text) {
  return boost::algorithm::to_upper_copy(text, std::locale::classic());
}

std::string TrimBlanks(const std::string& text) {
  return boost::algorithm::trim_copy_if(text, boost::algorithm::is_any_of(" \t"));
}

std::string Quote(const std::string& s) {
  return "\"" + Shorten(s) + "\"";
}

std::string TypeName(const Json::Value& v) {
  // Indexed by Json::ValueType.
  static const char* const kNames[] = {"null",     "a number",   "a number", "a number",
                                       "a string", "true/false", "an array", "an object"};
  const auto index = static_cast<size_t>(v.type());
  return index < std::size(kNames) ? kNames[index] : "an unknown value";
}

std::string NumberText(double d) {
  std::ostringstream out;
  out.precision(15);
  out << d;
  return out.str();
}

// What the user wrote, for "found ..." (never used for secrets).
std::string Describe(const Json::Value& v) {
  switch (v.type()) {
    case Json::stringValue:
      return Quote(v.asString());
    case Json::booleanValue:
      return v.asBool() ? "true" : "false";
    case Json::intValue:
      return std::to_string(v.asLargestInt());
    case Json::uintValue:
      return std::to_string(v.asLargestUInt());
    case Json::realValue:
      return NumberText(v.asDouble());
    default:
      return TypeName(v);
  }
}

[[noreturn]] void Fail(const std::string& path, const std::string& problem,
                       const std::string& fix) {
  throw ConfigurationError(path + ": " + problem + "; " + fix);
}

std::string Child(const std::string& path, const std::string& key) {
  return path + "." + Shorten(key, 40);
}

// Rejects keys not in `known`, suggesting the closest one when it is close.
void CheckKeys(const Json::Value& object, const std::vector<std::string>& known,
               const std::string& path) {
  for (const std::string& key : object.getMemberNames()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    const std::string lowered = Lower(key);
    const std::string* best = nullptr;
    size_t bestDistance = 0;
    for (const std::string& candidate : known) {
      const size_t d = EditDistance(lowered, Lower(candidate));
      if (best == nullptr || d < bestDistance) {
        best = &candidate;
        bestDistance = d;
      }
    }
    std::string fix;
    if (best != nullptr &&
        bestDistance <=
            std::min<size_t>(4, std::max<size_t>(2, std::max(key.size(), best->size()) / 3))) {
      fix = "did you mean '" + *best + "'?";
    } else {
      std::string list;
      for (const std::string& candidate : known) list += (list.empty() ? "" : ", ") + candidate;
      fix = "remove it; known keys are " + list;
    }
    Fail(Child(path, key), "unknown key", fix);
  }
}

const Json::Value* Find(const Json::Value& object, const char* key) {
  return object.find(key, key + std::char_traits<char>::length(key));
}

bool ReadBool(const Json::Value& object, const char* key, const std::string& path, bool& out) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  if (!v->isBool()) {
    Fail(Child(path, key), "expected true or false, found " + Describe(*v),
         "write true or false without quotes");
  }
  out = v->asBool();
  return true;
}

bool ReadString(const Json::Value& object, const char* key, const std::string& path,
                std::string& out, const std::string& example, Echo echo) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  if (!v->isString()) {
    Fail(Child(path, key),
         "expected a string, found " + (echo == Echo::TypeOnly ? TypeName(*v) : Describe(*v)),
         "set it to a string such as " + example);
  }
  out = v->asString();
  return true;
}

bool ReadInteger(const Json::Value& object, const char* key, const std::string& path, unsigned min,
                 unsigned max, unsigned example, unsigned& out) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  const std::string expected = std::string(min >= 1 ? "a positive integer" : "an integer") + " (" +
                               std::to_string(min) + ".." + std::to_string(max) + ")";
  const std::string fix = "set it to a number such as " + std::to_string(example);
  if (!v->isNumeric())
    Fail(Child(path, key), "expected " + expected + ", found " + Describe(*v), fix);
  const double d = v->asDouble();
  if (!std::isfinite(d) || d != std::floor(d) || d < min || d > max) {
    Fail(Child(path, key), "expected " + expected + ", found " + Describe(*v), fix);
  }
  out = static_cast<unsigned>(d);
  return true;
}

// Seconds: a finite number in (0, max].
bool ReadSeconds(const Json::Value& object, const char* key, const std::string& path, double max,
                 const std::string& example, double& out) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  const std::string expected = "a number of seconds greater than 0 and at most " + NumberText(max);
  const std::string fix = "set it to a number such as " + example;
  if (!v->isNumeric())
    Fail(Child(path, key), "expected " + expected + ", found " + Describe(*v), fix);
  const double d = v->asDouble();
  if (!std::isfinite(d) || d <= 0 || d > max) {
    Fail(Child(path, key), "expected " + expected + ", found " + Describe(*v), fix);
  }
  out = d;
  return true;
}

bool ReadObject(const Json::Value& object, const char* key, const std::string& path,
                const std::string& example, const Json::Value*& out) {
  const Json::Value* v = Find(object, key);
  if (v == nullptr) return false;
  if (!v->isObject()) {
    Fail(Child(path, key), "expected an object, found " + Describe(*v),
         "write it as an object such as " + example);
  }
  out = v;
  return true;
}

}  // namespace CloudIngest::ConfigurationReaders
