// Runtime logging like runc: --log FILE --log-format text|json --debug.
// Without --log, warnings and errors go to stderr; debug only with --debug.
#pragma once
#include <string>

namespace envrun::log {

enum class Level { Debug, Info, Warn, Error };

void init(const std::string& file, bool json, bool debug);
void write(Level level, const std::string& msg);
inline void debug(const std::string& m) { write(Level::Debug, m); }
inline void info(const std::string& m) { write(Level::Info, m); }
inline void warn(const std::string& m) { write(Level::Warn, m); }
inline void error(const std::string& m) { write(Level::Error, m); }
bool debug_enabled();
// The current UTC time as RFC 3339 with nanoseconds ("2026-11-25T15:52:27.452876283Z").
std::string now_rfc3339();
// True when a log file is configured (errors then also go there).
bool has_file();
// The log file's fd (-1 without one): a process forked off to outlive the command (the
// lazy restore's page server) keeps it open to log there.
int file_fd();

}  // namespace envrun::log
