#include "Core/Cloud/FileBodySource.h"
#include "Core/Packaging/StudyZipper.h"
#include "Core/Sending/UploadModes.h"
#include "Core/Sending/UploadPlan.h"

namespace CloudIngest {

// The ZIP is built in a temporary file (removed whatever happens) and sent
// with one presigned URL.
void SendZip(AttemptState& attempt, Uploader& uploader, const StudyInfo& study) {
  if (StudyZipper::MaximumSize(study, ZipCompression::Store) > kMaxSinglePutBytes) {
    attempt.Audit("url_issued", [&](AuditEvent& e) {
      e.detail = "study too large for one ZIP upload (5 GB): sent per instance instead";
    });
    attempt.deps.log.Warning("CloudIngest: study " + attempt.record.orthancId +
                             " is larger than 5 GB, sending it per instance instead of as one ZIP");
    SendInstances(attempt, uploader, study.instances);
    return;
  }
  attempt.progress.MarkActive();
  StudyZip zip;
  try {
    zip =
        StudyZipper(*attempt.source, attempt.deps.config.temporaryDirectory, ZipCompression::Store)
            .Zip(study, [&] { return attempt.ShouldStop(); });
  } catch (const ZipCancelled&) {
    throw Interrupted();
  }
  UploadPayload payload;
  payload.body = std::make_shared<FileBodySource>(zip.Path());
  payload.size = zip.size;
  payload.md5Hex = zip.md5Hex;
  payload.sha256Hex = zip.sha256Hex;
  payload.filename = attempt.SentStudyInstanceUid() + ".zip";
  payload.contentType = "application/zip";
  payload.detail = "zip of " + std::to_string(zip.entryCount) + " instances";
  uploader.PutWithFreshUrl(payload);
  attempt.progress.Record(static_cast<unsigned>(zip.entryCount), zip.size);
}

}  // namespace CloudIngest
