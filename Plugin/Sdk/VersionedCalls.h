#pragma once
// SDK calls whose form depends on the running Orthanc (RunningOrthanc), made
// by service number where the header may not declare the newer form (the
// 1.10.1 header has no CreateJob2) or declares the older one deprecated
// (1.12's header). The parameter layouts are the SDK's ABI, fixed once a
// service is released.
#include <orthanc/OrthancCPlugin.h>

#include <string>

#include "Sdk/RunningOrthanc.h"

namespace CloudIngest::Sdk {

// A plugin job's callbacks, whichever CreateJob the running Orthanc takes.
struct JobCallbacks {
  OrthancPluginJobFinalize finalize;
  OrthancPluginJobGetProgress progress;
  // The job's public content, a JSON object; valid until the next call for
  // the same job (Orthanc calls one job's callbacks one at a time).
  const char* (*content)(void* job);
  OrthancPluginJobStep step;
  OrthancPluginJobStop stop;
  OrthancPluginJobReset reset;
};

// A job that is never serialized (SaveJobs keeps none of them). Null when
// Orthanc refuses.
OrthancPluginJob* CreateUnsavedJob(OrthancPluginContext* context, const RunningOrthanc& orthanc,
                                   void* job, const char* type, const JobCallbacks& callbacks);

// Names the calling thread in Orthanc's log (at most 16 characters) when the
// running Orthanc has the service; does nothing otherwise.
void SetCurrentThreadName(OrthancPluginContext* context, const RunningOrthanc& orthanc,
                          const std::string& name);

enum class PluginProperty { Description, RootUri, OrthancExplorer };

// The explicit-name form every Orthanc takes (what SetDescription2 and its
// siblings send); the header's name-less forms are deprecated from 1.12.
void SetPluginProperty(OrthancPluginContext* context, PluginProperty property,
                       const std::string& value);

}  // namespace CloudIngest::Sdk
