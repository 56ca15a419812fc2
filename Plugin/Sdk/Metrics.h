#pragma once
// Publishes cloud_ingest_* values to /tools/metrics-prometheus.
#include <orthanc/OrthancCPlugin.h>

namespace CloudIngest {
class CloudIngestService;
}

namespace CloudIngest::Sdk {

void PublishMetrics(OrthancPluginContext* context, CloudIngestService& service);

}  // namespace CloudIngest::Sdk
