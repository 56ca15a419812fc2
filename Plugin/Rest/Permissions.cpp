#include "Rest/Permissions.h"

#include <regex>

namespace CloudIngest {

Role RoleOf(const PermissionSettings& permissions, const std::string& user) {
  if (!permissions.configured) return Role::Admin;
  const auto it = permissions.users.find(user);
  if (!user.empty() && it != permissions.users.end()) return it->second;
  return permissions.defaultRole;
}

Role RequiredRole(const std::string& method, const std::string& path) {
  static const std::regex operatorRoutes(
      R"(/studies/send|/studies/[^/]+/(send|cancel)|/orders/[^/]+/metadata|/queue/(pause|resume))");
  if (path == "/audit" || path.rfind("/audit/", 0) == 0) return Role::Admin;
  if (method == "GET") return Role::Viewer;
  if (method == "POST" && std::regex_match(path, operatorRoutes)) return Role::Operator;
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
