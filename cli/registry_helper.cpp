// exec_registry_helper: find envrun-pull next to /proc/self/exe and exec it.
#include "cli/registry_helper.hpp"

#include <unistd.h>

#include <climits>

namespace envrun::cli {

Result<int> exec_registry_helper(const Globals& g, const std::string& sub, const std::vector<std::string>& rest) {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return Error::sys("/proc/self/exe");
  std::string helper(self, size_t(n));
  helper = helper.substr(0, helper.find_last_of('/')) + "/envrun-pull";
  if (::access(helper.c_str(), X_OK) != 0) return Error::sys("helper " + helper + " (installed with envrun)");
  std::vector<std::string> args{helper};
  if (!sub.empty()) args.push_back(sub);  // pull is the helper's default command
  args.insert(args.end(), {"--log-format", g.log_format});
  if (!g.log_file.empty()) args.insert(args.end(), {"--log", g.log_file});
  if (g.debug) args.push_back("--debug");
  args.insert(args.end(), rest.begin(), rest.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(helper.c_str(), argv.data());
  return Error::sys("exec " + helper);
}

}  // namespace envrun::cli
