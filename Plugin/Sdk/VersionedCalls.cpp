#include "Sdk/VersionedCalls.h"

#include <atomic>
#include <cstring>

namespace CloudIngest::Sdk {

namespace {

// Service numbers and layouts as released; see RunningOrthanc for when each may be called.
constexpr int kCreateJobService = 9000;           // SDK 1.4.2; deprecated from 1.11.3
constexpr int kCreateJob2Service = 9004;          // SDK 1.11.3
constexpr int kSetCurrentThreadNameService = 44;  // SDK 1.12.2; its parameter is the name

using GetContent = const char* (*)(void* job);
using GetSerialized = const char* (*)(void* job);
using GetContent2 = OrthancPluginErrorCode (*)(OrthancPluginMemoryBuffer* target, void* job);
using GetSerialized2 = int32_t (*)(OrthancPluginMemoryBuffer* target, void* job);

template <typename Content, typename Serialized>
struct CreateJobParameters {
  OrthancPluginJob** target;
  void* job;
  OrthancPluginJobFinalize finalize;
  const char* type;
  OrthancPluginJobGetProgress getProgress;
  Content getContent;
  Serialized getSerialized;
  OrthancPluginJobStep step;
  OrthancPluginJobStop stop;
  OrthancPluginJobReset reset;
};

// CreateJob2's callbacks carry no context and the job's own callbacks no
// way to reach it: one context per plugin, kept here for the trampolines.
std::atomic<OrthancPluginContext*> jobContext{nullptr};
std::atomic<GetContent> jobContent{nullptr};

const char* NotSerialized(void*) {
  return nullptr;
}

int32_t NotSerialized2(OrthancPluginMemoryBuffer*, void*) {
  return 0;  // "serialization not implemented for this type of job"
}

OrthancPluginErrorCode ContentIntoBuffer(OrthancPluginMemoryBuffer* target, void* job) {
  const char* content = jobContent.load()(job);
  const size_t size = content == nullptr ? 0 : std::strlen(content);
  const OrthancPluginErrorCode created =
      OrthancPluginCreateMemoryBuffer(jobContext.load(), target, static_cast<uint32_t>(size));
  if (created != OrthancPluginErrorCode_Success) return created;
  if (size > 0) std::memcpy(target->data, content, size);
  return OrthancPluginErrorCode_Success;
}

template <typename Content, typename Serialized>
OrthancPluginJob* Create(OrthancPluginContext* context, int service, void* job, const char* type,
                         const JobCallbacks& callbacks, Content content, Serialized serialized) {
  OrthancPluginJob* created = nullptr;
  CreateJobParameters<Content, Serialized> parameters{};
  parameters.target = &created;
  parameters.job = job;
  parameters.finalize = callbacks.finalize;
  parameters.type = type;
  parameters.getProgress = callbacks.progress;
  parameters.getContent = content;
  parameters.getSerialized = serialized;
  parameters.step = callbacks.step;
  parameters.stop = callbacks.stop;
  parameters.reset = callbacks.reset;
  if (context->InvokeService(context, static_cast<_OrthancPluginService>(service), &parameters) !=
      OrthancPluginErrorCode_Success) {
    return nullptr;
  }
  return created;
}

}  // namespace

OrthancPluginJob* CreateUnsavedJob(OrthancPluginContext* context, const RunningOrthanc& orthanc,
                                   void* job, const char* type, const JobCallbacks& callbacks) {
  if (!orthanc.HasCreateJob2()) {
    return Create(context, kCreateJobService, job, type, callbacks, callbacks.content,
                  &NotSerialized);
  }
  jobContext = context;
  jobContent = callbacks.content;
  return Create(context, kCreateJob2Service, job, type, callbacks, &ContentIntoBuffer,
                &NotSerialized2);
}

void SetCurrentThreadName(OrthancPluginContext* context, const RunningOrthanc& orthanc,
                          const std::string& name) {
  if (!orthanc.HasThreadNames()) return;
  context->InvokeService(context, static_cast<_OrthancPluginService>(kSetCurrentThreadNameService),
                         name.c_str());
}

void SetPluginProperty(OrthancPluginContext* context, PluginProperty property,
                       const std::string& value) {
  _OrthancPluginSetPluginProperty parameters;
  parameters.plugin = OrthancPluginGetName();
  switch (property) {
    case PluginProperty::Description:
      parameters.property = _OrthancPluginProperty_Description;
      break;
    case PluginProperty::RootUri:
      parameters.property = _OrthancPluginProperty_RootUri;
      break;
    case PluginProperty::OrthancExplorer:
      parameters.property = _OrthancPluginProperty_OrthancExplorer;
      break;
  }
  parameters.value = value.c_str();
  context->InvokeService(context, _OrthancPluginService_SetPluginProperty, &parameters);
}

}  // namespace CloudIngest::Sdk
