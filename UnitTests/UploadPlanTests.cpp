#include <gtest/gtest.h>

#include "Core/Cloud/RoundTripMeter.h"
#include "Core/Sending/UploadPlan.h"

using namespace CloudIngest;

namespace {

StudyInfo Study(unsigned count, uint64_t size) {
  StudyInfo study;
  study.orthancId = "s";
  for (unsigned i = 0; i < count; ++i) {
    InstanceInfo instance;
    instance.orthancId = "i" + std::to_string(i);
    instance.sopInstanceUid = "1.2.3." + std::to_string(i);
    instance.size = size;
    study.instances.push_back(instance);
  }
  return study;
}

Configuration AutoConcurrency(unsigned cap = 32) {
  Configuration config;
  config.concurrencyMode = ConcurrencyMode::Auto;
  config.maxConcurrency = cap;
  return config;
}

MeasuredWaits RoundTrip(double seconds) {
  return {seconds, std::nullopt};
}

bool Mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(UploadPlan, FixedSettingsAreKeptAndNeedNoReason) {
  Configuration config;
  config.concurrency = 6;
  const UploadPlan plan = PlanUpload(config, UploadMode::Zip, Study(10, 1000), RoundTrip(0.08));
  EXPECT_EQ(UploadMode::Zip, plan.mode);
  EXPECT_EQ(6u, plan.connections);
  EXPECT_EQ("", plan.reason);
}

TEST(UploadPlan, AutoConcurrencyGrowsWithTheRoundTripBetweenFourAndTheCap) {
  const StudyInfo study = Study(10, 1000);
  const auto connections = [&](double roundTrip, unsigned cap = 32) {
    return PlanUpload(AutoConcurrency(cap), UploadMode::Instances, study, RoundTrip(roundTrip))
        .connections;
  };
  EXPECT_EQ(4u, connections(0.0005));  // never fewer than 4
  EXPECT_EQ(20u, connections(0.020));  // one per millisecond
  EXPECT_EQ(32u, connections(0.050));  // the cap
  EXPECT_EQ(12u, connections(0.200, 12));
  const UploadPlan unmeasured =
      PlanUpload(AutoConcurrency(), UploadMode::Instances, study, MeasuredWaits{});
  EXPECT_EQ(4u, unmeasured.connections);
  EXPECT_TRUE(Mentions(unmeasured.reason, "no round trip measured yet")) << unmeasured.reason;
  const UploadPlan measured =
      PlanUpload(AutoConcurrency(), UploadMode::Instances, study, RoundTrip(0.02));
  EXPECT_TRUE(Mentions(measured.reason, "20 uploads at a time for a 20.0 ms")) << measured.reason;
}

TEST(UploadPlan, AutoModeZipsManySmallInstancesWhenRoundTripsDominate) {
  Configuration config;  // Concurrency 4
  // 2,000 x 10 KB at 20 ms: 500 waits of 20 ms = 10 s against 0.24 s for one ZIP.
  const UploadPlan plan =
      PlanUpload(config, UploadMode::Auto, Study(2000, 10000), RoundTrip(0.020));
  EXPECT_EQ(UploadMode::Zip, plan.mode);
  EXPECT_TRUE(Mentions(plan.reason, "UploadMode Auto: Zip")) << plan.reason;
  EXPECT_TRUE(Mentions(plan.reason, "10.00 s of waits")) << plan.reason;
}

TEST(UploadPlan, AutoModeSendsLargeInstancesOneByOne) {
  // 500 x 512 KB at 80 ms over 32 uploads: 16 waits = 1.28 s, less than
  // building a 262 MB ZIP first (2.6 s).
  const UploadPlan plan =
      PlanUpload(AutoConcurrency(), UploadMode::Auto, Study(500, 524288), RoundTrip(0.080));
  EXPECT_EQ(UploadMode::Instances, plan.mode);
  EXPECT_EQ(32u, plan.connections);
  EXPECT_TRUE(Mentions(plan.reason, "UploadMode Auto: Instances")) << plan.reason;
  EXPECT_TRUE(Mentions(plan.reason, "Concurrency auto: 32")) << plan.reason;
}

TEST(UploadPlan, AutoModeKeepsInstancesWhenWaitsCostUnderHalfASecond) {
  Configuration config;
  // On a local network: 500 waits of 0.5 ms, 0.25 s in all.
  EXPECT_EQ(UploadMode::Instances,
            PlanUpload(config, UploadMode::Auto, Study(2000, 10000), RoundTrip(0.0005)).mode);
}

TEST(UploadPlan, AutoModeWithoutAMeasureOrOverFiveGigabytesSendsInstances) {
  Configuration config;
  const UploadPlan unmeasured =
      PlanUpload(config, UploadMode::Auto, Study(2000, 10000), MeasuredWaits{});
  EXPECT_EQ(UploadMode::Instances, unmeasured.mode);
  EXPECT_TRUE(Mentions(unmeasured.reason, "no round trip measured yet"));
  // 3,000 x 2 MB = 6 GB, where round trips alone would favour one ZIP.
  const UploadPlan huge =
      PlanUpload(config, UploadMode::Auto, Study(3000, 2000000), RoundTrip(0.5));
  EXPECT_EQ(UploadMode::Instances, huge.mode);
  EXPECT_TRUE(Mentions(huge.reason, "over 5 GB")) << huge.reason;
}

TEST(UploadPlan, AutoModeCountsASmallUploadsMeasuredWaitWhenLongerThanTheRoundTrip) {
  Configuration config;  // Concurrency 4
  // On a local network whose store takes 5 ms a file: 500 waits of 5 ms.
  const MeasuredWaits slowStore{0.0006, 0.005};
  const UploadPlan plan = PlanUpload(config, UploadMode::Auto, Study(2000, 10000), slowStore);
  EXPECT_EQ(UploadMode::Zip, plan.mode);
  EXPECT_TRUE(
      Mentions(plan.reason, "x 5.0 ms per upload (round trip 0.60 ms, small upload 5.0 ms)"))
      << plan.reason;
  // The same store, large instances: 125 waits of 5 ms stay per instance.
  EXPECT_EQ(UploadMode::Instances,
            PlanUpload(config, UploadMode::Auto, Study(500, 524288), slowStore).mode);
}

TEST(RecentSamples, SmallestAndMedianOfTheRecentSamples) {
  RecentSamples samples;
  EXPECT_FALSE(samples.Smallest().has_value());
  EXPECT_FALSE(samples.Median().has_value());
  samples.Record(0);  // not measured
  samples.Record(-1);
  EXPECT_FALSE(samples.Smallest().has_value());
  samples.Record(0.09);
  samples.Record(0.08);
  samples.Record(0.30);  // the server was busy
  EXPECT_DOUBLE_EQ(0.08, *samples.Smallest());
  EXPECT_DOUBLE_EQ(0.09, *samples.Median());
  // Older samples roll out: the link got slower.
  for (size_t i = 0; i < RecentSamples::kSamples; ++i) samples.Record(0.2);
  EXPECT_DOUBLE_EQ(0.2, *samples.Smallest());
  EXPECT_DOUBLE_EQ(0.2, *samples.Median());
}

TEST(RoundTripMeter, OnlySmallUploadsMeasureAnUploadsWait) {
  RoundTripMeter meter;
  EXPECT_FALSE(meter.Waits().roundTrip.has_value());
  meter.RecordApiAnswer(0.02);
  meter.RecordUploadAnswer(RoundTripMeter::kSmallUploadBytes + 1, 3.0);  // its bytes' time
  EXPECT_DOUBLE_EQ(0.02, *meter.Waits().roundTrip);
  EXPECT_FALSE(meter.Waits().smallUpload.has_value());
  meter.RecordUploadAnswer(10000, 0.025);
  EXPECT_DOUBLE_EQ(0.025, *meter.Waits().smallUpload);
}
