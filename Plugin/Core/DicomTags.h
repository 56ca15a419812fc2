#pragma once
// The two spellings of the DICOM tags Orthanc commonly stores: a keyword
// ("PatientID") and a "gggg,eeee" number, so that a configured reference in
// either spelling finds the other.
#include <string>

namespace CloudIngest {

// Whether `text` reads "gggg,eeee" in hexadecimal digits (either case).
bool IsTagNumber(const std::string& text);
// The keyword of a "gggg,eeee" reference (either case) among the tags Orthanc
// commonly stores, else `reference` unchanged.
std::string TagKeywordOf(const std::string& reference);
// The lower-case "gggg,eeee" of a known keyword; empty for any other text.
std::string TagNumberOf(const std::string& keyword);

}  // namespace CloudIngest
