#pragma once
// Publishes cloud_ingest_* values to /tools/metrics-prometheus.
#include <orthanc/OrthancCPlugin.h>

namespace CloudIngest {
class IngestService;
}

namespace CloudIngest::Sdk {

void PublishMetrics(OrthancPluginContext* context, IngestService& service);

}  // namespace CloudIngest::Sdk
