#include "Core/Configuration/ConfigurationDeidentify.h"

#include <algorithm>

#include "Core/Configuration/ConfigurationReaders.h"
#include "Core/Configuration/ConfigurationValues.h"
#include "Core/Deidentify/BasicProfile.h"
#include "Core/DicomTags.h"

namespace CloudIngest::ConfigurationReaders {

namespace {

const std::vector<std::string> kDeidentifyKeys = {"Enable",  "Profile",      "Keep",
                                                  "Replace", "PseudonymKey", "RefuseModalities"};

// Below this many characters a key is guessable; a site's key is random.
constexpr size_t kMinimumKeyLength = 16;

// Always replaced by their pseudonyms: neither kept nor replaced by hand.
const char* const kPseudonymised[] = {"PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                                      "SOPInstanceUID"};
const char* const kPseudonymisedNumbers[] = {"0010,0020", "0020,000d", "0020,000e", "0008,0018"};

// The keyword of `reference` when it names a pseudonymised tag, else "".
std::string PseudonymisedTag(const std::string& reference) {
  const std::string lower = Lower(reference);
  for (size_t i = 0; i < std::size(kPseudonymised); ++i) {
    if (reference == kPseudonymised[i] || lower == kPseudonymisedNumbers[i]) {
      return kPseudonymised[i];
    }
  }
  return "";
}

void ReadKeep(const Json::Value& object, const std::string& path, DeidentifySettings& out) {
  ReadStringArray(object, "Keep", path, "[\"StudyDescription\", \"PatientSex\"]", out.keep,
                  [](const std::string& tag, const std::string& here) {
                    const std::string normalised = NormaliseTagReference(tag, here);
                    const std::string pseudonymised = PseudonymisedTag(normalised);
                    if (!pseudonymised.empty()) {
                      Fail(here,
                           pseudonymised +
                               " is always replaced by its pseudonym, so it cannot "
                               "be kept",
                           "remove it from Keep");
                    }
                    return normalised;
                  });
}

void ReadReplace(const Json::Value& object, const std::string& path, DeidentifySettings& out) {
  const Json::Value* replace = nullptr;
  if (!ReadObject(object, "Replace", path, "{\"InstitutionName\": \"Site 7\"}", replace)) return;
  const std::string here = Child(path, "Replace");
  std::map<std::string, std::string> values;
  for (const std::string& tag : replace->getMemberNames()) {
    const std::string entry = Child(here, tag);
    const std::string normalised = NormaliseTagReference(tag, entry);
    const std::string pseudonymised = PseudonymisedTag(normalised);
    if (!pseudonymised.empty()) {
      Fail(entry, pseudonymised + " is always replaced by its pseudonym", "remove it from Replace");
    }
    const Json::Value& value = (*replace)[tag];
    if (!value.isString()) {
      Fail(entry, "expected a string, found " + Describe(value),
           "write it as \"" + tag + "\": \"value\"");
    }
    values[normalised] = value.asString();
  }
  out.replace = std::move(values);
}

}  // namespace

DeidentifySettings ReadDeidentify(const Json::Value& value, const std::string& path,
                                  const DeidentifySettings& base) {
  if (!value.isObject()) {
    Fail(path, "expected an object, found " + Describe(value),
         "write it as {\"Enable\": true, \"Profile\": \"Basic\", \"PseudonymKey\": "
         "\"${CLOUD_INGEST_PSEUDONYM_KEY}\"}");
  }
  CheckKeys(value, kDeidentifyKeys, path);
  DeidentifySettings out = base;
  out.enable = true;
  ReadBool(value, "Enable", path, out.enable);

  std::string profile;
  if (ReadString(value, "Profile", path, profile, "\"Basic\"")) {
    if (Lower(profile) != "basic") {
      Fail(Child(path, "Profile"), "expected \"Basic\", found " + Quote(profile),
           "use \"Basic\" (DICOM PS 3.15 basic profile) and list what must stay in Keep");
    }
    out.profile = DeidentifyProfile::Basic;
  }
  ReadKeep(value, path, out);
  ReadReplace(value, path, out);
  // A secret: never echoed.
  ReadString(value, "PseudonymKey", path, out.pseudonymKey, "\"${CLOUD_INGEST_PSEUDONYM_KEY}\"",
             Echo::TypeOnly);
  ReadStringArray(value, "RefuseModalities", path, "[\"US\", \"SC\"]", out.refuseModalities,
                  CheckModality);
  return out;
}

void RequirePseudonymKey(const DeidentifySettings& settings, const std::string& path) {
  if (!settings.enable) return;
  const std::string here = Child(path, "PseudonymKey");
  if (settings.pseudonymKey.empty()) {
    Fail(here,
         "missing or empty (required while de-identification is on; an unset ${VARIABLE} "
         "expands to \"\")",
         "set it to a random secret of at least 16 characters kept for good, e.g. "
         "\"${CLOUD_INGEST_PSEUDONYM_KEY}\" (changing it changes every pseudonym)");
  }
  if (settings.pseudonymKey.size() < kMinimumKeyLength) {
    Fail(here, "is shorter than 16 characters, so pseudonyms could be guessed",
         "use a random secret of at least 16 characters, e.g. from `openssl rand -hex 32`");
  }
}

void CheckOrderMetadataAgainstDeidentify(const Configuration& config) {
  std::vector<std::pair<std::string, const DeidentifySettings*>> active;
  if (config.deidentify.enable) active.emplace_back("CloudIngest.Deidentify", &config.deidentify);
  for (size_t i = 0; i < config.uploadModeRules.size(); ++i) {
    const auto& rule = config.uploadModeRules[i];
    if (rule.deidentify && rule.deidentify->enable) {
      active.emplace_back("CloudIngest.UploadModeRules[" + std::to_string(i) + "].Deidentify",
                          &*rule.deidentify);
    }
  }
  for (const auto& [path, settings] : active) {
    for (const auto& [key, value] : config.orderMetadata) {
      if (value.isConstant || !BasicProfileRemoves(value.tag)) continue;
      const std::string keyword = TagKeywordOf(value.tag);
      const auto named = [&](const std::string& tag) { return TagKeywordOf(tag) == keyword; };
      const bool kept = std::any_of(settings->keep.begin(), settings->keep.end(), named);
      const bool replaced = std::any_of(settings->replace.begin(), settings->replace.end(),
                                        [&](const auto& entry) { return named(entry.first); });
      if (kept || replaced) continue;
      Fail(Child("CloudIngest.OrderMetadata", key),
           "names " + keyword + ", which the de-identification profile of " + path +
               " removes: the order would carry what the files no longer do",
           "remove this entry, add \"" + keyword +
               "\" to that Deidentify's Keep if the "
               "service may see it, or give it a value in its Replace");
    }
  }
}

}  // namespace CloudIngest::ConfigurationReaders
