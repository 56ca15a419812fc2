#pragma once
// Orthanc's own /jobs routes on the plugin's CloudIngestSend jobs
// (docs/REFERENCE.md, Access control): Orthanc lets any user it admits
// cancel, pause, resume or resubmit any job, so the plugin's HTTP filter asks
// JobsGuard first. A send's job needs operator; other jobs are not the plugin's.
#include <optional>
#include <string>

#include "Core/Configuration/Configuration.h"  // PermissionSettings

namespace CloudIngest {

class IngestService;
class SendJobs;

enum class JobAction { Cancel, Pause, Resume, Resubmit, Delete };

struct JobRequest {
  std::string jobId;
  JobAction action;
};

// `method` `uri` as Orthanc's HTTP filter sees them, when Orthanc would route
// it to POST /jobs/{id}/{cancel,pause,resume,resubmit} or DELETE /jobs/{id}
// (Orthanc 1.12). Orthanc 1.10.1 routes "//", "/./", "/x/../", %-escapes and
// a trailing "/" to the action (measured; its web server resolves all but the
// last before the filter). The parser normalises all of them itself, and
// more (case, escapes of escapes), so that no spelling slips past whatever
// the web server did: matching what Orthanc would not route costs a 403
// instead of a 404.
std::optional<JobRequest> ParseJobRequest(const std::string& method, const std::string& uri);

class JobsGuard {
 public:
  JobsGuard(IngestService& service, SendJobs& jobs, PermissionSettings permissions)
      : service_(service), jobs_(jobs), permissions_(std::move(permissions)) {}

  // False: refuse (Orthanc answers 403), recorded as access_denied for `user`.
  // An allowed cancel of a send's job is noted, so that the send's cancel is
  // audited with `user`.
  bool Allows(const std::string& method, const std::string& uri, const std::string& user) const;

 private:
  IngestService& service_;
  SendJobs& jobs_;
  const PermissionSettings permissions_;
};

}  // namespace CloudIngest
