#include "Core/Packaging/Dcm2niixOutput.h"

#include <algorithm>
#include <boost/algorithm/string/predicate.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "Core/Packaging/NiftiConverter.h"

namespace CloudIngest::Dcm2niixOutput {

namespace {

const size_t kMaxReasonLength = 300;

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Rows of whitespace-separated numbers; throws on anything else.
std::vector<std::vector<double>> ParseNumbers(const std::string& text, const std::string& name) {
  std::vector<std::vector<double>> rows;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream tokens(line);
    std::vector<double> row;
    for (std::string token; tokens >> token;) {
      char* end = nullptr;
      errno = 0;
      const double value = std::strtod(token.c_str(), &end);
      if (end != token.c_str() + token.size() || errno == ERANGE || !std::isfinite(value)) {
        throw NiftiNotConvertible(NiftiFailure::BadOutput, "dcm2niix wrote a non-number in " +
                                                               name + ": " + token.substr(0, 40));
      }
      row.push_back(value);
    }
    if (!row.empty()) rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

Outputs ListOutputs(const std::string& folder) {
  Outputs outputs;
  std::error_code error;
  for (const auto& item : std::filesystem::directory_iterator(folder, error)) {
    if (!item.is_regular_file()) continue;
    const std::string name = item.path().filename().string();
    if (boost::algorithm::ends_with(name, ".nii.gz") || boost::algorithm::ends_with(name, ".nii")) {
      outputs.images.push_back(name);
    } else if (boost::algorithm::ends_with(name, ".bval")) {
      outputs.bvals.push_back(name);
    } else if (boost::algorithm::ends_with(name, ".bvec")) {
      outputs.bvecs.push_back(name);
    }
  }
  std::sort(outputs.images.begin(), outputs.images.end());
  return outputs;
}

std::vector<double> CheckBvalBvec(const std::string& bvalPath, const std::string& bvecPath) {
  const auto bvalRows = ParseNumbers(ReadWholeFile(bvalPath), ".bval");
  if (bvalRows.size() != 1) {
    throw NiftiNotConvertible(NiftiFailure::BadOutput,
                              "dcm2niix wrote a .bval that is not one line of b-values");
  }
  const std::vector<double>& bvals = bvalRows.front();
  const auto bvecRows = ParseNumbers(ReadWholeFile(bvecPath), ".bvec");
  if (bvecRows.size() != 3 ||
      std::any_of(bvecRows.begin(), bvecRows.end(),
                  [&](const std::vector<double>& row) { return row.size() != bvals.size(); })) {
    throw NiftiNotConvertible(NiftiFailure::BadOutput,
                              "dcm2niix wrote a .bvec that is not 3 rows of " +
                                  std::to_string(bvals.size()) + " values (one per b-value)");
  }
  return bvals;
}

std::string LastLine(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = std::max<std::streamoff>(0, size - 8192);
  in.seekg(start);
  const std::string tail(std::istreambuf_iterator<char>(in), {});
  std::string last;
  std::istringstream lines(tail);
  for (std::string line; std::getline(lines, line);) {
    for (char& c : line) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    }
    const size_t first = line.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    last = line.substr(first, line.find_last_not_of(' ') - first + 1);
  }
  if (last.size() > kMaxReasonLength) last = last.substr(0, kMaxReasonLength) + "...";
  return last;
}

}  // namespace CloudIngest::Dcm2niixOutput
