#include <algorithm>
#include <sstream>

#include "Core/Cloud/FileBodySource.h"
#include "Core/Packaging/NiftiConverter.h"
#include "Core/Sending/UploadModes.h"

namespace CloudIngest {

namespace {

std::vector<std::string> SeriesInOrder(const StudyInfo& study) {
  std::vector<std::string> series;
  for (const auto& i : study.instances) {
    if (std::find(series.begin(), series.end(), i.seriesInstanceUid) == series.end()) {
      series.push_back(i.seriesInstanceUid);
    }
  }
  return series;
}

std::string JoinBValues(const std::vector<double>& bvals) {
  std::string joined;
  for (const double b : bvals) {
    std::ostringstream value;
    value << b;
    joined += (joined.empty() ? "" : ",") + value.str();
  }
  return joined;
}

// One converted series (diffusion MR: .nii.gz + .bvec + .bval) as one ZIP.
void SendBundle(AttemptState& attempt, Uploader& uploader, const NiftiBundle& bundle) {
  UploadPayload payload;
  payload.body = std::make_shared<FileBodySource>(bundle.Path());
  payload.size = bundle.size;
  payload.md5Hex = bundle.md5Hex;
  payload.sha256Hex = bundle.sha256Hex;
  payload.filename = bundle.seriesInstanceUid + ".nifti.zip";
  payload.contentType = "application/zip";
  payload.detail = "nifti of series " + bundle.seriesInstanceUid + ": " +
                   std::to_string(bundle.instanceCount) + " instances, b-values " +
                   JoinBValues(bundle.bvals);
  uploader.PutWithFreshUrl(payload);
  attempt.progress.Record(static_cast<unsigned>(bundle.instanceCount), bundle.size);
}

// A series dcm2niix does not convert: reported, then sent as DICOM or not at all.
void SendUnconverted(AttemptState& attempt, Uploader& uploader, const StudyInfo& study,
                     const std::string& series, const NiftiNotConvertible& why) {
  const bool asDicom = attempt.deps.config.niftiFallbackToDicom;
  const std::string action = asDicom ? "sent as DICOM" : "not sent";
  attempt.deps.log.Warning("CloudIngest: series " + series + " of study " +
                           attempt.record.orthancId + " not converted to NIfTI (" + why.what() +
                           "); " + action);
  attempt.deps.queue.AddHistory(attempt.record,
                                {attempt.Now(), attempt.record.attempts, "nifti-not-convertible",
                                 std::string(why.what()) + "; " + action});
  attempt.Audit("upload_failed", [&](AuditEvent& a) {
    a.detail = "nifti not convertible (" + ToString(why.Failure()) + ") for series " + series +
               ": " + why.what() + "; " + action;
  });
  if (!asDicom) return;
  std::vector<InstanceInfo> instances;
  for (const auto& i : study.instances) {
    if (i.seriesInstanceUid == series) instances.push_back(i);
  }
  SendInstances(attempt, uploader, instances);
}

}  // namespace

// All series go to the same order.
void SendNifti(AttemptState& attempt, Uploader& uploader, const StudyInfo& study) {
  const NiftiConverter converter(*attempt.source, attempt.deps.config.temporaryDirectory,
                                 attempt.deps.config.dcm2niixPath);
  for (const auto& series : SeriesInOrder(study)) {
    attempt.progress.MarkActive();
    try {
      SendBundle(attempt, uploader,
                 converter.Convert(study, series, [&] { return attempt.ShouldStop(); }));
    } catch (const ZipCancelled&) {
      throw Interrupted();
    } catch (const NiftiNotConvertible& e) {
      SendUnconverted(attempt, uploader, study, series, e);
    }
  }
}

}  // namespace CloudIngest
