// remote_main: the local commands' output from the API's answers.
#include "cli/api/remote_client.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/exit_code.hpp"
#include "kernel/fs.hpp"
#include "kernel/result.hpp"

namespace envrun::cli {

namespace {

using nlohmann::json;

struct Remote {
  std::string host, token_file, cacert;
  std::unique_ptr<httplib::Client> client;
  std::string token;
};

Result<void> connect(Remote& r) {
  auto tok = fs::read_file(r.token_file);
  if (!tok) return Error::make(ErrorKind::Usage, "--token-file " + r.token_file + ": " + tok.error().message);
  r.token = *tok;
  while (!r.token.empty() && std::isspace(static_cast<unsigned char>(r.token.back()))) r.token.pop_back();
  if (r.token.empty()) return Error::make(ErrorKind::Usage, "--token-file " + r.token_file + ": empty");
  if (r.host.rfind("unix://", 0) == 0) {
    std::string path = r.host.substr(7);
    if (path.empty() || path.front() != '/') return Error::make(ErrorKind::Usage, "--host " + r.host + ": want unix:///ABSOLUTE/PATH");
    r.client = std::make_unique<httplib::Client>(path);
    r.client->set_address_family(AF_UNIX);
  } else if (r.host.rfind("https://", 0) == 0) {
    r.client = std::make_unique<httplib::Client>(r.host);
    if (!r.cacert.empty()) r.client->set_ca_cert_path(r.cacert.c_str());
    r.client->enable_server_certificate_verification(true);
  } else {
    return Error::make(ErrorKind::Usage, "--host " + r.host + ": want unix:///PATH or https://HOST:PORT (plain http is refused)");
  }
  if (!r.client->is_valid()) return Error::make(ErrorKind::Usage, "--host " + r.host + ": not usable");
  r.client->set_bearer_token_auth(r.token.c_str());
  r.client->set_connection_timeout(10);
  r.client->set_read_timeout(600);
  return ok();
}

ErrorKind kind_of(int status) {
  switch (status) {
    case 400: return ErrorKind::Usage;
    case 404: return ErrorKind::NotFound;
    case 409: return ErrorKind::State;
    default: return ErrorKind::Generic;
  }
}

// One request; the answer's JSON, or an Error with the API's message.
Result<json> call(Remote& r, const std::string& method, const std::string& path, const json& body = nullptr) {
  std::string text = body.is_null() ? "" : body.dump();
  httplib::Result res = method == "GET" ? r.client->Get(path.c_str())
                      : method == "DELETE" ? r.client->Delete(path.c_str())
                                           : r.client->Post(path.c_str(), text, "application/json");
  if (!res) return Error::make(ErrorKind::Generic, r.host + ": " + httplib::to_string(res.error()));
  json j = json::parse(res->body, nullptr, false);
  if (res->status >= 400) {
    std::string msg = j.is_object() && j.contains("error") ? j["error"].get<std::string>() : "HTTP " + std::to_string(res->status);
    return Error::make(kind_of(res->status), msg);
  }
  if (j.is_discarded()) return Error::make(ErrorKind::Generic, r.host + ": answer is not JSON");
  return j;
}

int report(const std::string& op, const std::string& id, const Error& e) {
  std::fprintf(stderr, "envrun: %s%s: %s\n", op.c_str(), id.empty() ? "" : (" " + id).c_str(), e.message.c_str());
  return exit_code(e.kind);
}

void print_list(const json& arr, const std::string& format, bool quiet) {
  if (quiet) {
    for (const auto& i : arr) std::printf("%s\n", i["id"].get<std::string>().c_str());
    return;
  }
  if (format == "json") {
    json all = json::array();
    for (const auto& i : arr) all.push_back(i["state"]);
    std::printf("%s\n", all.dump().c_str());
    return;
  }
  std::printf("%-20s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
  for (const auto& i : arr)
    std::printf("%-20s %-8d %-10s %-40s %-30s %s\n", i["id"].get<std::string>().c_str(), i["state"].value("pid", 0),
                i["state"].value("status", "").c_str(), i.value("bundle_dir", "").c_str(), i.value("created", "").c_str(),
                i.value("owner", "").c_str());
}

}  // namespace

int remote_main(int argc, char** argv) {
  Remote r;
  std::string id, format = "table", signal = "TERM", bundle;
  bool quiet = false, force = false, all = false, detach = false;
  CLI::App app{"envrun --host URL: the commands through an agent's API", "envrun"};
  app.add_option("--host", r.host, "unix:///PATH or https://HOST:PORT")->required();
  app.add_option("--token-file", r.token_file, "file holding the API token")->required();
  app.add_option("--cacert", r.cacert, "CA certificate (PEM) that signed the agent's certificate");
  std::string ignored;
  bool ignored_flag = false;
  app.add_option("--root,--log,--log-format", ignored, "accepted, unused: the agent has its own")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_flag("--debug", ignored_flag, "accepted, unused");
  app.require_subcommand(1);
  auto* list = app.add_subcommand("list", "list instances");
  list->add_option("-f,--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  list->add_flag("-q,--quiet", quiet, "print only the ids");
  auto* state = app.add_subcommand("state", "print the OCI state of an instance");
  state->add_option("id", id)->required();
  auto* start = app.add_subcommand("start", "start an instance");
  start->add_option("id", id)->required();
  auto* kill = app.add_subcommand("kill", "signal an instance");
  kill->add_option("id", id)->required();
  kill->add_option("signal", signal, "signal name or number");
  kill->add_flag("-a,--all", all, "every process of the instance");
  auto* del = app.add_subcommand("delete", "delete an instance");
  del->add_option("id", id)->required();
  del->add_flag("-f,--force", force, "kill it first if it runs");
  auto* run = app.add_subcommand("run", "create and start an instance of a library bundle (detached)");
  run->add_option("id", id)->required();
  run->add_option("-b,--bundle", bundle, "library bundle NAME[:VERSION]")->required();
  run->add_flag("-d,--detach", detach, "accepted: a remote run is always detached");
  CLI11_PARSE(app, argc, argv);
  std::string op = app.get_subcommands().front()->get_name();
  if (auto c = connect(r); !c) return report(op, id, c.error());
  auto esc = [](const std::string& s) {  // a path segment, percent-encoded
    std::string out;
    for (unsigned char ch : s) {
      if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '+') out += char(ch);
      else {
        char b[4];
        std::snprintf(b, sizeof b, "%%%02X", ch);
        out += b;
      }
    }
    return out;
  };
  Result<json> res = json(nullptr);
  if (op == "list") res = call(r, "GET", "/v1/instances");
  else if (op == "state") res = call(r, "GET", "/v1/instances/" + esc(id));
  else if (op == "start") res = call(r, "POST", "/v1/instances/" + esc(id) + "/start", json::object());
  else if (op == "kill") res = call(r, "POST", "/v1/instances/" + esc(id) + "/kill", {{"signal", signal}, {"all", all}});
  else if (op == "delete") res = call(r, "DELETE", "/v1/instances/" + esc(id) + (force ? "?force=1" : ""));
  else {
    json body{{"id", id}, {"bundle", bundle}};
    if (auto colon = bundle.rfind(':'); colon != std::string::npos) {
      body["bundle"] = bundle.substr(0, colon);
      body["version"] = std::atoi(bundle.c_str() + colon + 1);
    }
    res = call(r, "POST", "/v1/instances", body);
  }
  if (!res) return report(op, id, res.error());
  if (op == "list") print_list(*res, format, quiet);
  if (op == "state") std::printf("%s\n", (*res)["state"].dump(2).c_str());
  return 0;
}

}  // namespace envrun::cli
