// envrun list: the containers under --root.
#include <cstdio>

#include "cli/cli.hpp"
#include "runtime/state.hpp"

namespace envrun::cli {

void add_list(CLI::App& app, Globals& g) {
  static std::string format = "table";
  static bool quiet = false;
  auto* sub = app.add_subcommand("list", "list containers");
  sub->add_option("-f,--format", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  sub->add_flag("-q,--quiet", quiet, "print only the ids");
  on_run(sub, g, "list", nullptr, [&g]() -> Result<int> {
    auto store = g.store();
    nlohmann::json all = nlohmann::json::array();
    if (format == "table" && !quiet) std::printf("%-20s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
    for (auto& id : store.ids()) {
      auto st = store.load(id);
      if (!st) continue;  // removed while we listed
      auto s = store.status(*st);
      auto j = runtime::oci_state_json(*st, s);
      if (quiet) std::printf("%s\n", id.c_str());
      else if (format == "json") all.push_back(j);
      else
        std::printf("%-20s %-8d %-10s %-40s %-30s %s\n", id.c_str(), j["pid"].get<int>(), runtime::status_name(s),
                    st->bundle.c_str(), st->created.c_str(), st->owner.c_str());
    }
    if (format == "json" && !quiet) std::printf("%s\n", all.dump().c_str());
    return 0;
  });
}

}  // namespace envrun::cli
