// Small filesystem helpers that return Result and never throw.
#pragma once
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace envrun::fs {

Result<std::string> read_file(const std::string& path);
// Write (truncate) a file; for procfs/cgroupfs/sysfs knobs: a single write(2).
Result<void> write_file(const std::string& path, std::string_view data, int flags = 0);
// Crash-safe replace: write to path.tmp, fsync, rename over path, fsync the directory.
// durable=false skips the fsyncs (readers never see a partial file, but a crash may lose it).
Result<void> atomic_write(const std::string& path, std::string_view data, mode_t mode = 0644, bool durable = true);
Result<void> mkdir_p(const std::string& path, mode_t mode = 0755);
// rm -rf that does not cross mount points; ENOENT is success.
Result<void> remove_tree(const std::string& path);
bool exists(const std::string& path);
bool is_dir(const std::string& path);
// Lexical normalisation: collapse //, ., and .. (never above "/").
std::string normalize(std::string_view path);
std::string join(std::string_view a, std::string_view b);
std::vector<std::string> list_dir(const std::string& path);

}  // namespace envrun::fs
