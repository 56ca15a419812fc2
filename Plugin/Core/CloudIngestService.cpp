// Start-up, shutdown and the background threads of the service; the requests
// it answers are in CloudIngestServiceRequests.cpp.
#include "Core/CloudIngestService.h"

#include "Core/Audit/SyslogConnection.h"
#include "Core/Orthanc/CatchUpScanner.h"
#include "Core/Orthanc/ChangeTracker.h"
#include "Core/Packaging/NiftiConverter.h"
#include "Core/Packaging/StudyZipper.h"
#include "Core/Sending/LeaseKeeper.h"
#include "Core/Store/PostgresStudyStore.h"
#include "Core/Store/SqliteStudyStore.h"
#include "Core/Time.h"

namespace CloudIngest {

namespace {

constexpr double kLeaseRenewal = 1.0;   // seconds: how soon a cancel on another node stops a send
constexpr double kDatabaseRetry = 5.0;  // seconds between tries of an unreachable database

// What every connection of the plugin shares: TLS and the proxy.
CurlSettings TlsAndProxy(const Configuration& config) {
  CurlSettings settings;
  settings.verifyPeers = config.httpsVerifyPeers;
  settings.caCertificates = config.httpsCaCertificates;
  settings.proxy = config.httpProxy;
  return settings;
}

std::unique_ptr<IHttpClient> MakeCurlClient(const Configuration& config) {
  CurlSettings settings = TlsAndProxy(config);
  settings.timeout = config.timeout;
  settings.connectTimeout = config.connectTimeout;
  settings.maxSendRate = config.maxSendRate;
  return std::make_unique<CurlHttpClient>(settings);
}

// The webhooks' own client: short timeouts, and no MaxSendRate.
std::unique_ptr<IHttpClient> MakeWebhookClient(const Configuration& config) {
  CurlSettings settings = TlsAndProxy(config);
  settings.timeout = 10;
  settings.connectTimeout = std::min(10.0, config.connectTimeout);
  settings.maxResponseBytes = 64 * 1024;
  return std::make_unique<CurlHttpClient>(settings);
}

// A study of this size (a large DX or mammography instance, or a few MR
// series) should move within 3/4 of the grouping window at MaxSendRate.
constexpr double kTypicalLargeUpload = 50e6;

TokenSettings MakeTokenSettings(const Configuration& config) {
  return TokenSettings{config.tokenUrl, config.tokenMethod, config.clientId, config.clientSecret,
                       config.scope};
}

}  // namespace

CloudIngestService::CloudIngestService(Configuration config, IStudySource& source, ILogger& log,
                                       IChangeFeed* changes, std::unique_ptr<IHttpClient> http,
                                       std::unique_ptr<IClock> clock, IDeidentifier* deidentifier,
                                       ThreadStarter::Namer nameThread)
    : config_(std::move(config)),
      deidentifier_(deidentifier),
      source_(source),
      log_(log),
      changes_(changes),
      clock_(clock ? std::move(clock) : std::make_unique<SystemClock>()),
      http_(http ? std::move(http) : MakeCurlClient(config_)) {
  OpenQueue();
  threads_ = std::make_unique<ThreadStarter>(log_, nullptr, std::move(nameThread));
  OpenAudit();
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
  memory_ = std::make_unique<MemoryBudget>(config_.maxMemory);
  cancels_ = std::make_unique<CancelRegistry>(*queue_);
  scheduler_ = std::make_unique<Scheduler>(
      *queue_, *cancels_, [this](const StudyRecord& study) { RunStudy(study); },
      config_.studyWorkers, *clock_, log_, *threads_);
  sender_ = std::make_unique<StudySender>(SenderDependencies{
      config_, source_, *client_, *queue_, *audit_, *retry_, *clock_, log_, scheduler_->Signal(),
      cancels_.get(), *memory_, *threads_, nullptr, deidentifier_});
  windows_ = SendWindows(config_.sendWindows);
  webhooks_ = std::make_unique<WebhookNotifier>(config_, MakeWebhookClient(config_), *clock_, log_,
                                                *threads_);
  if (config_.maxSendRate > 0 &&
      kTypicalLargeUpload / static_cast<double>(config_.maxSendRate) > 0.75 * config_.groupWindow) {
    log_.Warning("CloudIngest: MaxSendRate " + std::to_string(config_.maxSendRate) +
                 " bytes/s moves 50 MB (a large instance) in " +
                 std::to_string(static_cast<long>(kTypicalLargeUpload / config_.maxSendRate)) +
                 " s, longer than 3/4 of GroupWindow (" +
                 std::to_string(static_cast<long>(config_.groupWindow)) +
                 " s): the service may not group such a study's instances; raise MaxSendRate");
  }
}

void CloudIngestService::RunStudy(const StudyRecord& study) {
  const double now = clock_->Now();
  if (RespectsSendWindows(study.trigger, study.respectWindows) && !windows_.Allows(now)) {
    const double opening = windows_.NextOpening(now);
    queue_->Postpone(
        study, opening,
        "outside SendWindows; waiting for the next window, at " + FormatIsoTime(opening) + " (UTC)",
        now);
    return;
  }
  const SendOutcome outcome = RunClaimed(study);
  if (!webhooks_->Enabled() || (outcome != SendOutcome::Sent && outcome != SendOutcome::Failed)) {
    return;
  }
  try {
    auto ended = queue_->Get(study.orthancId);
    // Only while the row is still this attempt's (not cancelled and sent
    // again meanwhile); a resend asked for during the send may have queued it
    // again already, so the state is the attempt's outcome, not the row's.
    if (ended && ended->claim == study.claim) {
      const bool sent = outcome == SendOutcome::Sent;
      ended->state = sent ? StudyState::Sent : StudyState::Failed;
      webhooks_->StudyEnded(sent ? "study_sent" : "study_failed", *ended);
    }
  } catch (const std::exception& e) {
    log_.Error(std::string("CloudIngest: webhooks: ") + e.what());
  }
}

QueueProbe CloudIngestService::ProbeQueue() {
  const QueueTotals totals = queue_->Totals();
  const auto count = [&](StudyState state) {
    const auto found = totals.byState.find(state);
    return found == totals.byState.end() ? 0u : found->second;
  };
  QueueProbe probe;
  probe.queued = count(StudyState::Queued);
  probe.sending = count(StudyState::Sending);
  const auto due = queue_->NextDueTime();
  // A paused queue is not stalled: nothing is meant to go.
  probe.workWaiting = scheduler_->Mode() == QueueMode::Running &&
                      (probe.sending > 0 || (due && *due <= clock_->Now()));
  probe.progress = totals.studiesSent + totals.instancesSent + totals.bytesSent;
  probe.lastSuccess = totals.lastSuccess;
  return probe;
}

void CloudIngestService::OpenQueue() {
  const StoreIdentity identity{config_.cluster.nodeName, config_.cluster.leaseDuration};
  if (config_.cluster.sharedStore) {
    // Connects on first use: a server that is down now delays the plugin's
    // work, not Orthanc's start (Start() and the workers retry).
    queue_ = std::make_unique<PostgresStudyStore>(config_.database, config_.cluster.databaseSchema,
                                                  identity);
    return;
  }
  try {
    queue_ = SqliteStudyStore::OpenOrRecover(config_.database, identity, clock_->Now(), recovery_);
  } catch (const DatabaseError& e) {
    // Not judged corrupt (a folder that is missing or not writable, a newer
    // schema...): nothing was moved, and Orthanc does not start.
    throw ConfigurationError(std::string("CloudIngest.Database: ") + e.what() +
                             "; make the file and its folder writable by Orthanc, or set "
                             "\"Database\" to another file");
  }
  if (recovery_) {
    // What the lost queue knew is gone: look again at everything Orthanc's
    // log of changes still holds (a new database starts at its end instead).
    // Unchanged studies cannot be told apart any more, so they are resent.
    queue_->SetChangesCursor(0);
    log_.Error("CloudIngest: the plugin database '" + config_.database + "' was corrupt (" +
               recovery_->reason + "); moved it to '" + recovery_->movedTo +
               "' and started with an empty queue; the studies still in Orthanc's /changes are "
               "queued again");
  }
}

void CloudIngestService::OpenAudit() {
  AuditChainSettings chain;
  chain.node = config_.cluster.nodeName;
  chain.key = config_.auditKey;
  chain.otherNodesFile =
      config_.cluster.sharedStore ? OtherNodesFile::Refuse : OtherNodesFile::Continue;
  // A database that does not answer at start-up (PostgreSQL down) must not
  // stop Orthanc: the chain then goes on from the file's last record, and its
  // head is stored with the next record.
  chain.loadHead = [this]() -> std::optional<std::string> {
    try {
      return queue_->GetAuditHead(config_.cluster.nodeName);
    } catch (const DatabaseError& e) {
      log_.Warning(std::string("CloudIngest: the audit chain continues from the audit file (") +
                   e.what() + ")");
      return std::nullopt;
    }
  };
  chain.saveHead = [this](const std::string& head) {
    try {
      queue_->SetAuditHead(config_.cluster.nodeName, head);
    } catch (const DatabaseError&) {
      if (audit_) throw;  // a record's head: its step fails and is done again
    }
  };
  if (config_.auditSyslog.enabled) {
    syslog_ = std::make_unique<SyslogForwarder>(
        config_.auditSyslog, config_.auditLog + ".syslog-spool", log_, *threads_);
    chain.forward = [this](const std::string& line, const AuditEvent& event, double now) {
      syslog_->Enqueue(FormatSyslogMessage(config_.cluster.nodeName, config_.auditSyslog.appName,
                                           event.event, now, line, event.event == "access_denied"));
    };
  }
  try {
    audit_ = std::make_unique<AuditLog>(config_.auditLog, std::move(chain));
  } catch (const AuditFileOfAnotherNode& e) {
    throw ConfigurationError("CloudIngest.AuditLog: " + std::string(e.what()) +
                             "; give each node its own AuditLog (its default is named after "
                             "NodeName), or set NodeName back to \"" +
                             e.Node() + "\"");
  }
}

CloudIngestService::~CloudIngestService() {
  Stop();
}

void CloudIngestService::OnStableStudy(const std::string& orthancStudyId) {
  if (!config_.autoSend) return;
  EnqueueRequest request;
  request.orthancId = orthancStudyId;
  request.trigger = "auto";
  try {
    queue_->Enqueue(request, clock_->Now());
  } catch (...) {
    unrecorded_.Add(orthancStudyId);
    throw;
  }
  scheduler_->Wake();
}

void CloudIngestService::Start() {
  // ZIPs left by a crash are never resumed: their studies are sent again.
  if (const size_t stale = StudyZipper::CleanStaleTempFiles(config_.temporaryDirectory) +
                           NiftiConverter::CleanStaleWorkFolders(config_.temporaryDirectory)) {
    log_.Warning("CloudIngest: removed " + std::to_string(stale) +
                 " temporary file(s) of a previous run");
  }
  const bool recovered = RecoverInterrupted();  // else KeepClaims retries
  http_->ResumeTransfers();                     // after a Stop()
  if (recovered) scheduler_->Start();
  catchUpStop_.Reset();
  if (!leases_.joinable()) {
    leases_ = threads_->StartOne([this, recovered] { KeepClaims(recovered); }, "renewing claims",
                                 {"ci-leases"});
  }
  webhooks_->Start([this] { return ProbeQueue(); });
  if (changes_ != nullptr && !catchUp_.joinable()) {
    catchUp_ =
        threads_->StartOne([this] { FollowChanges(); }, "following /changes", {"ci-changes"});
  }
}

bool CloudIngestService::RecoverInterrupted() {
  try {
    scheduler_->SetMode(queue_->GetQueueMode());  // a pause holds across restarts
    const unsigned recovered = queue_->RecoverInterrupted(clock_->Now());
    if (recovered > 0) {
      log_.Warning("CloudIngest: " + std::to_string(recovered) +
                   " send(s) interrupted by the last shutdown are queued again");
    }
    return true;
  } catch (const DatabaseError& e) {
    log_.Error(std::string("CloudIngest: the plugin database does not answer (") + e.what() +
               "); Orthanc runs on, and the plugin retries every few seconds");
    return false;
  }
}

void CloudIngestService::KeepClaims(bool recovered) {
  // Sending starts only after this node's interrupted sends are queued again:
  // otherwise their claims would wait for their leases to lapse.
  while (!recovered && catchUpStop_.WaitFor(kDatabaseRetry)) {
    recovered = RecoverInterrupted();
    if (recovered) {
      log_.Warning("CloudIngest: the plugin database answers; sending starts");
      scheduler_->Start();
    }
  }
  LeaseKeeper keeper(*queue_, *cancels_, *clock_, log_, config_.cluster.leaseDuration);
  while (catchUpStop_.WaitFor(kLeaseRenewal)) {
    keeper.Renew();
    FollowQueueMode();
  }
}

void CloudIngestService::FollowQueueMode() {
  // The pause switch is shared: one set on another node holds this one too.
  try {
    const QueueMode mode = queue_->GetQueueMode();
    if (mode == scheduler_->Mode()) return;
    scheduler_->SetMode(mode);
    log_.Warning(std::string("CloudIngest: queue ") +
                 (mode == QueueMode::Paused ? "paused" : "resumed") + " (on another node)");
  } catch (const std::exception&) {
    // The lease keeper reports the database's faults; the mode stays as it was.
  }
}

void CloudIngestService::InsertUnrecorded() {
  // Stable studies whose insert failed while the database did not answer
  // (e.g. at start-up): a first scan starts at the end of /changes and the
  // tracker after it, so neither would see their StableStudy again.
  for (const std::string& id : unrecorded_.Ids()) {
    EnqueueRequest request;
    request.orthancId = id;
    request.trigger = "auto";
    queue_->Enqueue(request, clock_->Now());  // throws: kept for the next try
    unrecorded_.Remove(id);
    scheduler_->Wake();
  }
}

void CloudIngestService::FollowChanges() {
  // Retried while the database does not answer. One node at a time scans the
  // shared /changes; the others skip (its scan covers theirs).
  for (;;) {
    try {
      if (auto lock = queue_->TryLockChangesScan()) {
        if (CatchUpScanner(*changes_, *queue_, *clock_, log_, config_.autoSend).Scan() > 0)
          scheduler_->Wake();
      } else {
        log_.Info("CloudIngest: another node is catching up on Orthanc's /changes");
      }
      InsertUnrecorded();
      break;
    } catch (const std::exception& e) {
      // The cursor did not move: the next try scans the same changes again.
      log_.Error(std::string("CloudIngest: catching up on missed changes failed: ") + e.what() +
                 "; trying again");
    }
    if (!catchUpStop_.WaitFor(kDatabaseRetry)) return;
  }
  std::optional<ChangeTracker> tracker;
  while (!tracker) {
    try {
      tracker.emplace(*changes_, *queue_, *clock_, &unrecorded_);  // reads the cursor
    } catch (const std::exception& e) {
      log_.Warning(std::string("CloudIngest: cannot follow /changes yet: ") + e.what());
      if (!catchUpStop_.WaitFor(kDatabaseRetry)) return;
    }
  }
  // Only several nodes can leave a study without its StableStudy while running.
  if (config_.cluster.sharedStore) tracker->QueueQuietStudies(source_, config_.cluster.stableAge);
  while (catchUpStop_.WaitFor(config_.changesPollInterval)) {
    try {
      tracker->Poll();
    } catch (const std::exception& e) {
      // Harmless: the cursor stays behind and the next poll reads on.
      log_.Warning(std::string("CloudIngest: reading /changes failed: ") + e.what());
    }
  }
}

void CloudIngestService::Stop() {
  // First: a worker in the middle of a long upload would hold the join below
  // (and Orthanc's shutdown) until its last byte; its study is queued again.
  if (scheduler_) scheduler_->Signal().Stop();  // no new claim meanwhile
  if (http_) http_->AbortAll();
  catchUpStop_.Stop();
  if (catchUp_.joinable()) catchUp_.join();
  if (leases_.joinable()) leases_.join();
  if (scheduler_) scheduler_->Stop();
  if (webhooks_) webhooks_->Stop();  // after the workers: their last events are queued
}

void CloudIngestService::SetSendObserver(SendObserver* observer) {
  observer_ = observer;
  sender_ = std::make_unique<StudySender>(SenderDependencies{
      config_, source_, *client_, *queue_, *audit_, *retry_, *clock_, log_, scheduler_->Signal(),
      cancels_.get(), *memory_, *threads_, observer_, deidentifier_});
}

SendOutcome CloudIngestService::RunClaimed(const StudyRecord& claimed) {
  if (observer_ != nullptr) observer_->SendStarted(claimed);
  const SendOutcome outcome = sender_->Run(claimed);
  if (observer_ == nullptr) return outcome;
  SendEnd end{claimed, outcome, {}};
  try {
    // The attempt's last writes, unless another claim took the study since.
    if (auto now = queue_->Get(claimed.orthancId); now && now->claim == claimed.claim) {
      end.study = std::move(*now);
    }
  } catch (const std::exception& e) {
    log_.Error(std::string("CloudIngest: cannot read the study's outcome: ") + e.what());
  }
  if (outcome == SendOutcome::Cancelled) {
    end.error = "cancelled";
  } else if (outcome != SendOutcome::Sent && outcome != SendOutcome::Unchanged &&
             outcome != SendOutcome::Skipped) {
    end.error = end.study.lastError.empty() ? ToString(outcome) : end.study.lastError;
  }
  observer_->SendEnded(end);
  return outcome;
}

SendWindowVerdict CloudIngestService::InsideSendWindow(double now) const {
  if (windows_.AlwaysOpen()) return {true, "no SendWindows configured"};
  if (windows_.Allows(now)) return {true, "inside a send window"};
  return {false, "outside SendWindows; the next window opens at " +
                     FormatIsoTime(windows_.NextOpening(now)) + " (UTC)"};
}

}  // namespace CloudIngest
