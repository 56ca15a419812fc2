#include <gtest/gtest.h>

#include "Core/Sending/StudyFilter.h"

using namespace CloudIngest;

namespace {

StudyInfo Study(std::vector<std::string> modalities, std::string callingAet) {
  StudyInfo study;
  study.modalities = std::move(modalities);
  study.callingAet = std::move(callingAet);
  return study;
}

}  // namespace

TEST(StudyFilter, EmptyListsAcceptAnyStudy) {
  EXPECT_TRUE(StudyMatches({}, {}, Study({}, "")));
  EXPECT_TRUE(StudyMatches({}, {}, Study({"OT"}, "ANY")));
}

TEST(StudyFilter, MultiValuedModalitiesCountForEachValue) {
  EXPECT_TRUE(StudyMatches({"PT"}, {}, Study({"CT\\PT"}, "")));
  EXPECT_TRUE(StudyMatches({"PT"}, {}, Study({"CT\\ PT "}, "")));
  EXPECT_FALSE(StudyMatches({"MR"}, {}, Study({"CT\\PT"}, "")));
  EXPECT_FALSE(StudyMatches({"MR"}, {}, Study({}, "")));
}

TEST(StudyFilter, CallingAetIsComparedTrimmed) {
  EXPECT_TRUE(StudyMatches({}, {"SCANNER1"}, Study({"CT"}, " SCANNER1  ")));
  EXPECT_FALSE(StudyMatches({}, {"SCANNER1"}, Study({"CT"}, "SCANNER2")));
  EXPECT_FALSE(StudyMatches({"CT"}, {"SCANNER1"}, Study({"CT"}, "")));
}

TEST(StudyFilter, ManualModeWinsThenTheFirstMatchingRuleThenTheDefault) {
  Configuration config;
  config.uploadMode = UploadMode::Instances;
  config.uploadModeRules = {{{"MR"}, {}, UploadMode::Zip, {}},
                            {{"MR", "CT"}, {}, UploadMode::Nifti, {}}};
  StudyRecord record;
  EXPECT_EQ(ModeFor(config, record, Study({"MR"}, "")), UploadMode::Zip);
  EXPECT_EQ(ModeFor(config, record, Study({"CT"}, "")), UploadMode::Nifti);
  EXPECT_EQ(ModeFor(config, record, Study({"US"}, "")), UploadMode::Instances);
  record.mode = "Instances";
  EXPECT_EQ(ModeFor(config, record, Study({"MR"}, "")), UploadMode::Instances);
}
