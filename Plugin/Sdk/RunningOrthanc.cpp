#include "Sdk/RunningOrthanc.h"

#include <cstdio>
#include <tuple>

namespace CloudIngest::Sdk {

RunningOrthanc::RunningOrthanc(OrthancPluginContext* context)
    : version_(context != nullptr && context->orthancVersion != nullptr ? context->orthancVersion
                                                                        : "") {
  mainline_ = version_ == "mainline";
  if (!mainline_ &&
      std::sscanf(version_.c_str(), "%4d.%4d.%4d", &major_, &minor_, &revision_) != 3) {
    major_ = minor_ = revision_ = 0;  // unknown: treated as older than everything
  }
}

bool RunningOrthanc::IsAtLeast(int major, int minor, int revision) const {
  if (mainline_) return true;
  return std::tie(major_, minor_, revision_) >= std::tie(major, minor, revision);
}

}  // namespace CloudIngest::Sdk
