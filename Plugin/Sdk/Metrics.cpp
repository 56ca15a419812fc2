#include "Metrics.h"

#include <string>

#include "Core/IngestService.h"

namespace CloudIngest::Sdk {

void PublishMetrics(OrthancPluginContext* context, IngestService& service) {
  auto set = [&](const std::string& name, double value) {
    OrthancPluginSetMetricsValue(context, ("cloud_ingest_" + name).c_str(),
                                 static_cast<float>(value), OrthancPluginMetricsType_Default);
  };
  const ServiceStatus status = service.Status();
  const QueueTotals& totals = status.totals;
  for (const auto& [state, count] : totals.byState) set("queue_" + ToString(state), count);
  set("studies_sent_total", static_cast<double>(totals.studiesSent));
  set("instances_sent_total", static_cast<double>(totals.instancesSent));
  // float metrics lose precision past 2^24: publish megabytes too
  set("bytes_sent_total", static_cast<double>(totals.bytesSent));
  set("megabytes_sent_total", static_cast<double>(totals.bytesSent) / 1e6);
  set("failures_total", static_cast<double>(totals.failures));
  // Orthanc metrics are floats (a Unix time would lose two minutes of
  // precision), so publish the age of the last success instead.
  set("seconds_since_last_success",
      totals.lastSuccess > 0 ? status.takenAt - totals.lastSuccess : -1);
  set("token_refresh_failures_total", status.token.refreshFailures);
  set("token_valid", status.token.validNow ? 1 : 0);
  set("queue_paused", status.paused ? 1 : 0);
  set("send_window_open", status.sendWindows.open ? 1 : 0);  // 1 without SendWindows
  set("webhooks_pending", static_cast<double>(status.webhooksPending));
}

}  // namespace CloudIngest::Sdk
