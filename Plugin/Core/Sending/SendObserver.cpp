#include "Core/Sending/SendObserver.h"

#include "Core/Sending/StudySender.h"

namespace CloudIngest {

Json::Value SendJobContent(const SendEnd& end) {
  Json::Value v(Json::objectValue);
  v["orthanc_study_id"] = end.study.orthancId;
  v["study_instance_uid"] = end.study.studyInstanceUid;
  v["order_id"] = end.study.orderId;
  v["instances_sent"] = end.study.instancesSent;
  v["instances_total"] = end.study.instancesTotal;
  v["bytes_sent"] = static_cast<Json::UInt64>(end.study.bytesSent);
  v["attempt"] = end.study.attempts;
  v["trigger"] = end.study.trigger;
  v["outcome"] = ToString(end.outcome);
  if (!end.error.empty()) v["error"] = end.error;
  return v;
}

}  // namespace CloudIngest
