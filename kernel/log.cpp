#include "kernel/log.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace envrun::log {
namespace {
int g_fd = -1;
bool g_json = false;
bool g_debug = false;

const char* level_name(Level l) {
  switch (l) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warning";
    case Level::Error: return "error";
  }
  return "info";
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += char(c);
        }
    }
  }
  return o;
}

}  // namespace

std::string now_rfc3339() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char b[64];
  std::snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
  return b;
}

void init(const std::string& file, bool json, bool debug) {
  g_json = json;
  g_debug = debug;
  if (!file.empty()) g_fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

bool debug_enabled() { return g_debug; }
bool has_file() { return g_fd >= 0; }
int file_fd() { return g_fd; }

void write(Level level, const std::string& msg) {
  if (level == Level::Debug && !g_debug) return;
  std::string line;
  if (g_fd >= 0) {
    if (g_json)
      line = "{\"level\":\"" + std::string(level_name(level)) + "\",\"msg\":\"" + json_escape(msg) +
             "\",\"time\":\"" + now_rfc3339() + "\"}\n";
    else
      line = now_rfc3339() + " " + level_name(level) + ": " + msg + "\n";
    (void)!::write(g_fd, line.data(), line.size());
  }
  // Errors are printed by the CLI itself; everything else goes to stderr when no log file.
  if (g_fd < 0 && level != Level::Error) {
    line = std::string("envrun: ") + level_name(level) + ": " + msg + "\n";
    (void)!::write(2, line.data(), line.size());
  }
}

}  // namespace envrun::log
