// Issue 22: the study's cloud state as Orthanc labels (Labels), the fan-out
// of the send observers, and the names ThreadStarter gives its threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "Core/Configuration/Configuration.h"
#include "Core/Sending/CloudStateLabels.h"
#include "Core/Sending/SendObserverList.h"
#include "Core/Sending/StudySender.h"
#include "Core/ThreadStarter.h"
#include "Fakes/RecordingLogger.h"
#include "Fakes/TestJson.h"

namespace {

using namespace CloudIngest;
using CloudIngest::Testing::ParseJson;
using CloudIngest::Testing::RecordingLogger;

// ---- configuration

Json::Value Section(const std::string& labels) {
  Json::Value section = ParseJson(
      R"({"Url": "https://ingest.example.com/api", "ClientId": "site-7", "ClientSecret": "x"})");
  if (!labels.empty()) section["Labels"] = ParseJson(labels);
  return section;
}

LabelSettings Parse(const std::string& labels) {
  return ParseConfiguration(Section(labels), OrthancDefaults{}).labels;
}

std::string ErrorFor(const std::string& labels) {
  try {
    Parse(labels);
  } catch (const ConfigurationError& e) {
    return e.what();
  }
  return "";
}

TEST(LabelsConfiguration, AbsentOrDisabledMeansNoLabels) {
  EXPECT_FALSE(Parse("").enable);
  EXPECT_FALSE(Parse(R"({"Enable": false})").enable);
}

TEST(LabelsConfiguration, EnabledHasTheDefaultNames) {
  const LabelSettings labels = Parse(R"({"Enable": true})");
  EXPECT_TRUE(labels.enable);
  EXPECT_EQ("cloud-sending", labels.sending.value_or(""));
  EXPECT_EQ("cloud-sent", labels.sent.value_or(""));
  EXPECT_EQ("cloud-failed", labels.failed.value_or(""));
}

TEST(LabelsConfiguration, NamesAndNullsAreTaken) {
  const LabelSettings labels =
      Parse(R"({"Enable": true, "Sent": "In_Cloud-2", "Failed": "not_sent", "Sending": null})");
  EXPECT_EQ("In_Cloud-2", labels.sent.value_or(""));
  EXPECT_EQ("not_sent", labels.failed.value_or(""));
  EXPECT_FALSE(labels.sending.has_value());
}

TEST(LabelsConfiguration, ErrorsNameTheKeyAndTheFix) {
  EXPECT_EQ(
      "CloudIngest.Labels.Sent: expected 1 to 64 letters, digits, '_' or '-' (Orthanc's rule for "
      "labels), found \"in cloud\"; use a name such as \"cloud-sent\", or null to leave this state "
      "unlabelled",
      ErrorFor(R"({"Enable": true, "Sent": "in cloud"})"));
  EXPECT_NE(std::string::npos, ErrorFor(R"({"Failed": ""})").find("CloudIngest.Labels.Failed: "));
  EXPECT_NE(std::string::npos, ErrorFor(R"({"Sending": 3})")
                                   .find("CloudIngest.Labels.Sending: expected a label or "
                                         "null, found 3"));
  EXPECT_NE(std::string::npos,
            ErrorFor(R"({"Enable": "yes"})").find("CloudIngest.Labels.Enable: "));
  EXPECT_NE(std::string::npos, ErrorFor(R"({"Sent": "a", "Failed": "a"})")
                                   .find("CloudIngest.Labels.Failed: is the same label as Sent"));
  EXPECT_NE(std::string::npos, ErrorFor(R"({"Enabled": true})").find("CloudIngest.Labels"));
  EXPECT_NE(std::string::npos, ErrorFor(R"(true)").find("CloudIngest.Labels: expected an object"));
}

TEST(LabelsConfiguration, OrthancsRuleForLabels) {
  EXPECT_TRUE(IsValidOrthancLabel("abcXYZ0123456789-_"));
  EXPECT_TRUE(IsValidOrthancLabel(std::string(64, 'a')));
  EXPECT_FALSE(IsValidOrthancLabel(std::string(65, 'a')));
  EXPECT_FALSE(IsValidOrthancLabel(""));
  EXPECT_FALSE(IsValidOrthancLabel("a.b"));
  EXPECT_FALSE(IsValidOrthancLabel("a/b"));
  EXPECT_FALSE(IsValidOrthancLabel("\xc3\xa9t\xc3\xa9"));
}

// ---- the labels of the cloud state

// Orthanc's labels of each study; refuses every call for a study in `refused`.
class FakeStudyLabels : public IStudyLabels {
 public:
  std::set<std::string> Get(const std::string& id) override {
    Check(id);
    return labels[id];
  }
  void Add(const std::string& id, const std::string& label) override {
    Check(id);
    writes.push_back("+" + label);
    labels[id].insert(label);
  }
  void Remove(const std::string& id, const std::string& label) override {
    Check(id);
    writes.push_back("-" + label);
    labels[id].erase(label);
  }

  std::map<std::string, std::set<std::string>> labels;
  std::set<std::string> refused;
  std::vector<std::string> writes;

 private:
  void Check(const std::string& id) const {
    if (refused.count(id) > 0) throw std::runtime_error("unknown resource");
  }
};

StudyRecord Study(const std::string& id) {
  StudyRecord study;
  study.orthancId = id;
  return study;
}

SendEnd Ended(const std::string& id, SendOutcome outcome) {
  return SendEnd{Study(id), outcome, {}};
}

LabelSettings Enabled() {
  LabelSettings settings;
  settings.enable = true;
  return settings;
}

using Labels = std::set<std::string>;

TEST(CloudStateLabels, SendingThenSentLeavesOnlySentAndTheUsersOwnLabels) {
  FakeStudyLabels orthanc;
  orthanc.labels["s1"] = {"urgent"};
  RecordingLogger log;
  CloudStateLabels labeller(Enabled(), orthanc, log);
  labeller.SendStarted(Study("s1"));
  EXPECT_EQ((Labels{"urgent", "cloud-sending"}), orthanc.labels["s1"]);
  labeller.SendEnded(Ended("s1", SendOutcome::Sent));
  EXPECT_EQ((Labels{"urgent", "cloud-sent"}), orthanc.labels["s1"]);
  // Removed before the next is added: never two of ours at once.
  EXPECT_EQ((std::vector<std::string>{"+cloud-sending", "-cloud-sending", "+cloud-sent"}),
            orthanc.writes);
}

TEST(CloudStateLabels, EachOutcomeGivesItsState) {
  EXPECT_EQ(CloudState::Sent, CloudStateAfter(SendOutcome::Sent));
  EXPECT_EQ(CloudState::Sent, CloudStateAfter(SendOutcome::Unchanged));
  EXPECT_EQ(CloudState::Failed, CloudStateAfter(SendOutcome::Failed));
  EXPECT_EQ(CloudState::Sending, CloudStateAfter(SendOutcome::Retry));
  EXPECT_EQ(CloudState::Sending, CloudStateAfter(SendOutcome::Deferred));
  EXPECT_EQ(CloudState::Sending, CloudStateAfter(SendOutcome::Interrupted));
  EXPECT_EQ(CloudState::None, CloudStateAfter(SendOutcome::Cancelled));
  EXPECT_EQ(CloudState::None, CloudStateAfter(SendOutcome::Skipped));
}

TEST(CloudStateLabels, FailedThenResentReplacesFailedBySent) {
  FakeStudyLabels orthanc;
  RecordingLogger log;
  CloudStateLabels labeller(Enabled(), orthanc, log);
  labeller.SendStarted(Study("s1"));
  labeller.SendEnded(Ended("s1", SendOutcome::Failed));
  EXPECT_EQ((Labels{"cloud-failed"}), orthanc.labels["s1"]);
  labeller.SendStarted(Study("s1"));
  EXPECT_EQ((Labels{"cloud-sending"}), orthanc.labels["s1"]);
  labeller.SendEnded(Ended("s1", SendOutcome::Sent));
  EXPECT_EQ((Labels{"cloud-sent"}), orthanc.labels["s1"]);
}

TEST(CloudStateLabels, CancelledAndSkippedLeaveNoneOfOurs) {
  FakeStudyLabels orthanc;
  orthanc.labels["s1"] = {"cloud-sent", "mine"};
  orthanc.labels["s2"] = {"mine"};
  RecordingLogger log;
  CloudStateLabels labeller(Enabled(), orthanc, log);
  labeller.SendStarted(Study("s1"));
  labeller.SendEnded(Ended("s1", SendOutcome::Cancelled));
  EXPECT_EQ((Labels{"mine"}), orthanc.labels["s1"]);
  labeller.SendStarted(Study("s2"));
  labeller.SendEnded(Ended("s2", SendOutcome::Skipped));
  EXPECT_EQ((Labels{"mine"}), orthanc.labels["s2"]);
}

TEST(CloudStateLabels, AStateWithoutALabelOnlyRemovesTheOthers) {
  FakeStudyLabels orthanc;
  orthanc.labels["s1"] = {"cloud-failed"};
  LabelSettings settings = Enabled();
  settings.sending.reset();
  settings.sent = "in-cloud";
  RecordingLogger log;
  CloudStateLabels labeller(settings, orthanc, log);
  labeller.SendStarted(Study("s1"));
  EXPECT_EQ(Labels{}, orthanc.labels["s1"]);
  labeller.SendEnded(Ended("s1", SendOutcome::Sent));
  EXPECT_EQ((Labels{"in-cloud"}), orthanc.labels["s1"]);
  // "cloud-sent" is not one of ours under these settings: left alone.
  orthanc.labels["s1"].insert("cloud-sent");
  labeller.SendEnded(Ended("s1", SendOutcome::Failed));
  EXPECT_EQ((Labels{"cloud-sent", "cloud-failed"}), orthanc.labels["s1"]);
}

TEST(CloudStateLabels, AnInterruptedSendAsksNothingOfAStoppingOrthanc) {
  FakeStudyLabels orthanc;
  RecordingLogger log;
  CloudStateLabels labeller(Enabled(), orthanc, log);
  labeller.SendStarted(Study("s1"));
  orthanc.refused = {"s1"};  // any call now would be logged
  labeller.SendEnded(Ended("s1", SendOutcome::Interrupted));
  EXPECT_EQ((Labels{"cloud-sending"}), orthanc.labels["s1"]);
  EXPECT_EQ(0u, log.Count("cannot set"));
}

TEST(CloudStateLabels, NothingIsWrittenWhenTheLabelIsThereAlready) {
  FakeStudyLabels orthanc;
  orthanc.labels["s1"] = {"cloud-sent"};
  RecordingLogger log;
  CloudStateLabels labeller(Enabled(), orthanc, log);
  labeller.Apply("s1", CloudState::Sent);
  EXPECT_TRUE(orthanc.writes.empty());
}

TEST(CloudStateLabels, ARefusedLabelIsLoggedOncePerStudyAndNeverThrows) {
  FakeStudyLabels orthanc;
  orthanc.refused = {"gone", "gone-too"};
  RecordingLogger log;
  CloudStateLabels labeller(Enabled(), orthanc, log);
  EXPECT_NO_THROW(labeller.SendStarted(Study("gone")));
  EXPECT_NO_THROW(labeller.SendEnded(Ended("gone", SendOutcome::Sent)));
  labeller.SendStarted(Study("gone-too"));
  EXPECT_EQ(1u, log.Count("cannot set the cloud-state label of study gone ("));
  EXPECT_EQ(1u, log.Count("cannot set the cloud-state label of study gone-too ("));
  // Once it works again, a later failure is news again.
  orthanc.refused.erase("gone");
  labeller.SendStarted(Study("gone"));
  orthanc.refused.insert("gone");
  labeller.SendStarted(Study("gone"));
  EXPECT_EQ(2u, log.Count("cannot set the cloud-state label of study gone ("));
}

// ---- the fan-out

class CountingObserver : public SendObserver {
 public:
  explicit CountingObserver(bool throws = false) : throws_(throws) {}
  void SendStarted(const StudyRecord&) override { Hear("started"); }
  void SendProgress(const StudyRecord&) override { Hear("progress"); }
  void SendEnded(const SendEnd&) override { Hear("ended"); }
  std::vector<std::string> heard;

 private:
  void Hear(const std::string& what) {
    heard.push_back(what);
    if (throws_) throw std::runtime_error("observer broke");
  }
  bool throws_;
};

TEST(SendObserverList, EveryObserverHearsEveryEventEvenAfterOneThrows) {
  RecordingLogger log;
  SendObserverList list(log);
  CountingObserver first(true), second;
  list.Add(first);
  list.Add(second);
  list.SendStarted(Study("s1"));
  list.SendProgress(Study("s1"));
  list.SendEnded(Ended("s1", SendOutcome::Sent));
  const std::vector<std::string> all{"started", "progress", "ended"};
  EXPECT_EQ(all, first.heard);
  EXPECT_EQ(all, second.heard);
  EXPECT_EQ(3u, log.Count("an observer of the sends failed: observer broke"));
}

TEST(SendObserverList, TheJobsListAndTheLabelsBothHearASend) {
  FakeStudyLabels orthanc;
  RecordingLogger log;
  CloudStateLabels labeller(Enabled(), orthanc, log);
  CountingObserver jobs;
  SendObserverList list(log);
  list.Add(jobs);
  list.Add(labeller);
  list.SendStarted(Study("s1"));
  list.SendEnded(Ended("s1", SendOutcome::Sent));
  EXPECT_EQ((std::vector<std::string>{"started", "ended"}), jobs.heard);
  EXPECT_EQ((Labels{"cloud-sent"}), orthanc.labels["s1"]);
}

// ---- thread names

TEST(ThreadStarterNames, EachThreadIsNamedFirstNumberedAndCutTo15Characters) {
  RecordingLogger log;
  std::mutex mutex;
  std::vector<std::string> names;
  ThreadStarter starter(log, nullptr, [&](const ThreadName& name) {
    std::lock_guard<std::mutex> lock(mutex);
    names.push_back(name.text + (name.lifetime == ThreadLifetime::Attempt ? "/attempt" : ""));
  });
  for (auto& t : starter.Start(2, [] {}, "workers", {"ci-send"})) t.join();
  starter.StartOne([] {}, "uploads", {"ci-upload", ThreadLifetime::Attempt}).join();
  starter.StartOne([] {}, "long", {"ci-a-very-long-thread-name"}).join();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(
      (std::vector<std::string>{"ci-a-very-long-", "ci-send-1", "ci-send-2", "ci-upload/attempt"}),
      names);
}

TEST(ThreadStarterNames, WithoutANamerTheBodyStillRuns) {
  RecordingLogger log;
  ThreadStarter starter(log);
  bool ran = false;
  starter.StartOne([&] { ran = true; }, "one", {"ci-one"}).join();
  EXPECT_TRUE(ran);
}

}  // namespace
