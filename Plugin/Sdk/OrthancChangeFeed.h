#pragma once
#include <mutex>
#include <optional>
#include <string>

#include "Core/Logger.h"
#include "Core/Orthanc/ChangeFeed.h"
#include "OrthancRest.h"
#include "Sdk/RunningOrthanc.h"

namespace CloudIngest::Sdk {

// IChangeFeed over Orthanc's /changes route. Where the index has
// "ExtendedChanges" (Orthanc 1.12.5 or newer reports it in /system), pages
// hold only kLoggedStudyChanges ("type=NewStudy;StableStudy"): one row per
// study instead of several per instance. Otherwise every change, as before.
class OrthancChangeFeed : public IChangeFeed {
 public:
  OrthancChangeFeed(OrthancPluginContext* context, const RunningOrthanc& orthanc, ILogger& log)
      : rest_(context), orthanc_(orthanc), log_(log) {}
  ChangesPage GetChanges(int64_t since, unsigned limit) override;
  int64_t LastSeq() override;

 private:
  // "" or "&type=...": asked of /system at the first read (the index is not
  // open yet when the plugin is initialized).
  const std::string& TypeFilter();

  OrthancRest rest_;
  const RunningOrthanc& orthanc_;
  ILogger& log_;
  std::mutex mutex_;
  std::optional<std::string> typeFilter_;
};

}  // namespace CloudIngest::Sdk
