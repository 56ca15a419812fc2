// Wiring only: read the configuration, build the service, register callbacks.
#include <orthanc/OrthancCPlugin.h>

#include <memory>
#include <string>

#include "Core/CloudIngestService.h"
#include "Core/Sending/CloudStateLabels.h"
#include "Core/Sending/SendObserverList.h"
#include "Rest/JobRoutes.h"
#include "Rest/RestApi.h"
#include "Sdk/Embedded.h"
#include "Sdk/Metrics.h"
#include "Sdk/OrthancChangeFeed.h"
#include "Sdk/OrthancDeidentifier.h"
#include "Sdk/OrthancLogger.h"
#include "Sdk/OrthancSendJobs.h"
#include "Sdk/OrthancStudyLabels.h"
#include "Sdk/OrthancStudySource.h"
#include "Sdk/PluginConfiguration.h"
#include "Sdk/RestAdapter.h"
#include "Sdk/RunningOrthanc.h"
#include "Sdk/ThreadNames.h"
#include "Sdk/VersionedCalls.h"

namespace {

using namespace CloudIngest;

// The C callbacks carry no user data, so the plugin's objects hang off this
// one pointer, created in Initialize and destroyed in Finalize.
struct PluginState {
  OrthancPluginContext* context = nullptr;
  std::unique_ptr<Sdk::RunningOrthanc> orthanc;
  std::unique_ptr<Sdk::OrthancLogger> log;
  std::unique_ptr<Sdk::OrthancStudySource> source;
  std::unique_ptr<Sdk::OrthancChangeFeed> changes;
  std::unique_ptr<Sdk::OrthancDeidentifier> deidentifier;
  std::unique_ptr<Sdk::OrthancSendJobs> jobs;  // these four outlive the service's workers
  std::unique_ptr<Sdk::OrthancStudyLabels> labels;
  std::unique_ptr<CloudStateLabels> labeller;  // when Labels.Enable
  std::unique_ptr<SendObserverList> observers;
  std::unique_ptr<CloudIngestService> service;  // null when disabled
  std::unique_ptr<JobsGuard> jobsGuard;         // null when disabled
  std::unique_ptr<RestApi> rest;
};
std::unique_ptr<PluginState> plugin;

OrthancPluginErrorCode OnRest(OrthancPluginRestOutput* output, const char* url,
                              const OrthancPluginHttpRequest* request) {
  try {
    const char* path = request->groupsCount > 0 ? request->groups[0] : "";
    const RestRequest r = Sdk::ToRestRequest((std::string("/") + path).c_str(), request);
    Sdk::Answer(plugin->context, *plugin->orthanc, output, plugin->rest->Handle(r));
    return OrthancPluginErrorCode_Success;
  } catch (const std::exception& e) {
    plugin->log->Error(std::string("CloudIngest: REST ") + url + ": " + e.what());
    return OrthancPluginErrorCode_InternalError;
  }
}

// Every HTTP request, before Orthanc routes it.
int32_t OnIncomingRequest(OrthancPluginHttpMethod method, const char* uri, const char*,
                          uint32_t headersCount, const char* const* headersKeys,
                          const char* const* headersValues, uint32_t, const char* const*,
                          const char* const*) {
  return Sdk::FilterIncomingRequest(method, uri, headersCount, headersKeys, headersValues,
                                    plugin ? plugin->jobsGuard.get() : nullptr);
}

// Orthanc drops a trailing slash before matching, so "/cloud-ingest/app" and
// "/cloud-ingest/app/" both arrive here. A relative redirect must work from both:
// "index.html" is right from ".../app/"; from ".../app" it gives
// "/cloud-ingest/index.html", which OnIndexRedirect sends on to "app/index.html".
OrthancPluginErrorCode OnAppRoot(OrthancPluginRestOutput* output, const char*,
                                 const OrthancPluginHttpRequest*) {
  OrthancPluginRedirect(plugin->context, output, "index.html");
  return OrthancPluginErrorCode_Success;
}

OrthancPluginErrorCode OnIndexRedirect(OrthancPluginRestOutput* output, const char*,
                                       const OrthancPluginHttpRequest*) {
  OrthancPluginRedirect(plugin->context, output, "app/index.html");
  return OrthancPluginErrorCode_Success;
}

OrthancPluginErrorCode OnChange(OrthancPluginChangeType changeType, OrthancPluginResourceType,
                                const char* resourceId) {
  if (!plugin || !plugin->service) return OrthancPluginErrorCode_Success;
  try {
    switch (changeType) {
      case OrthancPluginChangeType_StableStudy:
        plugin->service->OnStableStudy(resourceId);  // one durable insert, then return
        break;
      case OrthancPluginChangeType_OrthancStarted:
        plugin->jobs->Start();
        plugin->service->Start();
        break;
      case OrthancPluginChangeType_OrthancStopped:
        plugin->jobs->Stop();  // no REST call into a stopping Orthanc
        plugin->service->Stop();
        break;
      default:
        break;
    }
  } catch (const std::exception& e) {
    plugin->log->Error(std::string("CloudIngest: cannot record change for ") +
                       (resourceId ? resourceId : "-") + ": " + e.what());
  }
  return OrthancPluginErrorCode_Success;
}

void OnRefreshMetrics() {
  try {
    if (plugin && plugin->service) Sdk::PublishMetrics(plugin->context, *plugin->service);
  } catch (const std::exception& e) {
    plugin->log->Error(std::string("CloudIngest: metrics: ") + e.what());
  }
}

// A setting the running Orthanc cannot honour stops the start, as a
// configuration error does.
void RequireFeatures(const Configuration& config, const Sdk::RunningOrthanc& orthanc) {
  if (config.labels.enable && !orthanc.HasLabels()) {
    throw ConfigurationError("CloudIngest.Labels: needs Orthanc 1.12.0 or newer (running " +
                             orthanc.Version() + ")");
  }
}

// Orthanc's jobs list, and the cloud-state labels when enabled, hear every send.
void ObserveSends(OrthancPluginContext* context) {
  plugin->observers = std::make_unique<SendObserverList>(*plugin->log);
  plugin->observers->Add(plugin->jobs->Jobs());
  const LabelSettings& labels = plugin->service->Config().labels;
  if (labels.enable) {
    plugin->labels = std::make_unique<Sdk::OrthancStudyLabels>(context);
    plugin->labeller = std::make_unique<CloudStateLabels>(labels, *plugin->labels, *plugin->log);
    plugin->observers->Add(*plugin->labeller);
  }
  plugin->service->SetSendObserver(plugin->observers.get());
}

}  // namespace

extern "C" {

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext* context) {
  auto orthanc = std::make_unique<Sdk::RunningOrthanc>(context);
  if (!OrthancPluginCheckVersionAdvanced(context, Sdk::kOldestMajor, Sdk::kOldestMinor,
                                         Sdk::kOldestRevision)) {
    OrthancPluginLogError(
        context, ("CloudIngest: needs Orthanc 1.10.1 or newer (running " + orthanc->Version() + ")")
                     .c_str());
    return -1;
  }
  Sdk::SetPluginProperty(context, Sdk::PluginProperty::Description,
                         "Sends every stable study to a cloud ingestion service.");
  plugin = std::make_unique<PluginState>();
  plugin->context = context;
  plugin->orthanc = std::move(orthanc);
  plugin->log = std::make_unique<Sdk::OrthancLogger>(context);
  PermissionSettings permissions;
  try {
    Configuration config = Sdk::ReadConfiguration(context);
    RequireFeatures(config, *plugin->orthanc);
    permissions = config.permissions;
    if (!permissions.configured) {
      plugin->log->Warning(
          "CloudIngest: no CloudIngest.Permissions, so every user Orthanc lets in may do "
          "everything on /cloud-ingest/");
    }
    if (config.enable) {
      plugin->source = std::make_unique<Sdk::OrthancStudySource>(
          context, Sdk::ReadGlobalBool(context, "StorageCompression", false));
      plugin->changes =
          std::make_unique<Sdk::OrthancChangeFeed>(context, *plugin->orthanc, *plugin->log);
      plugin->deidentifier = std::make_unique<Sdk::OrthancDeidentifier>(context);
      plugin->service = std::make_unique<CloudIngestService>(
          std::move(config), *plugin->source, *plugin->log, plugin->changes.get(), nullptr, nullptr,
          plugin->deidentifier.get(), Sdk::MakeThreadNamer(context, *plugin->orthanc));
      // A send's job cancelled in Orthanc's /jobs cancels the send.
      plugin->jobs = std::make_unique<Sdk::OrthancSendJobs>(
          context, *plugin->orthanc, plugin->service->Config().jobs, *plugin->log,
          [](const JobCancelled& cancelled) {
            if (!plugin || !plugin->service) return;
            plugin->service->Cancel({cancelled.orthancStudyId, cancelled.user,
                                     "job " + cancelled.jobId + " cancelled in Orthanc's /jobs"});
          });
      ObserveSends(context);
      plugin->jobsGuard =
          std::make_unique<JobsGuard>(*plugin->service, plugin->jobs->Jobs(), permissions);
      plugin->log->Warning(
          "CloudIngest: sending stable studies to " + plugin->service->Config().url +
          " (audit log " + plugin->service->Config().auditLog + "; Orthanc " +
          plugin->orthanc->Version() + "; /jobs: " + plugin->jobs->Jobs().Describe() + ")");
    } else {
      plugin->log->Warning(
          "CloudIngest: disabled (CloudIngest.Enable is false or the section is absent; Orthanc " +
          plugin->orthanc->Version() + ")");
    }
  } catch (const ConfigurationError& e) {
    // One line that names the key ("CloudIngest.X: ...") and the fix; Orthanc refuses to start.
    OrthancPluginLogError(context, e.what());
    plugin.reset();
    return -1;
  } catch (const std::exception& e) {
    OrthancPluginLogError(context, (std::string("CloudIngest: cannot start: ") + e.what()).c_str());
    plugin.reset();
    return -1;
  }

  plugin->rest =
      std::make_unique<RestApi>(plugin->service.get(), Embedded::Resources(), permissions);
  OrthancPluginRegisterRestCallbackNoLock(context, "/cloud-ingest/app", OnAppRoot);
  OrthancPluginRegisterRestCallbackNoLock(context, "/cloud-ingest/index.html", OnIndexRedirect);
  OrthancPluginRegisterRestCallbackNoLock(context, "/cloud-ingest/(.*)", OnRest);
  OrthancPluginRegisterIncomingHttpRequestFilter2(context, OnIncomingRequest);
  OrthancPluginRegisterOnChangeCallback(context, OnChange);
  // Linked from the Plugins page.
  Sdk::SetPluginProperty(context, Sdk::PluginProperty::RootUri, "/cloud-ingest/app/index.html");
  if (plugin->service) {
    OrthancPluginRegisterRefreshMetricsCallback(context, OnRefreshMetrics);
    const auto& resources = Embedded::Resources();
    auto explorer = resources.find("OrthancExplorer.js");
    if (explorer != resources.end()) {
      Sdk::SetPluginProperty(context, Sdk::PluginProperty::OrthancExplorer, explorer->second);
    }
  }
  return 0;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize() {
  if (plugin && plugin->jobs) plugin->jobs->Stop();
  if (plugin && plugin->service) plugin->service->Stop();
  plugin.reset();
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetName() {
  return "cloud-ingest";
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetVersion() {
  return CLOUD_INGEST_VERSION;
}

}  // extern "C"
