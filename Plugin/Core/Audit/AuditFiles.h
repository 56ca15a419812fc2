#pragma once
// Reading an audit file's tail and its rotated predecessors beside it, for
// AuditLog's start-up (ReconcileAuditHead) and Verify.
#include <optional>
#include <string>
#include <vector>

#include "Core/Audit/AuditChain.h"

namespace CloudIngest {

// The last complete lines of the file (oldest first, empty lines left out):
// those in its last 64 KiB, or more when the last line is longer. A last line
// without its newline (a power cut) is included. Empty when unreadable.
std::vector<std::string> ReadLastAuditLines(const std::string& path);

// The name of a file beside `path` whose name starts with the audit file's
// (logrotate's audit.jsonl.1, audit.jsonl-20250101, ...; compressed ones are
// not read) and whose last record is the one `last` names. nullopt: none.
std::optional<std::string> FindRotatedAuditFile(const std::string& path, const AuditLink& last,
                                                const std::string& key);

}  // namespace CloudIngest
