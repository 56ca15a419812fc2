#pragma once
// The three ways a study's files reach its order (UploadMode): each instance
// on its own, the whole study as one ZIP, or each series as a NIfTI bundle.
#include <vector>

#include "Core/Orthanc/StudySource.h"
#include "Core/Sending/AttemptState.h"
#include "Core/Sending/Uploader.h"

namespace CloudIngest {

// Instances mode: one PUT per instance, Concurrency at a time, back to back
// so the service groups them (InstancesMode.cpp).
void SendInstances(AttemptState& attempt, Uploader& uploader,
                   const std::vector<InstanceInfo>& instances);

// Zip mode: the whole study as one ZIP, or per instance when it is too large
// for one PUT (ZipMode.cpp).
void SendZip(AttemptState& attempt, Uploader& uploader, const StudyInfo& study);

// Nifti mode: each series that converts as one ZIP of NIfTI files, the others
// as DICOM or not at all, per NiftiFallback (NiftiMode.cpp).
void SendNifti(AttemptState& attempt, Uploader& uploader, const StudyInfo& study);

}  // namespace CloudIngest
