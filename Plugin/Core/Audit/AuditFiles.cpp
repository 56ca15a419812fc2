#include "Core/Audit/AuditFiles.h"

#include <boost/algorithm/string/predicate.hpp>
#include <filesystem>
#include <fstream>

namespace CloudIngest {

namespace {

constexpr std::streamoff kTailBytes = 64 * 1024;

bool IsCompressed(const std::string& name) {
  for (const char* suffix : {".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip"}) {
    if (boost::algorithm::ends_with(name, suffix)) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> ReadLastAuditLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  const std::streamoff size = in.tellg();
  for (std::streamoff want = kTailBytes;; want *= 4) {
    const std::streamoff start = size > want ? size - want : 0;
    std::string text(static_cast<size_t>(size - start), '\0');
    in.seekg(start);
    in.read(&text[0], static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    in.clear();
    size_t begin = 0;
    if (start > 0) {  // the first line is cut: left out
      const size_t newline = text.find('\n');
      if (newline == std::string::npos || newline + 1 >= text.size()) continue;
      begin = newline + 1;
    }
    std::vector<std::string> lines;
    while (begin < text.size()) {
      size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      if (end > begin) lines.push_back(text.substr(begin, end - begin));
      begin = end + 1;
    }
    if (!lines.empty() || start == 0) return lines;
  }
}

std::optional<std::string> FindRotatedAuditFile(const std::string& path, const AuditLink& last,
                                                const std::string& key) {
  namespace fs = std::filesystem;
  const fs::path audit(path);
  const std::string base = audit.filename().string();
  const fs::path folder = audit.has_parent_path() ? audit.parent_path() : fs::path(".");
  std::error_code error;
  for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    const bool rotatedName = name.size() > base.size() + 1 &&
                             boost::algorithm::starts_with(name, base) &&
                             (name[base.size()] == '.' || name[base.size()] == '-') &&
                             !boost::algorithm::starts_with(name, base + ".syslog-spool");
    std::error_code ignored;
    if (!rotatedName || IsCompressed(name) || !it->is_regular_file(ignored)) continue;
    const auto lines = ReadLastAuditLines(it->path().string());
    if (!lines.empty() && IsAuditRecord(lines.back(), last, key)) return name;
  }
  return std::nullopt;
}

}  // namespace CloudIngest
