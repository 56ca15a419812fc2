// OrderBuilder: default keys from stored tags, OrderMetadata, manual extras.
#include <gtest/gtest.h>
#include <json/reader.h>
#include <json/writer.h>

#include <sstream>
#include <stdexcept>
#include <string>

#include "Core/Sending/OrderBuilder.h"
#include "Fakes/TestJson.h"

namespace {

using CloudIngest::Testing::ParseJson;

using CloudIngest::Configuration;
using CloudIngest::InstanceInfo;
using CloudIngest::MissingTagError;
using CloudIngest::OrderBuilder;
using CloudIngest::OrderMetadataValue;
using CloudIngest::StudyInfo;

StudyInfo FullStudy() {
  StudyInfo study;
  study.orthancId = "27f7126f-4f66a4ac-17e42cd6-d1d4a7ea-2a1d4d29";
  study.mainTags["StudyInstanceUID"] = "1.2.826.0.1.3680043.8.498.1";
  study.mainTags["PatientID"] = "PID-0001";
  study.mainTags["PatientName"] = "DOE^JANE";
  study.mainTags["PatientBirthDate"] = "19700101";
  study.mainTags["PatientSex"] = "F";
  study.mainTags["AccessionNumber"] = "ACC42";
  study.mainTags["StudyDate"] = "20240131";
  study.mainTags["StudyTime"] = "101500";
  study.mainTags["StudyDescription"] = "CT CHEST";
  study.mainTags["ReferringPhysicianName"] = "HOUSE^GREGORY";
  study.mainTags["InstitutionName"] = "General Hospital";
  study.mainTags["StudyID"] = "S1";
  study.modalities = {"CT", "PT"};
  study.numberOfSeries = 2;
  study.callingAet = "MODALITY1";
  for (int i = 0; i < 3; ++i) {
    InstanceInfo instance;
    instance.orthancId = "instance-" + std::to_string(i);
    study.instances.push_back(instance);
  }
  return study;
}

StudyInfo BareStudy() {
  StudyInfo study;
  study.orthancId = "bare";
  study.mainTags["StudyInstanceUID"] = "1.2.3";
  return study;
}

OrderMetadataValue Tag(const std::string& name) {
  OrderMetadataValue value;
  value.tag = name;
  return value;
}

OrderMetadataValue Constant(const Json::Value& constant) {
  OrderMetadataValue value;
  value.isConstant = true;
  value.constant = constant;
  return value;
}

const Json::Value kNoTags;
const Json::Value kNoExtras;

TEST(OrderBuilder, DefaultKeysComeFromTheStoredTags) {
  const Configuration config;
  const Json::Value order = OrderBuilder(config).Build(FullStudy(), kNoTags, kNoExtras);
  const Json::Value expected = ParseJson(R"({
    "study_instance_uid": "1.2.826.0.1.3680043.8.498.1",
    "patient_id": "PID-0001",
    "patient_name": "DOE^JANE",
    "patient_birth_date": "19700101",
    "patient_sex": "F",
    "accession_number": "ACC42",
    "study_date": "20240131",
    "study_time": "101500",
    "study_description": "CT CHEST",
    "referring_physician_name": "HOUSE^GREGORY",
    "institution_name": "General Hospital",
    "modalities": ["CT", "PT"],
    "number_of_series": "2",
    "number_of_instances": "3",
    "source": {"orthanc_study_id": "27f7126f-4f66a4ac-17e42cd6-d1d4a7ea-2a1d4d29",
               "calling_aet": "MODALITY1"}
  })");
  EXPECT_EQ(expected, order) << order.toStyledString();
}

TEST(OrderBuilder, AbsentTagsAreOmitted) {
  const Configuration config;
  const Json::Value order = OrderBuilder(config).Build(BareStudy(), kNoTags, kNoExtras);
  EXPECT_EQ((std::vector<std::string>{"number_of_instances", "number_of_series", "source",
                                      "study_instance_uid"}),
            order.getMemberNames());
  EXPECT_EQ("0", order["number_of_instances"].asString());
  EXPECT_EQ("0", order["number_of_series"].asString());
  EXPECT_FALSE(order["source"].isMember("calling_aet"));
  EXPECT_EQ("bare", order["source"]["orthanc_study_id"].asString());
}

TEST(OrderBuilder, EmptyValuesAreOmittedAndPaddingTrimmed) {
  StudyInfo study = BareStudy();
  study.mainTags["StudyInstanceUID"] = std::string("1.2.3.4\0", 8);  // UID padded with NUL
  study.mainTags["PatientID"] = "PID7 ";
  study.mainTags["PatientSex"] = "";
  study.mainTags["AccessionNumber"] = "    ";
  study.mainTags["StudyDescription"] = std::string("\0", 1);
  study.mainTags["StudyDate"] = Json::Value();  // null
  study.mainTags["PatientName"] = " LEADING^KEPT ";
  const Configuration config;
  const Json::Value order = OrderBuilder(config).Build(study, kNoTags, kNoExtras);
  EXPECT_EQ("1.2.3.4", order["study_instance_uid"].asString());
  EXPECT_EQ("PID7", order["patient_id"].asString());
  EXPECT_EQ(" LEADING^KEPT", order["patient_name"].asString());
  for (const char* key : {"patient_sex", "accession_number", "study_description", "study_date"}) {
    EXPECT_FALSE(order.isMember(key)) << key;
  }
}

TEST(OrderBuilder, MissingStudyInstanceUidIsAnError) {
  const Configuration config;
  StudyInfo study = FullStudy();
  study.mainTags.removeMember("StudyInstanceUID");
  EXPECT_THROW(OrderBuilder(config).Build(study, kNoTags, kNoExtras), MissingTagError);
  study.mainTags["StudyInstanceUID"] = "  ";
  try {
    OrderBuilder(config).Build(study, kNoTags, kNoExtras);
    FAIL() << "no MissingTagError";
  } catch (const MissingTagError& e) {
    EXPECT_STREQ("study has no StudyInstanceUID", e.what());
  }
}

TEST(OrderBuilder, NonAsciiNamesPassThroughByteForByte) {
  const std::string german = "M\xC3\xBCller^J\xC3\xBCrgen";  // Müller^Jürgen
  const std::string japanese = "Yamada^Tarou=\xE5\xB1\xB1\xE7\x94\xB0^\xE5\xA4\xAA\xE9\x83\x8E";
  for (const std::string& name : {german, japanese}) {
    StudyInfo study = BareStudy();
    study.mainTags["PatientName"] = name;
    study.mainTags["ReferringPhysicianName"] = name;
    const Configuration config;
    const Json::Value order = OrderBuilder(config).Build(study, kNoTags, kNoExtras);
    EXPECT_EQ(name, order["patient_name"].asString());
    EXPECT_EQ(name, order["referring_physician_name"].asString());

    // And through serialisation as the client sends it.
    Json::StreamWriterBuilder writer;
    writer["emitUTF8"] = true;
    const std::string body = Json::writeString(writer, order);
    EXPECT_NE(std::string::npos, body.find(name));
    EXPECT_EQ(name, ParseJson(body)["patient_name"].asString());
  }
}

TEST(OrderBuilder, MultiValuedModalitiesAreSplitAndDeduplicated) {
  StudyInfo study = BareStudy();
  study.modalities = {"CT\\PT", "PT", "", "MR ", "SR\\CT"};
  const Configuration config;
  const Json::Value order = OrderBuilder(config).Build(study, kNoTags, kNoExtras);
  EXPECT_EQ(ParseJson(R"(["CT", "PT", "MR", "SR"])"), order["modalities"]);
}

TEST(OrderBuilder, NoModalitiesMeansNoKey) {
  const Configuration config;
  EXPECT_FALSE(OrderBuilder(config).Build(BareStudy(), kNoTags, kNoExtras).isMember("modalities"));
}

TEST(OrderBuilder, InstitutionNameFallsBackToInstanceTags) {
  const Configuration config;
  const Json::Value instance = ParseJson(R"({"InstitutionName": "Clinic B "})");
  EXPECT_EQ(
      "Clinic B",
      OrderBuilder(config).Build(BareStudy(), instance, kNoExtras)["institution_name"].asString());
  // The study's own tags win over one instance's.
  EXPECT_EQ(
      "General Hospital",
      OrderBuilder(config).Build(FullStudy(), instance, kNoExtras)["institution_name"].asString());
}

TEST(OrderBuilder, OrderMetadataTagsAreLookedUpInMainThenInstanceTags) {
  Configuration config;
  config.orderMetadata["study_id"] = Tag("StudyID");                    // main tags
  config.orderMetadata["performing"] = Tag("PerformingPhysicianName");  // instance tags
  config.orderMetadata["body_part"] = Tag("BodyPartExamined");          // absent
  config.orderMetadata["private"] = Tag("0009,1001");                   // unknown tag
  config.orderMetadata["series_description"] = Tag("0008,103e");        // by number
  config.orderMetadata["image_type"] = Tag("ImageType");                // multi-valued
  config.orderMetadata["operators"] = Tag("OperatorsName");             // numeric key
  const Json::Value instance = ParseJson(R"({
    "PerformingPhysicianName": "SMITH^ANNA",
    "0009,1001": "vendor value",
    "SeriesDescription": "AXIAL 5mm",
    "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
    "0008,1070": "OPERATOR^ONE",
    "StudyID": "from-instance"
  })");
  const Json::Value order = OrderBuilder(config).Build(FullStudy(), instance, kNoExtras);
  EXPECT_EQ("S1", order["study_id"].asString());
  EXPECT_EQ("SMITH^ANNA", order["performing"].asString());
  EXPECT_FALSE(order.isMember("body_part"));
  EXPECT_EQ("vendor value", order["private"].asString());
  EXPECT_EQ("AXIAL 5mm", order["series_description"].asString());
  EXPECT_EQ("ORIGINAL\\PRIMARY\\AXIAL", order["image_type"].asString());
  EXPECT_EQ("OPERATOR^ONE", order["operators"].asString());
}

TEST(OrderBuilder, OrderMetadataReadsOrthancsFullAndShortTagFormats) {
  Configuration config;
  config.orderMetadata["performing"] = Tag("PerformingPhysicianName");
  config.orderMetadata["station"] = Tag("StationName");
  config.orderMetadata["private"] = Tag("0019,10aa");
  config.orderMetadata["protocol"] = Tag("ProtocolName");
  // /instances/{id}/tags: "gggg,eeee" keys, {"Name","Type","Value"} values.
  const Json::Value instance = ParseJson(R"({
    "0008,1050": {"Name": "PerformingPhysicianName", "Type": "String", "Value": "DR^WHO "},
    "0008,1010": "STATION_7",
    "0019,10AA": {"Name": "Unknown Tag & Data", "Type": "String", "Value": "x1"},
    "0018,1030": {"Name": "ProtocolName", "Type": "Null", "Value": null}
  })");
  const Json::Value order = OrderBuilder(config).Build(BareStudy(), instance, kNoExtras);
  EXPECT_EQ("DR^WHO", order["performing"].asString());
  EXPECT_EQ("STATION_7", order["station"].asString());
  EXPECT_EQ("x1", order["private"].asString());
  EXPECT_FALSE(order.isMember("protocol"));
}

TEST(OrderBuilder, OrderMetadataTagNumberFindsAKeywordKey) {
  Configuration config;
  config.orderMetadata["performing"] = Tag("0008,1050");
  const Json::Value instance = ParseJson(R"({"PerformingPhysicianName": "SMITH^ANNA"})");
  EXPECT_EQ("SMITH^ANNA",
            OrderBuilder(config).Build(BareStudy(), instance, kNoExtras)["performing"].asString());
}

TEST(OrderBuilder, OrderMetadataConstantsKeepTheirType) {
  Configuration config;
  config.orderMetadata["site"] = Constant("site-7");
  config.orderMetadata["priority"] = Constant(2);
  config.orderMetadata["weight"] = Constant(1.5);
  config.orderMetadata["urgent"] = Constant(true);
  config.orderMetadata["empty"] = Constant("");
  const Json::Value order = OrderBuilder(config).Build(BareStudy(), kNoTags, kNoExtras);
  EXPECT_EQ(Json::Value("site-7"), order["site"]);
  EXPECT_EQ(Json::Value(2), order["priority"]);
  EXPECT_TRUE(order["priority"].isInt());
  EXPECT_EQ(Json::Value(1.5), order["weight"]);
  EXPECT_EQ(Json::Value(true), order["urgent"]);
  EXPECT_TRUE(order["urgent"].isBool());
  EXPECT_EQ(Json::Value(""), order["empty"]);
}

TEST(OrderBuilder, OrderMetadataOverridesDefaultKeysOnlyWhenItHasAValue) {
  Configuration config;
  config.orderMetadata["patient_name"] = Constant("ANONYMOUS");
  config.orderMetadata["patient_id"] = Tag("OtherPatientIDs");  // absent: default stays
  config.orderMetadata["study_description"] = Tag("RequestedProcedureDescription");
  StudyInfo study = FullStudy();
  study.mainTags["RequestedProcedureDescription"] = "CT THORAX W/O";
  const Json::Value order = OrderBuilder(config).Build(study, kNoTags, kNoExtras);
  EXPECT_EQ("ANONYMOUS", order["patient_name"].asString());
  EXPECT_EQ("PID-0001", order["patient_id"].asString());
  EXPECT_EQ("CT THORAX W/O", order["study_description"].asString());
}

TEST(OrderBuilder, ExtraMetadataOverridesEverything) {
  Configuration config;
  config.orderMetadata["site"] = Constant("site-7");
  const Json::Value extras = ParseJson(
      R"({"site": "site-9", "patient_sex": "O", "ticket": 1234, "tags": ["a", "b"],
          "accession_number": null})");
  const Json::Value order = OrderBuilder(config).Build(FullStudy(), kNoTags, extras);
  EXPECT_EQ("site-9", order["site"].asString());
  EXPECT_EQ("O", order["patient_sex"].asString());
  EXPECT_EQ(Json::Value(1234), order["ticket"]);
  EXPECT_EQ(ParseJson(R"(["a", "b"])"), order["tags"]);
  EXPECT_FALSE(order.isMember("accession_number"));  // null removes a key
  EXPECT_EQ("DOE^JANE", order["patient_name"].asString());
}

TEST(OrderBuilder, ExtraMetadataMustBeAnObjectAndKeepTheStudyUid) {
  const Configuration config;
  EXPECT_THROW(OrderBuilder(config).Build(FullStudy(), kNoTags, ParseJson("[1]")),
               std::invalid_argument);
  EXPECT_THROW(OrderBuilder(config).Build(FullStudy(), kNoTags, ParseJson("\"x\"")),
               std::invalid_argument);
  EXPECT_THROW(OrderBuilder(config).Build(FullStudy(), kNoTags,
                                          ParseJson(R"({"study_instance_uid": null})")),
               std::invalid_argument);
  EXPECT_EQ("9.9.9",
            OrderBuilder(config)
                .Build(FullStudy(), kNoTags,
                       ParseJson(R"({"study_instance_uid": "9.9.9"})"))["study_instance_uid"]
                .asString());
}

TEST(OrderBuilder, CallingAetIsSentOnlyWhenKnown) {
  const Configuration config;
  StudyInfo study = FullStudy();
  study.callingAet = "STORESCU  ";
  EXPECT_EQ(
      "STORESCU",
      OrderBuilder(config).Build(study, kNoTags, kNoExtras)["source"]["calling_aet"].asString());
  study.callingAet.clear();
  const Json::Value source = OrderBuilder(config).Build(study, kNoTags, kNoExtras)["source"];
  EXPECT_FALSE(source.isMember("calling_aet"));
  EXPECT_EQ(study.orthancId, source["orthanc_study_id"].asString());
}

TEST(OrderBuilder, NonStringTagValuesBecomeStrings) {
  StudyInfo study = BareStudy();
  study.mainTags["PatientID"] = 12345;
  study.mainTags["PatientName"] = ParseJson(R"(["A^B", "C^D"])");
  const Configuration config;
  const Json::Value order = OrderBuilder(config).Build(study, kNoTags, kNoExtras);
  EXPECT_EQ(Json::Value("12345"), order["patient_id"]);
  EXPECT_EQ(Json::Value("A^B\\C^D"), order["patient_name"]);
}

TEST(OrderBuilder, WorksWithAParsedConfiguration) {
  const Json::Value section = ParseJson(R"({
    "Url": "https://ingest.example.com", "ClientId": "id", "ClientSecret": "secret",
    "OrderMetadata": {"series": "0008103E", "site": {"Value": "site-7"}}
  })");
  const Configuration config = CloudIngest::ParseConfiguration(section, {});
  const Json::Value instance = ParseJson(R"({"SeriesDescription": "SAG T1"})");
  const Json::Value order = OrderBuilder(config).Build(BareStudy(), instance, kNoExtras);
  EXPECT_EQ("SAG T1", order["series"].asString());
  EXPECT_EQ("site-7", order["site"].asString());
}

}  // namespace
