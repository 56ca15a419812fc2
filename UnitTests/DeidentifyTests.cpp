// De-identification: pseudonym derivation, the Deidentify configuration, and
// what a de-identified study looks like to the order builder.
#include <gtest/gtest.h>

#include <regex>

#include "Core/Configuration/Configuration.h"
#include "Core/Deidentify/BasicProfile.h"
#include "Core/Deidentify/Pseudonyms.h"
#include "Core/Sending/DeidentifiedSource.h"
#include "Core/Sending/OrderBuilder.h"
#include "Core/Sending/StudyFilter.h"
#include "Fakes/FakeDeidentifier.h"
#include "Fakes/FakeStudySource.h"

using namespace CloudIngest;
using namespace CloudIngest::Testing;

namespace {

const char* const kKey = "site-7-pseudonym-key-0123456789";

Json::Value Section(const std::string& extra) {
  Json::Value section = ParseJson(extra);
  section["Url"] = "https://ingest.example.com/api";
  section["ClientId"] = "site-7";
  section["ClientSecret"] = "s3cr3t";
  return section;
}

std::string ErrorFor(const Json::Value& section) {
  try {
    ParseConfiguration(section, OrthancDefaults{});
  } catch (const ConfigurationError& e) {
    return e.what();
  }
  return "";
}

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

// Expected values computed independently (Python's hmac module):
//   hmac.new(key, value, hashlib.sha256).digest()[:16], as a big-endian integer / upper hex.
TEST(Pseudonyms, MatchKnownVectors) {
  const Pseudonyms pseudonyms(kKey);
  EXPECT_EQ("2.25.190063903517176787331477477680316196933",
            pseudonyms.Uid("1.2.840.113619.2.55.3.604688119.969.1268071029.320"));
  // The HMAC starts with 0x02: no zero padding in the decimal.
  EXPECT_EQ("2.25.3898613809355836868474004338524528029", pseudonyms.Uid("PID-000123"));
  EXPECT_EQ("02EED8804CD2A75F3AE849EC784F9D9D", pseudonyms.PatientId("PID-000123"));
  EXPECT_EQ("B86D7E5AC9E66DC0170E6F4D7C0C0899", pseudonyms.PatientId(""));
}

TEST(Pseudonyms, UidsAreValidDeterministicAndKeyed) {
  const Pseudonyms a(kKey);
  const Pseudonyms b("another-site-key-0123456789");
  const std::regex valid("2\\.25\\.(0|[1-9][0-9]*)");
  for (const std::string original : {"1.2.3", "1.2.3.4", "", "1.2.840.10008.1.2.1"}) {
    const std::string uid = a.Uid(original);
    EXPECT_TRUE(std::regex_match(uid, valid)) << uid;
    EXPECT_LE(uid.size(), 64u);
    EXPECT_EQ(uid, Pseudonyms(kKey).Uid(original));
    EXPECT_NE(uid, b.Uid(original));
  }
  EXPECT_NE(a.Uid("1.2.3"), a.Uid("1.2.3.4"));
}

TEST(DeidentifyConfiguration, IsOffByDefault) {
  const Configuration config = ParseConfiguration(Section("{}"), OrthancDefaults{});
  EXPECT_FALSE(config.deidentify.enable);
}

TEST(DeidentifyConfiguration, ParsesEveryKey) {
  const Configuration config = ParseConfiguration(
      Section(R"({"Deidentify": {"Enable": true, "Profile": "basic", "Keep": ["PatientSex",
                 "0008,1030"], "Replace": {"InstitutionName": "Site 7"},
                 "PseudonymKey": "site-7-pseudonym-key-0123456789",
                 "RefuseModalities": ["us", "SC"]}})"),
      OrthancDefaults{});
  const DeidentifySettings& d = config.deidentify;
  EXPECT_TRUE(d.enable);
  EXPECT_EQ(DeidentifyProfile::Basic, d.profile);
  EXPECT_EQ((std::vector<std::string>{"PatientSex", "0008,1030"}), d.keep);
  EXPECT_EQ("Site 7", d.replace.at("InstitutionName"));
  EXPECT_EQ(kKey, d.pseudonymKey);
  EXPECT_EQ((std::vector<std::string>{"US", "SC"}), d.refuseModalities);
}

TEST(DeidentifyConfiguration, PseudonymKeyIsRequiredAndNeverEchoed) {
  std::string message = ErrorFor(Section(R"({"Deidentify": {"Enable": true}})"));
  EXPECT_TRUE(StartsWith(message, "CloudIngest.Deidentify.PseudonymKey: missing")) << message;
  EXPECT_NE(std::string::npos, message.find("; ")) << message;

  message = ErrorFor(Section(R"({"Deidentify": {"PseudonymKey": ""}})"));
  EXPECT_TRUE(StartsWith(message, "CloudIngest.Deidentify.PseudonymKey: ")) << message;

  message = ErrorFor(Section(R"({"Deidentify": {"PseudonymKey": "short-Hunter2"}})"));
  EXPECT_TRUE(StartsWith(message, "CloudIngest.Deidentify.PseudonymKey: is shorter")) << message;
  EXPECT_EQ(std::string::npos, message.find("Hunter2")) << message;

  message = ErrorFor(Section(R"({"Deidentify": {"PseudonymKey": 12345}})"));
  EXPECT_TRUE(StartsWith(message, "CloudIngest.Deidentify.PseudonymKey: ")) << message;
  EXPECT_EQ(std::string::npos, message.find("12345")) << message;

  // Off: no key needed.
  EXPECT_EQ("", ErrorFor(Section(R"({"Deidentify": {"Enable": false}})")));
}

TEST(DeidentifyConfiguration, RefusesWhatCannotWork) {
  const std::string key = R"("PseudonymKey": "site-7-pseudonym-key-0123456789")";
  struct Case {
    std::string deidentify;
    std::string path;
  } cases[] = {
      {R"({"Profile": "Full", )" + key + "}", "CloudIngest.Deidentify.Profile: "},
      {R"({"Keep": ["PatientID"], )" + key + "}", "CloudIngest.Deidentify.Keep[0]: "},
      {R"({"Keep": ["0020,000D"], )" + key + "}", "CloudIngest.Deidentify.Keep[0]: "},
      {R"({"Replace": {"StudyInstanceUID": "1.2.3"}, )" + key + "}",
       "CloudIngest.Deidentify.Replace.StudyInstanceUID: "},
      {R"({"Replace": {"InstitutionName": 7}, )" + key + "}",
       "CloudIngest.Deidentify.Replace.InstitutionName: "},
      {R"({"RefuseModalities": ["U S"], )" + key + "}",
       "CloudIngest.Deidentify.RefuseModalities[0]: "},
      {R"({"Enabled": true, )" + key + "}", "CloudIngest.Deidentify.Enabled: "},
      {R"("yes")", "CloudIngest.Deidentify: "},
  };
  for (const auto& c : cases) {
    const std::string message = ErrorFor(Section(R"({"Deidentify": )" + c.deidentify + "}"));
    EXPECT_TRUE(StartsWith(message, c.path)) << c.deidentify << " -> " << message;
    EXPECT_NE(std::string::npos, message.find("; ")) << message;
  }
}

TEST(DeidentifyConfiguration, RefusesOrderMetadataTheProfileRemoves) {
  const std::string key = R"("PseudonymKey": "site-7-pseudonym-key-0123456789")";
  for (const char* tag : {"InstitutionName", "PatientBirthDate", "AccessionNumber", "0008,0080"}) {
    const std::string message = ErrorFor(Section(std::string(R"({"OrderMetadata": {"where": ")") +
                                                 tag + R"("}, "Deidentify": {)" + key + "}}"));
    EXPECT_TRUE(StartsWith(message, "CloudIngest.OrderMetadata.where: names ")) << message;
  }
  // Kept, replaced, a constant, or a tag the profile leaves: accepted.
  EXPECT_EQ("", ErrorFor(Section(R"({"OrderMetadata": {"where": "InstitutionName"},
      "Deidentify": {"Keep": ["InstitutionName"], )" +
                                 key + "}}")));
  EXPECT_EQ("", ErrorFor(Section(R"({"OrderMetadata": {"where": "InstitutionName"},
      "Deidentify": {"Replace": {"InstitutionName": "Site 7"}, )" +
                                 key + "}}")));
  EXPECT_EQ("", ErrorFor(Section(R"({"OrderMetadata": {"site": {"Value": "7"}, "m": "Modality",
      "pid": "PatientID"}, "Deidentify": {)" +
                                 key + "}}")));
  // Only while de-identification is on, also when only a rule turns it on.
  EXPECT_EQ("", ErrorFor(Section(R"({"OrderMetadata": {"where": "InstitutionName"}})")));
  const std::string message = ErrorFor(Section(
      R"({"OrderMetadata": {"where": "InstitutionName"}, "UploadModeRules": [{"Modalities":
      ["MR"], "Deidentify": {)" +
      key + "}}]}"));
  EXPECT_TRUE(StartsWith(message, "CloudIngest.OrderMetadata.where: ")) << message;
  EXPECT_NE(std::string::npos, message.find("UploadModeRules[0].Deidentify")) << message;
}

TEST(DeidentifyConfiguration, RuleDeidentifyTakesAbsentKeysFromTheGlobalOne) {
  const Configuration config =
      ParseConfiguration(Section(R"({"UploadMode": "Zip", "Deidentify": {"Enable": false,
          "PseudonymKey": "site-7-pseudonym-key-0123456789", "Keep": ["PatientSex"]},
          "UploadModeRules": [{"Modalities": ["MR"], "Deidentify": {"Enable": true}},
                              {"CallingAets": ["X"], "UploadMode": "Instances"}]})"),
                         OrthancDefaults{});
  ASSERT_EQ(2u, config.uploadModeRules.size());
  const auto& rule = config.uploadModeRules[0];
  ASSERT_TRUE(rule.deidentify.has_value());
  EXPECT_TRUE(rule.deidentify->enable);
  EXPECT_EQ(kKey, rule.deidentify->pseudonymKey);
  EXPECT_EQ(std::vector<std::string>{"PatientSex"}, rule.deidentify->keep);
  EXPECT_EQ(UploadMode::Zip, rule.mode);  // no UploadMode: the global one
  EXPECT_FALSE(config.uploadModeRules[1].deidentify.has_value());

  // A rule with neither UploadMode nor Deidentify still says what is missing.
  const std::string message = ErrorFor(Section(R"({"UploadModeRules": [{"Modalities": ["MR"]}]})"));
  EXPECT_TRUE(StartsWith(message, "CloudIngest.UploadModeRules[0].UploadMode: missing")) << message;
}

TEST(DeidentifyConfiguration, TheFirstMatchingRuleWinsOverTheGlobalSetting) {
  Configuration config;
  config.deidentify.enable = true;
  config.deidentify.pseudonymKey = kKey;
  UploadModeRule mr;
  mr.modalities = {"MR"};
  mr.deidentify = config.deidentify;
  mr.deidentify->enable = false;
  UploadModeRule ct;  // matches CT studies, says nothing about de-identification
  ct.modalities = {"CT"};
  config.uploadModeRules = {mr, ct};
  StudyInfo study;
  study.modalities = {"MR"};
  EXPECT_EQ(nullptr, DeidentifyFor(config, study));
  study.modalities = {"CT"};
  EXPECT_EQ(&config.deidentify, DeidentifyFor(config, study));
  config.deidentify.enable = false;
  EXPECT_EQ(nullptr, DeidentifyFor(config, study));
}

TEST(BasicProfile, KnowsWhatItRemoves) {
  for (const char* tag : {"PatientBirthDate", "InstitutionName", "AccessionNumber", "0010,0030",
                          "0008,0080", "ReferringPhysicianName", "StudyDescription"}) {
    EXPECT_TRUE(BasicProfileRemoves(tag)) << tag;
  }
  for (const char* tag : {"Modality", "PatientID", "StudyInstanceUID", "BodyPartExamined"}) {
    EXPECT_FALSE(BasicProfileRemoves(tag)) << tag;
  }
}

TEST(DeidentifiedSource, TheOrderCarriesOnlyPseudonyms) {
  FakeStudySource stored;
  StudyInfo& original = stored.AddStudy("s1", "1.2.840.99.1", 3);
  original.mainTags["InstitutionName"] = "Hospital";
  original.mainTags["PatientBirthDate"] = "19700101";
  original.mainTags["AccessionNumber"] = "ACC1";
  original.instances[2].seriesInstanceUid = "1.2.840.99.3";
  original.instances[0].seriesInstanceUid = original.instances[1].seriesInstanceUid =
      "1.2.840.99.2";
  DeidentifySettings settings;
  settings.enable = true;
  settings.pseudonymKey = kKey;
  settings.replace["InstitutionName"] = "Site 7";
  FakeDeidentifier engine;
  DeidentifiedSource source(stored, engine, settings);

  const StudyInfo sent = source.GetStudy("s1");
  const Pseudonyms pseudonyms(kKey);
  EXPECT_EQ(pseudonyms.Uid("1.2.840.99.1"), source.StudyInstanceUid());
  ASSERT_EQ(3u, sent.instances.size());
  // Series grouping kept: two series, the same two pseudonyms.
  EXPECT_EQ(sent.instances[0].seriesInstanceUid, sent.instances[1].seriesInstanceUid);
  EXPECT_EQ(pseudonyms.Uid("1.2.840.99.2"), sent.instances[0].seriesInstanceUid);
  EXPECT_EQ(pseudonyms.Uid("1.2.840.99.3"), sent.instances[2].seriesInstanceUid);
  EXPECT_EQ(pseudonyms.Uid(original.instances[0].sopInstanceUid), sent.instances[0].sopInstanceUid);

  Configuration config;
  config.orderMetadata["site"].tag = "InstitutionName";
  const Json::Value order =
      OrderBuilder(config).Build(sent, source.GetInstanceTags(sent.instances[0].orthancId), {});
  EXPECT_EQ(pseudonyms.Uid("1.2.840.99.1"), order["study_instance_uid"].asString());
  EXPECT_EQ(pseudonyms.PatientId("P1"), order["patient_id"].asString());
  EXPECT_EQ(pseudonyms.PatientId("P1"), order["patient_name"].asString());
  EXPECT_EQ("Site 7", order["institution_name"].asString());
  EXPECT_EQ("Site 7", order["site"].asString());
  EXPECT_FALSE(order.isMember("patient_birth_date"));
  EXPECT_FALSE(order.isMember("accession_number"));
  const std::string text = order.toStyledString();
  for (const char* original : {"1.2.840.99", "Doe^Jane", "\"P1\"", "Hospital", "ACC1"}) {
    EXPECT_EQ(std::string::npos, text.find(original)) << original << " in " << text;
  }

  // What Orthanc is asked to write for each instance.
  source.ReadInstance("s1-i3");
  const DeidentifyRequest request = engine.Request("s1-i3");
  EXPECT_EQ("2021b", request.dicomVersion);
  EXPECT_EQ(pseudonyms.Uid(original.instances[2].sopInstanceUid),
            request.replace.at("SOPInstanceUID"));
  EXPECT_EQ(pseudonyms.Uid("1.2.840.99.3"), request.replace.at("SeriesInstanceUID"));
  EXPECT_EQ(pseudonyms.Uid("1.2.840.99.1"), request.replace.at("StudyInstanceUID"));
  EXPECT_EQ(pseudonyms.PatientId("P1"), request.replace.at("PatientID"));
  EXPECT_EQ("Site 7", request.replace.at("InstitutionName"));
}

TEST(DeidentifiedSource, KeptPatientNameIsNotReplaced) {
  FakeStudySource stored;
  stored.AddStudy("s1", "1.2.840.99.1", 1);
  DeidentifySettings settings;
  settings.enable = true;
  settings.pseudonymKey = kKey;
  settings.keep = {"PatientName"};
  FakeDeidentifier engine;
  DeidentifiedSource source(stored, engine, settings);
  source.GetStudy("s1");
  source.ReadInstance("s1-i1");
  EXPECT_EQ(0u, engine.Request("s1-i1").replace.count("PatientName"));
  EXPECT_EQ(std::vector<std::string>{"PatientName"}, engine.Request("s1-i1").keep);
}

TEST(DeidentifiedSource, BurnedInAnnotationsAndListedModalitiesAreRefused) {
  FakeStudySource stored;
  const StudyInfo study = stored.AddStudy("s1", "1.2.840.99.1", 3);
  DeidentifySettings settings;
  settings.pseudonymKey = kKey;
  FakeDeidentifier engine;
  DeidentifiedSource source(stored, engine, settings);
  source.Pseudonymise(study);
  EXPECT_FALSE(source.Refusal().has_value());
  stored.tags["s1-i2"]["BurnedInAnnotation"] = "YES ";
  source.Pseudonymise(study);
  ASSERT_TRUE(source.Refusal().has_value());
  EXPECT_NE(std::string::npos, source.Refusal()->find("BurnedInAnnotation YES"))
      << *source.Refusal();
  stored.tags["s1-i2"]["BurnedInAnnotation"] = "NO";
  source.Pseudonymise(study);
  EXPECT_FALSE(source.Refusal().has_value());
  settings.refuseModalities = {"US", "CT"};
  source.Pseudonymise(study);
  ASSERT_TRUE(source.Refusal().has_value());
  EXPECT_NE(std::string::npos, source.Refusal()->find("modality CT")) << *source.Refusal();
}

TEST(DeidentifiedSource, FrameOfReferenceGetsOnePseudonymPerOriginal) {
  FakeStudySource stored;
  const StudyInfo study = stored.AddStudy("s1", "1.2.840.99.1", 3);
  for (const char* id : {"s1-i1", "s1-i2"}) stored.tags[id]["FrameOfReferenceUID"] = "1.2.840.99.9";
  DeidentifySettings settings;
  settings.pseudonymKey = kKey;
  FakeDeidentifier engine;
  DeidentifiedSource source(stored, engine, settings);
  source.Pseudonymise(study);
  for (const char* id : {"s1-i1", "s1-i2", "s1-i3"}) source.ReadInstance(id);
  EXPECT_EQ(Pseudonyms(kKey).Uid("1.2.840.99.9"),
            engine.Request("s1-i1").replace.at("FrameOfReferenceUID"));
  EXPECT_EQ(engine.Request("s1-i1").replace.at("FrameOfReferenceUID"),
            engine.Request("s1-i2").replace.at("FrameOfReferenceUID"));
  EXPECT_EQ(0u, engine.Request("s1-i3").replace.count("FrameOfReferenceUID"));
}

// The zipper announces a size only when it is the size of what ReadInstance
// returns; a de-identified file is another size than the stored one.
TEST(DeidentifiedSource, SizesAreEstimatesOfTheStoredFiles) {
  FakeStudySource stored;
  const StudyInfo study = stored.AddStudy("s1", "1.2.840.99.1", 2);
  for (const auto& instance : study.instances) EXPECT_EQ(SizeIs::Exact, instance.sizeIs);
  DeidentifySettings settings;
  settings.pseudonymKey = kKey;
  FakeDeidentifier engine;
  DeidentifiedSource source(stored, engine, settings);
  const StudyInfo sent = source.Pseudonymise(study);
  ASSERT_EQ(2u, sent.instances.size());
  for (const auto& instance : sent.instances) {
    EXPECT_EQ(SizeIs::Estimate, instance.sizeIs);
    EXPECT_NE(instance.size, source.ReadInstance(instance.orthancId).size());
  }
}
