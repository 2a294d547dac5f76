// An interceptor's option as it is now: the value set live on the control page
// (`envrun intercept ID set NAME KEY=VALUE`), else the DB's. Internal to the library.
#pragma once
#include "intercept/control_options.hpp"
#include "intercept/lib_state.hpp"

namespace envrun::icpt {

// Copies the value into buf (cap bytes) and returns buf, or nullptr when neither the control
// page nor the DB has one. idx < 0 (the interceptor is not in the chain): nullptr.
inline const char* live_option(int idx, const char* key, char* buf, size_t cap) {
  if (idx < 0 || !g_state.db_ok) return nullptr;
  if (ictl::read_option_override(g_state.ctl, uint32_t(idx), key, buf, cap)) return buf;
  const char* v = g_state.db.option(uint32_t(idx), key);
  if (v == nullptr) return nullptr;
  size_t n = strnlen(v, cap - 1);
  memcpy(buf, v, n);
  buf[n] = '\0';
  return buf;
}

}  // namespace envrun::icpt
