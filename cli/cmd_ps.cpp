// envrun ps ID [-- ps args]: the container's processes (ps(1) table or json pids).
#include <sys/wait.h>

#include <cstdio>
#include <set>
#include <sstream>

#include "cli/cli.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {

static Result<std::string> run_ps(const std::vector<std::string>& args) {
  std::string cmd = "ps";
  for (auto& a : args) {
    if (a.find('\'') != std::string::npos) return Error::make(ErrorKind::Usage, "ps argument with a quote: " + a);
    cmd += " '" + a + "'";
  }
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return Error::sys("run ps");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return Error::make(ErrorKind::Generic, cmd + " failed");
  return out;
}

void add_ps(CLI::App& app, Globals& g) {
  static std::string id, format = "table";
  auto* sub = app.add_subcommand("ps", "list the processes of a container");
  sub->footer("Arguments after the id go to ps(1) (default -ef): envrun ps ID [--] [PS-ARGS...]");
  sub->add_option("-f,--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  sub->add_option("id", id, "container id")->required();
  sub->prefix_command();
  sub->fallthrough(false);  // everything after the id belongs to the command
  on_run(sub, g, "ps", &id, [&g, sub]() -> Result<int> {
    auto pids = ENVRUN_TRY(runtime::container_pids(g.store(), id));
    if (format == "json") {
      std::printf("%s\n", nlohmann::json(pids).dump().c_str());
      return 0;
    }
    auto args = sub->remaining();
    if (!args.empty() && args[0] == "--") args.erase(args.begin());
    if (args.empty()) args = {"-ef"};
    std::string out = ENVRUN_TRY(run_ps(args));
    std::istringstream in(out);
    std::string header, line;
    std::getline(in, header);
    std::istringstream hs(header);
    int pid_col = -1, col = 0;
    for (std::string w; hs >> w; ++col)
      if (w == "PID") pid_col = col;
    if (pid_col < 0) return Error::make(ErrorKind::Usage, "ps output has no PID column");
    std::set<pid_t> want(pids.begin(), pids.end());
    std::printf("%s\n", header.c_str());
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string w;
      for (int i = 0; i <= pid_col && ls >> w; ++i) {
      }
      if (want.count(std::atoi(w.c_str()))) std::printf("%s\n", line.c_str());
    }
    return 0;
  });
}

}  // namespace envrun::cli
