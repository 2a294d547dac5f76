// The interception side of a container instance: its compiled DB (<state>/intercept/intercept.db),
// its control page (<state>/intercept/intercept.ctl, intercept/control.h), the library to preload.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "intercept/db_view.hpp"
#include "kernel/result.hpp"
#include "runtime/state.hpp"

namespace envrun::runtime {

inline constexpr const char* kInterceptDbName = "intercept/intercept.db";
inline constexpr const char* kInterceptCtlName = "intercept/intercept.ctl";

struct InterceptorStatus {
  std::string name;
  bool enabled = false;
  std::vector<std::pair<std::string, std::string>> options;
};

// The chain of a container, in order, with the live enabled state from its control page.
// NotFound when the container does not exist; State when it runs without interception.
Result<std::vector<InterceptorStatus>> intercept_chain(const StateStore& store, const std::string& id);

// Enable and disable interceptors of a running container in one atomic store on its
// control page (no process sees half of the batch). Unknown names: a Usage error naming
// them and the valid ones. Returns the new chain.
Result<std::vector<InterceptorStatus>> intercept_set(const StateStore& store, const std::string& id,
                                                     const std::vector<std::string>& enable,
                                                     const std::vector<std::string>& disable);

// Set live option values of a running container's interceptors (KEY=VALUE, checked like
// intercept.yaml's options); the library reads them instead of the DB's. Returns the chain.
Result<std::vector<InterceptorStatus>> intercept_configure(const StateStore& store, const std::string& id,
                                                           const std::string& name,
                                                           const std::vector<std::string>& assignments);

// Create the control page file for a compiled DB (enabled mask = the DB's initial flags).
Result<void> create_control_page(const std::string& path, const idb::DbView& db);

// Path of libenvrun-intercept.so: $ENVRUN_INTERCEPT_LIB, else next to the envrun binary
// (<exe dir>/../lib/envrun/ when installed, <build>/intercept/ in a build tree).
Result<std::string> intercept_library_path();

}  // namespace envrun::runtime
