#include "Metrics.h"

#include <string>

#include "Core/CloudIngestService.h"

namespace CloudIngest::Sdk {

void PublishMetrics(OrthancPluginContext* context, CloudIngestService& service) {
  auto set = [&](const std::string& name, double value) {
    OrthancPluginSetMetricsValue(context, ("cloud_ingest_" + name).c_str(),
                                 static_cast<float>(value), OrthancPluginMetricsType_Default);
  };
  const QueueTotals totals = service.Queue().Totals();
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
      totals.lastSuccess > 0 ? service.Clock().Now() - totals.lastSuccess : -1);
  const TokenState token = service.Tokens().State();
  set("token_refresh_failures_total", token.refreshFailures);
  set("token_valid", token.valid && token.expiresAt > service.Clock().Now() ? 1 : 0);
}

}  // namespace CloudIngest::Sdk
