#pragma once
// The one place that knows how Orthanc versions differ. The plugin is built
// against whichever SDK header the distribution ships (1.10.1 on Debian 12,
// 1.12.6 on Debian 13) and may be loaded by any Orthanc from 1.10.1 on, so
// what it calls is chosen by the version of the Orthanc that loaded it,
// never by the header alone.
#include <orthanc/OrthancCPlugin.h>

#include <string>

namespace CloudIngest::Sdk {

// The oldest Orthanc the plugin runs on.
constexpr int kOldestMajor = 1, kOldestMinor = 10, kOldestRevision = 1;

class RunningOrthanc {
 public:
  explicit RunningOrthanc(OrthancPluginContext* context);

  // As Orthanc reports it: "1.12.7", or "mainline" for a development build.
  const std::string& Version() const { return version_; }
  bool IsAtLeast(int major, int minor, int revision) const;

  // OrthancPluginCreateJob2 (1.11.3): CreateJob is deprecated from then on and
  // logs a warning for every job; 1.10 does not know CreateJob2.
  bool HasCreateJob2() const { return IsAtLeast(1, 11, 3); }
  // Orthanc 1.12.2 adds "Content-Type: text/plain" to every status answer with
  // a body unless the type was set through its own (internal) call, which no
  // SDK call reaches for a status other than 200: a header the plugin sets
  // comes out as a second Content-Type.
  bool AddsTypeToStatusBodies() const { return IsAtLeast(1, 12, 2); }
  // DELETE /jobs/{id} (1.12.2) removes an ended job from the job history;
  // before, the history only forgets its oldest job once JobsHistorySize
  // newer ones ended.
  bool HasDeleteJob() const { return IsAtLeast(1, 12, 2); }
  // Labels on resources, /tools/find's "Labels" (1.12.0).
  bool HasLabels() const { return IsAtLeast(1, 12, 0); }
  // OrthancPluginSetCurrentThreadName (1.12.2): the name in Orthanc's log
  // lines. 1.10 logs "unknown service" for it.
  bool HasThreadNames() const { return IsAtLeast(1, 12, 2); }
  // /system's "Capabilities" (1.12.5): whether /changes takes "type" depends
  // on the index (HasExtendedChanges), so this only says where to look.
  bool ReportsCapabilities() const { return IsAtLeast(1, 12, 5); }

 private:
  std::string version_;
  int major_ = 0, minor_ = 0, revision_ = 0;
  bool mainline_ = false;  // a development build: newer than any release
};

}  // namespace CloudIngest::Sdk
