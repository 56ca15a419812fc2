#include <gtest/gtest.h>

#include "Sdk/RunningOrthanc.h"

using CloudIngest::Sdk::RunningOrthanc;

namespace {

RunningOrthanc Running(const char* version) {
  OrthancPluginContext context{};
  context.orthancVersion = version;
  return RunningOrthanc(&context);
}

}  // namespace

TEST(RunningOrthanc, ComparesReleasesByNumberNotText) {
  const RunningOrthanc debian12 = Running("1.10.1");
  EXPECT_EQ("1.10.1", debian12.Version());
  EXPECT_TRUE(debian12.IsAtLeast(1, 10, 1));
  EXPECT_TRUE(debian12.IsAtLeast(1, 9, 7));
  EXPECT_FALSE(debian12.IsAtLeast(1, 10, 2));
  EXPECT_FALSE(debian12.IsAtLeast(1, 11, 0));
  EXPECT_TRUE(Running("1.12.10").IsAtLeast(1, 12, 9));  // "1.12.10" < "1.12.9" as text
}

TEST(RunningOrthanc, ChoosesEachCallByTheRunningVersion) {
  EXPECT_FALSE(Running("1.10.1").HasCreateJob2());
  EXPECT_FALSE(Running("1.11.2").HasCreateJob2());
  EXPECT_TRUE(Running("1.11.3").HasCreateJob2());
  EXPECT_FALSE(Running("1.12.1").AddsTypeToStatusBodies());
  EXPECT_TRUE(Running("1.12.2").AddsTypeToStatusBodies());
  EXPECT_TRUE(Running("1.12.7").HasCreateJob2());
  EXPECT_FALSE(Running("1.10.1").HasDeleteJob());
  EXPECT_FALSE(Running("1.12.1").HasDeleteJob());
  EXPECT_TRUE(Running("1.12.2").HasDeleteJob());
  EXPECT_TRUE(Running("1.12.7").HasDeleteJob());
  EXPECT_TRUE(Running("mainline").HasDeleteJob());
}

TEST(RunningOrthanc, MainlineIsNewerThanAnyReleaseAndGarbageOlder) {
  EXPECT_TRUE(Running("mainline").IsAtLeast(99, 0, 0));
  EXPECT_TRUE(Running("mainline").HasCreateJob2());
  EXPECT_FALSE(Running("").IsAtLeast(0, 0, 1));
  EXPECT_FALSE(Running("one.two").HasCreateJob2());
  OrthancPluginContext context{};  // no version string at all
  EXPECT_EQ("", RunningOrthanc(&context).Version());
}
