#pragma once
// Who may call which /cloud-ingest/ route (docs/REFERENCE.md, Access control):
// the user Orthanc authenticated gets a role from Permissions; each route
// needs one. Without Permissions everyone is admin.
#include <json/value.h>

#include <string>

#include "Core/Configuration/Configuration.h"

namespace CloudIngest {

Role RoleOf(const PermissionSettings& permissions, const std::string& user);

// The least role that may call `method` on `path` (below /cloud-ingest).
// Routes not named here: GET needs viewer, anything else admin, so a new
// route is never open by mistake.
Role RequiredRole(const std::string& method, const std::string& path);

// What GET /me lists: "view", "send", "admin" as far as `role` goes.
Json::Value Capabilities(Role role);

}  // namespace CloudIngest
