// The environment every child gets, whatever the application passes (an empty envp, a
// replaced environ, env -i): LD_PRELOAD names this library (prepended to what the
// application preloads), ENVRUN_INTERCEPT_DB and ENVRUN_INTERCEPT_CTL are ours. When envp
// already says so it is passed as is (the common case: one scan, no copy).
#include <string.h>

#include "intercept/hook_exec.hpp"
#include "intercept/lib_state.hpp"

namespace envrun::icpt::exec {

namespace {

constexpr char kPreload[] = "LD_PRELOAD=";
constexpr char kDb[] = "ENVRUN_INTERCEPT_DB=";
constexpr char kCtl[] = "ENVRUN_INTERCEPT_CTL=";
constexpr size_t kPreloadLen = sizeof kPreload - 1, kDbLen = sizeof kDb - 1, kCtlLen = sizeof kCtl - 1;

bool starts(const char* s, const char* prefix, size_t n) { return strncmp(s, prefix, n) == 0; }

// LD_PRELOAD is a list separated by ':' or ' ' (ld.so(8)).
bool lists_self(const char* value, const char* self, size_t self_len) {
  for (const char* p = value; *p;) {
    while (*p == ':' || *p == ' ') ++p;
    const char* e = p;
    while (*e && *e != ':' && *e != ' ') ++e;
    if (size_t(e - p) == self_len && memcmp(p, self, self_len) == 0) return true;
    p = e;
  }
  return false;
}

struct Scan {
  size_t count = 0;              // entries in envp
  size_t ours = 0;               // entries naming one of our three variables
  const char* preload = nullptr; // value of the first LD_PRELOAD
  bool preload_ok = false, db_ok = false, ctl_ok = false, duplicates = false;
};

Scan scan(char* const envp[]) {
  Scan s;
  const char* self = g_state.self_path;
  size_t self_len = strlen(self);
  bool seen_db = false, seen_ctl = false;
  for (size_t i = 0; envp != nullptr && envp[i] != nullptr; ++i, ++s.count) {
    const char* e = envp[i];
    if (e[0] != 'L' && e[0] != 'E') continue;
    if (starts(e, kPreload, kPreloadLen)) {
      ++s.ours;
      if (s.preload) { s.duplicates = true; continue; }
      s.preload = e + kPreloadLen;
      s.preload_ok = lists_self(s.preload, self, self_len);
    } else if (starts(e, kDb, kDbLen)) {
      ++s.ours;
      s.duplicates |= seen_db;
      s.db_ok = !seen_db && strcmp(e + kDbLen, g_state.db_path) == 0;
      seen_db = true;
    } else if (starts(e, kCtl, kCtlLen)) {
      ++s.ours;
      s.duplicates |= seen_ctl;
      s.ctl_ok = !seen_ctl && strcmp(e + kCtlLen, g_state.ctl_path) == 0;
      seen_ctl = true;
    }
  }
  if (g_state.db_path[0] == '\0') s.db_ok = !seen_db || s.db_ok;    // nothing of ours to set
  if (g_state.ctl_path[0] == '\0') s.ctl_ok = !seen_ctl || s.ctl_ok;
  return s;
}

char* put(char* dst, const char* a, size_t n) {
  memcpy(dst, a, n);
  return dst + n;
}

}  // namespace

size_t env_bytes_needed(char* const envp[]) {
  if (g_state.self_path[0] == '\0') return 0;  // not loaded as a preload we can name
  Scan s = scan(envp);
  if (s.preload_ok && s.db_ok && s.ctl_ok && !s.duplicates) return 0;
  size_t ptrs = (s.count - s.ours + 3 + 1) * sizeof(char*);
  size_t strs = kPreloadLen + strlen(g_state.self_path) + 1 + (s.preload ? strlen(s.preload) + 1 : 0) + 1;
  strs += kDbLen + strlen(g_state.db_path) + 1 + kCtlLen + strlen(g_state.ctl_path) + 1;
  return ptrs + ((strs + 7) & ~size_t(7));
}

char** build_env(char* const envp[], void* area, size_t bytes) {
  Scan s = scan(envp);
  char** out = static_cast<char**>(area);
  char* str = reinterpret_cast<char*>(out + (s.count - s.ours + 3 + 1));
  size_t n = 0;
  // Ours first: LD_PRELOAD=<self>[:<what the application preloads>].
  out[n++] = str;
  str = put(str, kPreload, kPreloadLen);
  str = put(str, g_state.self_path, strlen(g_state.self_path));
  if (s.preload && s.preload[0]) {
    *str++ = ':';
    str = put(str, s.preload, strlen(s.preload));
  }
  *str++ = '\0';
  if (g_state.db_path[0]) {
    out[n++] = str;
    str = put(str, kDb, kDbLen);
    str = put(str, g_state.db_path, strlen(g_state.db_path) + 1);
  }
  if (g_state.ctl_path[0]) {
    out[n++] = str;
    str = put(str, kCtl, kCtlLen);
    str = put(str, g_state.ctl_path, strlen(g_state.ctl_path) + 1);
  }
  for (size_t i = 0; i < s.count; ++i) {
    char* e = envp[i];
    if ((e[0] == 'L' || e[0] == 'E') &&
        (starts(e, kPreload, kPreloadLen) || starts(e, kDb, kDbLen) || starts(e, kCtl, kCtlLen)))
      continue;
    out[n++] = e;
  }
  out[n] = nullptr;
  (void)bytes;  // sized by env_bytes_needed
  return out;
}

}  // namespace envrun::icpt::exec
