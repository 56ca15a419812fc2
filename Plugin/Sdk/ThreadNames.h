#pragma once
// Names the plugin's threads: for the system always (top -H, ps -L, gdb, the
// thread's /proc/<pid>/task/<tid>/comm), and in Orthanc's log lines from
// Orthanc 1.12.2 on, service threads only (see ThreadLifetime).
#include <orthanc/OrthancCPlugin.h>

#include "Core/ThreadStarter.h"
#include "Sdk/RunningOrthanc.h"

namespace CloudIngest::Sdk {

// `orthanc` must outlive the namer's use.
ThreadStarter::Namer MakeThreadNamer(OrthancPluginContext* context, const RunningOrthanc& orthanc);

// The same for a thread the SDK layer starts itself (Orthanc's jobs list).
void NameServiceThread(OrthancPluginContext* context, const RunningOrthanc& orthanc,
                       const std::string& name);

}  // namespace CloudIngest::Sdk
