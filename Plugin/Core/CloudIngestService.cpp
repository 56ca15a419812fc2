#include "CloudIngestService.h"

#include "CatchUpScanner.h"
#include "ChangeTracker.h"
#include "NiftiConverter.h"
#include "StudyZipper.h"

namespace CloudIngest {

namespace {

std::unique_ptr<IHttpClient> MakeCurlClient(const Configuration& config) {
  CurlSettings settings;
  settings.timeout = config.timeout;
  settings.connectTimeout = config.connectTimeout;
  settings.verifyPeers = config.httpsVerifyPeers;
  settings.caCertificates = config.httpsCaCertificates;
  settings.proxy = config.httpProxy;
  return std::make_unique<CurlHttpClient>(settings);
}

TokenSettings MakeTokenSettings(const Configuration& config) {
  TokenSettings settings;
  settings.tokenUrl = config.tokenUrl;
  settings.method = config.tokenMethod;
  settings.clientId = config.clientId;
  settings.clientSecret = config.clientSecret;
  settings.scope = config.scope;
  return settings;
}

}  // namespace

CloudIngestService::CloudIngestService(Configuration config, IStudySource& source, ILogger& log,
                                       IChangeFeed* changes, std::unique_ptr<IHttpClient> http,
                                       std::unique_ptr<IClock> clock)
    : config_(std::move(config)),
      source_(source),
      log_(log),
      changes_(changes),
      clock_(clock ? std::move(clock) : std::make_unique<SystemClock>()),
      http_(http ? std::move(http) : MakeCurlClient(config_)) {
  queue_ = std::make_unique<UploadQueue>(config_.database);
  audit_ = std::make_unique<AuditLog>(config_.auditLog);
  tokens_ = std::make_unique<TokenProvider>(
      MakeTokenSettings(config_), *http_, *clock_, [this](const TokenState& state) {
        try {
          AuditEvent e;
          e.event = "token_issued";
          e.detail = "valid until " + FormatIsoTime(state.expiresAt);
          audit_->Record(e, clock_->Now());
        } catch (const std::exception& error) {
          log_.Error(std::string("CloudIngest: cannot write the audit log: ") + error.what());
        }
      });
  client_ = std::make_unique<IngestClient>(config_, *http_, *tokens_);
  retry_ = std::make_unique<RetryPolicy>(config_.retry);
  scheduler_ = std::make_unique<Scheduler>(
      *queue_, [this](const StudyRecord& study) { sender_->Run(study); }, config_.studyWorkers,
      *clock_, log_);
  sender_ = std::make_unique<StudySender>(SenderDependencies{
      config_, source_, *client_, *queue_, *audit_, *retry_, *clock_, log_, scheduler_->Signal(),
      [this](const std::string& id) { return scheduler_->IsCancelRequested(id); }});
}

CloudIngestService::~CloudIngestService() {
  Stop();
}

void CloudIngestService::OnStableStudy(const std::string& orthancStudyId) {
  if (!config_.autoSend) return;
  EnqueueRequest request;
  request.orthancId = orthancStudyId;
  request.trigger = "auto";
  queue_->Enqueue(request, clock_->Now());
  scheduler_->Wake();
}

void CloudIngestService::Start() {
  // ZIPs left by a crash are never resumed: their studies are sent again.
  if (const size_t stale = StudyZipper::CleanStaleTempFiles(config_.temporaryDirectory) +
                           NiftiConverter::CleanStaleWorkFolders(config_.temporaryDirectory)) {
    log_.Warning("CloudIngest: removed " + std::to_string(stale) +
                 " temporary file(s) of a previous run");
  }
  const unsigned recovered = queue_->RecoverInterrupted(clock_->Now());
  if (recovered > 0) {
    log_.Warning("CloudIngest: " + std::to_string(recovered) +
                 " send(s) interrupted by the last shutdown are queued again");
  }
  scheduler_->Start();
  if (changes_ != nullptr && !catchUp_.joinable()) {
    catchUpStop_.Reset();
    catchUp_ = std::thread([this] { FollowChanges(); });
  }
}

void CloudIngestService::FollowChanges() {
  try {
    if (CatchUpScanner(*changes_, *queue_, *clock_, log_, config_.autoSend).Scan() > 0)
      scheduler_->Wake();
  } catch (const std::exception& e) {
    // The cursor did not move: the next start scans the same changes again.
    log_.Error(std::string("CloudIngest: catching up on missed changes failed: ") + e.what());
    return;
  }
  try {
    ChangeTracker tracker(*changes_, *queue_, *clock_);
    while (catchUpStop_.WaitFor(config_.changesPollInterval)) {
      try {
        tracker.Poll();
      } catch (const std::exception& e) {
        // Harmless: the cursor stays behind and the next poll reads on.
        log_.Warning(std::string("CloudIngest: reading /changes failed: ") + e.what());
      }
    }
  } catch (const std::exception& e) {
    log_.Error(std::string("CloudIngest: following /changes failed: ") + e.what());
  }
}

void CloudIngestService::Stop() {
  catchUpStop_.Stop();
  if (catchUp_.joinable()) catchUp_.join();
  if (scheduler_) scheduler_->Stop();
}

StudyRecord CloudIngestService::Send(const EnqueueRequest& request) {
  EnqueueRequest manual = request;
  manual.trigger = "manual";
  manual.force = true;
  StudyRecord record = queue_->Enqueue(manual, clock_->Now());
  AuditEvent e;
  e.event = "manual_send";
  e.orthancStudyId = request.orthancId;
  e.studyInstanceUid = record.studyInstanceUid;
  e.user = request.requestedBy;
  audit_->Record(e, clock_->Now());
  scheduler_->Wake();
  return record;
}

bool CloudIngestService::Cancel(const std::string& orthancStudyId) {
  if (!queue_->Cancel(orthancStudyId, clock_->Now())) return false;
  scheduler_->RequestCancel(orthancStudyId);
  return true;
}

}  // namespace CloudIngest
