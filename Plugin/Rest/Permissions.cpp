#include "Rest/Permissions.h"

#include <algorithm>
#include <iterator>

#include "Rest/RoutePath.h"

namespace CloudIngest {

Role RoleOf(const PermissionSettings& permissions, const std::string& user) {
  if (!permissions.configured) return Role::Admin;
  const auto it = permissions.users.find(user);
  if (!user.empty() && it != permissions.users.end()) return it->second;
  return permissions.defaultRole;
}

Role RequiredRole(const std::string& method, const std::string& path) {
  static const char* const kOperatorRoutes[] = {"/studies/send",         "/studies/{any}/send",
                                                "/studies/{any}/cancel", "/orders/{any}/metadata",
                                                "/queue/pause",          "/queue/resume"};
  if (path == "/audit" || path.rfind("/audit/", 0) == 0) return Role::Admin;
  if (method == "GET") return Role::Viewer;
  if (method == "POST" &&
      std::any_of(std::begin(kOperatorRoutes), std::end(kOperatorRoutes),
                  [&](const char* route) { return MatchRoute(path, route).has_value(); })) {
    return Role::Operator;
  }
  return Role::Admin;
}

Json::Value Capabilities(Role role) {
  Json::Value can(Json::arrayValue);
  if (role >= Role::Viewer) can.append("view");
  if (role >= Role::Operator) can.append("send");
  if (role >= Role::Admin) can.append("admin");
  return can;
}

}  // namespace CloudIngest
