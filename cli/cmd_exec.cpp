// envrun exec ID [CMD ARGS...]: a new process inside the container.
// envrun exec --meter [--name ID] -- CMD [ARGS...]: a host command, metered (exec_meter.cpp).
#include "bundle/spec_parser.hpp"
#include "cli/cli.hpp"
#include "cli/exec_meter.hpp"
#include "kernel/fs.hpp"
#include "runtime/container.hpp"

namespace envrun::cli {

static Result<std::pair<uint32_t, uint32_t>> parse_user(const std::string& s) {
  auto colon = s.find(':');
  try {
    uint32_t uid = uint32_t(std::stoul(s.substr(0, colon)));
    uint32_t gid = colon == std::string::npos ? 0 : uint32_t(std::stoul(s.substr(colon + 1)));
    return std::make_pair(uid, gid);
  } catch (...) {
    return Error::make(ErrorKind::Usage, "--user " + s + ": expected UID[:GID] (numbers)");
  }
}

// --process FILE: a JSON process object; parsed as the "process" of a spec.
static Result<oci::Process> load_process(const std::string& file) {
  auto text = ENVRUN_TRY(fs::read_file(file));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return Error::make(ErrorKind::Config, file + ": not valid JSON");
  nlohmann::json doc = {{"ociVersion", "1.2.0"}, {"root", {{"path", "/"}}}, {"process", j}};
  auto spec = ENVRUN_TRY(bundle::parse_spec_json(doc.dump(), file));
  if (!spec.process || spec.process->args.empty())
    return Error::make(ErrorKind::Config, file + ": process.args must not be empty");
  return *spec.process;
}

void add_exec(CLI::App& app, Globals& g) {
  static runtime::ExecOptions o;
  static std::string process_file, user, meter_name, meter_bundle;
  static bool meter = false;
  auto* sub = app.add_subcommand("exec", "run a new process inside a container");
  sub->footer("The command and its arguments follow the id: envrun exec [OPTIONS] ID [--] CMD [ARGS...]\n"
              "On the host, metered: envrun exec --meter [--name ID] [--bundle-name NAME] -- CMD [ARGS...]");
  sub->add_flag("--meter", meter, "run CMD on the host as a metered instance (own cgroup, interception counters, ledger)");
  sub->add_option("--name", meter_name, "--meter: the instance id (default meter-PID)");
  sub->add_option("--bundle-name", meter_bundle, "--meter: the bundle name in the ledger (default: CMD's name)");
  sub->add_option("-p,--process", process_file, "JSON file with the process (OCI process object)");
  sub->add_option("--console-socket", o.console_socket, "unix socket that receives the pty master");
  sub->add_option("--cwd", o.cwd, "working directory inside the container");
  sub->add_option("-e,--env", o.env, "environment variable K=V (repeatable)");
  sub->add_flag("-t,--tty", o.tty, "allocate a pseudo-terminal");
  sub->add_option("-u,--user", user, "UID[:GID]");
  sub->add_option("-g,--additional-gids", o.additional_gids, "additional group id (repeatable)");
  sub->add_flag("-d,--detach", o.detach, "do not wait for the process");
  sub->add_option("--pid-file", o.pid_file, "file to write the process's pid to");
  sub->add_option("-c,--cap", o.caps, "add a capability (repeatable)");
  sub->add_flag("--no-new-privs", o.no_new_privs, "set no_new_privs");
  sub->add_option("--preserve-fds", o.preserve_fds, "pass N extra fds (3..3+N-1)");
  sub->add_option("id", o.id, "container id (with --meter: the command)");
  sub->prefix_command();
  sub->fallthrough(false);  // everything after the id belongs to the command
  on_run(sub, g, "exec", &o.id, [&g, sub]() -> Result<int> {
    o.args = sub->remaining();
    if (!o.args.empty() && o.args[0] == "--") o.args.erase(o.args.begin());
    if (meter) {  // the command follows "--" (main.cpp split it off), else the positionals are it
      if (!meter_command().empty()) o.args = meter_command();
      else if (!o.id.empty()) o.args.insert(o.args.begin(), o.id);
      return exec_metered(g, o.args, meter_name, meter_bundle);
    }
    if (o.id.empty()) return Error::make(ErrorKind::Usage, "exec: a container id is required (or --meter)");
    if (!process_file.empty()) o.process = ENVRUN_TRY(load_process(process_file));
    else if (o.args.empty()) return Error::make(ErrorKind::Usage, "no command given (envrun exec ID CMD [ARGS...])");
    if (!user.empty()) o.user = ENVRUN_TRY(parse_user(user));
    return runtime::exec_in_container(g.store(), o);
  });
}

}  // namespace envrun::cli
