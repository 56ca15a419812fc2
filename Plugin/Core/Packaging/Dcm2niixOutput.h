#pragma once
// Reading what dcm2niix left in its output folder and logs (NiftiConverter's internals).
#include <string>
#include <vector>

namespace CloudIngest::Dcm2niixOutput {

// The files found, by kind.
struct Outputs {
  std::vector<std::string> images;  // names in the output folder
  std::vector<std::string> bvals;
  std::vector<std::string> bvecs;
};

// Regular files named *.nii.gz / *.nii (sorted), *.bval and *.bvec.
Outputs ListOutputs(const std::string& folder);
// The b-values, after checking that the .bval is one row and the .bvec three
// rows of as many numbers; throws NiftiNotConvertible(BadOutput) otherwise.
std::vector<double> CheckBvalBvec(const std::string& bvalPath, const std::string& bvecPath);
// The last non-empty line of a log, printable, trimmed and bounded: what
// dcm2niix said last before failing.
std::string LastLine(const std::string& path);

}  // namespace CloudIngest::Dcm2niixOutput
