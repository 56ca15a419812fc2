#pragma once
// Everything the plugin runs, built from a validated Configuration and the
// two SDK seams (study source, logger). Plugin.cpp owns one of these; REST
// handlers and callbacks talk to it, never to globals.
#include <memory>
#include <string>
#include <thread>

#include "AuditLog.h"
#include "ChangeFeed.h"
#include "Clock.h"
#include "Configuration.h"
#include "CurlHttpClient.h"
#include "IngestClient.h"
#include "Logger.h"
#include "RetryPolicy.h"
#include "Scheduler.h"
#include "StopSignal.h"
#include "StudySender.h"
#include "StudySource.h"
#include "TokenProvider.h"
#include "UploadQueue.h"

namespace CloudIngest {

class CloudIngestService {
 public:
  // Opens the database and the audit log (throws on failure: Orthanc must
  // not start with a plugin that cannot keep its promise).
  // `changes` (may be null) is scanned at Start() for studies missed while
  // down, then followed while running so that the next scan starts late.
  CloudIngestService(Configuration config, IStudySource& source, ILogger& log,
                     IChangeFeed* changes = nullptr, std::unique_ptr<IHttpClient> http = nullptr,
                     std::unique_ptr<IClock> clock = nullptr);
  ~CloudIngestService();

  // Called from Orthanc's OnChange callback: a durable insert, nothing else.
  void OnStableStudy(const std::string& orthancStudyId);
  // OrthancStarted: recover interrupted sends, catch up on missed changes (in
  // a thread: no REST calls inside Orthanc's callback), start the workers.
  void Start();
  void Stop();  // OrthancStopped

  // Manual (re)send: queued even if unchanged; returns the tracked entry.
  StudyRecord Send(const EnqueueRequest& request);
  // false: the study is not queued or sending.
  bool Cancel(const std::string& orthancStudyId);

  const Configuration& Config() const { return config_; }
  UploadQueue& Queue() { return *queue_; }
  AuditLog& Audit() { return *audit_; }
  TokenProvider& Tokens() { return *tokens_; }
  IngestClient& Client() { return *client_; }
  IStudySource& Source() { return source_; }
  const IClock& Clock() const { return *clock_; }

 private:
  void FollowChanges();  // the catch-up thread

  Configuration config_;
  IStudySource& source_;
  ILogger& log_;
  IChangeFeed* changes_;
  std::unique_ptr<IClock> clock_;
  std::unique_ptr<IHttpClient> http_;
  std::unique_ptr<UploadQueue> queue_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<TokenProvider> tokens_;
  std::unique_ptr<IngestClient> client_;
  std::unique_ptr<RetryPolicy> retry_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<StudySender> sender_;
  std::thread catchUp_;  // the start-up scan, then ChangeTracker polls
  StopSignal catchUpStop_;
};

}  // namespace CloudIngest
