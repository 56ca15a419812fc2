#pragma once
// Permissions, AuditKey, NodeName and AuditSyslog (docs/REFERENCE.md, Configuration).
#include <json/value.h>

#include <optional>
#include <string>

#include "Core/Configuration/Configuration.h"

namespace CloudIngest {

// Reads the keys above from the CloudIngest `section` into `config`.
// Throws ConfigurationError (one line naming the key and the fix).
void ReadSecurity(const Json::Value& section, const OrthancDefaults& defaults,
                  Configuration& config);

// "none", "viewer", "operator", "admin" (any case); nullopt otherwise.
std::optional<Role> ParseRole(const std::string& text);

}  // namespace CloudIngest
