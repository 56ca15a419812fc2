#include "Core/DicomTags.h"

#include <boost/algorithm/string.hpp>

#include <algorithm>
#include <cctype>

namespace CloudIngest {

namespace {

struct TagName {
  const char* number;
  const char* keyword;
};

// Tags commonly found among Orthanc's stored tags, so that an OrderMetadata
// reference written as a keyword finds a "gggg,eeee" key and vice versa.
// The number is in lower-case hex, as Orthanc formats tags.
const TagName kTagNames[] = {
    {"0002,0010", "TransferSyntaxUID"},
    {"0008,0005", "SpecificCharacterSet"},
    {"0008,0008", "ImageType"},
    {"0008,0012", "InstanceCreationDate"},
    {"0008,0013", "InstanceCreationTime"},
    {"0008,0016", "SOPClassUID"},
    {"0008,0018", "SOPInstanceUID"},
    {"0008,0020", "StudyDate"},
    {"0008,0021", "SeriesDate"},
    {"0008,0022", "AcquisitionDate"},
    {"0008,0023", "ContentDate"},
    {"0008,0030", "StudyTime"},
    {"0008,0031", "SeriesTime"},
    {"0008,0032", "AcquisitionTime"},
    {"0008,0033", "ContentTime"},
    {"0008,0050", "AccessionNumber"},
    {"0008,0054", "RetrieveAETitle"},
    {"0008,0060", "Modality"},
    {"0008,0061", "ModalitiesInStudy"},
    {"0008,0070", "Manufacturer"},
    {"0008,0080", "InstitutionName"},
    {"0008,0081", "InstitutionAddress"},
    {"0008,0090", "ReferringPhysicianName"},
    {"0008,1010", "StationName"},
    {"0008,1030", "StudyDescription"},
    {"0008,103e", "SeriesDescription"},
    {"0008,1040", "InstitutionalDepartmentName"},
    {"0008,1048", "PhysiciansOfRecord"},
    {"0008,1050", "PerformingPhysicianName"},
    {"0008,1060", "NameOfPhysiciansReadingStudy"},
    {"0008,1070", "OperatorsName"},
    {"0008,1090", "ManufacturerModelName"},
    {"0010,0010", "PatientName"},
    {"0010,0020", "PatientID"},
    {"0010,0021", "IssuerOfPatientID"},
    {"0010,0030", "PatientBirthDate"},
    {"0010,0032", "PatientBirthTime"},
    {"0010,0040", "PatientSex"},
    {"0010,1000", "OtherPatientIDs"},
    {"0010,1001", "OtherPatientNames"},
    {"0010,1010", "PatientAge"},
    {"0010,1020", "PatientSize"},
    {"0010,1030", "PatientWeight"},
    {"0010,2160", "EthnicGroup"},
    {"0010,4000", "PatientComments"},
    {"0018,0010", "ContrastBolusAgent"},
    {"0018,0015", "BodyPartExamined"},
    {"0018,0050", "SliceThickness"},
    {"0018,0087", "MagneticFieldStrength"},
    {"0018,1000", "DeviceSerialNumber"},
    {"0018,1020", "SoftwareVersions"},
    {"0018,1030", "ProtocolName"},
    {"0018,5100", "PatientPosition"},
    {"0020,000d", "StudyInstanceUID"},
    {"0020,000e", "SeriesInstanceUID"},
    {"0020,0010", "StudyID"},
    {"0020,0011", "SeriesNumber"},
    {"0020,0013", "InstanceNumber"},
    {"0020,0032", "ImagePositionPatient"},
    {"0020,0037", "ImageOrientationPatient"},
    {"0020,0052", "FrameOfReferenceUID"},
    {"0020,1206", "NumberOfStudyRelatedSeries"},
    {"0020,1208", "NumberOfStudyRelatedInstances"},
    {"0028,0010", "Rows"},
    {"0028,0011", "Columns"},
    {"0028,0030", "PixelSpacing"},
    {"0032,1032", "RequestingPhysician"},
    {"0032,1060", "RequestedProcedureDescription"},
    {"0032,4000", "StudyComments"},
    {"0038,0010", "AdmissionID"},
    {"0040,0009", "ScheduledProcedureStepID"},
    {"0040,0241", "PerformedStationAETitle"},
    {"0040,0253", "PerformedProcedureStepID"},
    {"0040,0254", "PerformedProcedureStepDescription"},
    {"0040,1001", "RequestedProcedureID"},
};

}  // namespace

bool IsTagNumber(const std::string& text) {
  return text.size() == 9 && text[4] == ',' &&
         std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return c == ',' || std::isxdigit(c); });
}

std::string TagKeywordOf(const std::string& reference) {
  if (!IsTagNumber(reference)) return reference;
  const std::string number = boost::algorithm::to_lower_copy(reference, std::locale::classic());
  for (const TagName& entry : kTagNames) {
    if (number == entry.number) return entry.keyword;
  }
  return reference;
}

std::string TagNumberOf(const std::string& keyword) {
  for (const TagName& entry : kTagNames) {
    if (keyword == entry.keyword) return entry.number;
  }
  return "";
}

}  // namespace CloudIngest
