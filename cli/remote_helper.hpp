// envrun-api, the dynamically linked helper installed next to envrun (cli/api/): the
// management API of `envrun serve` and the remote CLI (`envrun --host URL ...`).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "ha/subprocess.hpp"

namespace envrun::cli {

// envrun serve's API options (envrun-serve(8)).
struct ApiFlags {
  std::vector<std::string> api;  // unix:PATH (default unix:DIR/api.sock)
  std::string listen, cert, key; // --api-listen ADDR:PORT --tls-cert F --tls-key F
  std::string ledger;            // default: billing::default_ledger_path()
  std::string plan;              // pricing plan for GET /v1/billing
  bool no_api = false, list_routes = false;
};
void add_api_flags(CLI::App* serve, ApiFlags& f);

// `envrun-api serve ...` for the agent directory `dir`. exec_api_serve replaces this process
// (the API alone); start_api_serve runs it beside the migration listener (stopped with
// SIGTERM when the returned handle goes). Neither is needed with --no-api.
Result<int> exec_api_serve(const Globals& g, const ApiFlags& f, const std::string& dir);

class ApiChild {
 public:
  explicit ApiChild(std::optional<ha::Child> c) : child_(std::move(c)) {}
  // The moved-from handle owns nothing (its destructor must signal no one).
  ApiChild(ApiChild&& o) noexcept : child_(std::move(o.child_)) { o.child_.reset(); }
  ApiChild& operator=(ApiChild&&) = delete;
  ~ApiChild();

 private:
  std::optional<ha::Child> child_;
};
Result<ApiChild> start_api_serve(const Globals& g, const ApiFlags& f, const std::string& dir);

// `envrun --host URL ...`: exec `envrun-api remote <argv[1..]>`; returns only on failure.
// Whether argv asks for a remote command (a --host before the command word).
bool wants_remote(int argc, char** argv);
int exec_remote(int argc, char** argv);

}  // namespace envrun::cli
