#include "Sdk/ThreadNames.h"

#include <pthread.h>

#include "Sdk/VersionedCalls.h"

namespace CloudIngest::Sdk {

namespace {

void NameForTheSystem(const std::string& name) {
  // Fails only for a name over 15 characters, which ThreadStarter cuts.
  pthread_setname_np(pthread_self(), name.substr(0, ThreadName::kMaxLength).c_str());
}

}  // namespace

ThreadStarter::Namer MakeThreadNamer(OrthancPluginContext* context, const RunningOrthanc& orthanc) {
  return [context, &orthanc](const ThreadName& name) {
    NameForTheSystem(name.text);
    if (name.lifetime == ThreadLifetime::Service) {
      SetCurrentThreadName(context, orthanc, name.text);
    }
  };
}

void NameServiceThread(OrthancPluginContext* context, const RunningOrthanc& orthanc,
                       const std::string& name) {
  MakeThreadNamer(context, orthanc)({name, ThreadLifetime::Service});
}

}  // namespace CloudIngest::Sdk
