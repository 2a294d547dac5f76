// Finding a `syscall` instruction (0x0f 0x05) in the target for remote syscalls.
//
// The two bytes only have to be there: the CPU executes them from wherever rip
// points, instruction boundaries of the surrounding code do not matter. An existing
// pair is preferred to writing one: the [vdso] has them (its syscall fallbacks) and is
// never part of a dump; writing into a file-backed text page would turn that page
// into a private copy that a later dump has to save.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "ckpt/infect/detail.hpp"
#include "ckpt/infect/infect.hpp"
#include "kernel/fs.hpp"

namespace envrun::infect {

namespace detail {

Result<std::vector<Mapping>> read_maps(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/maps";
  auto text = fs::read_file(path);
  if (!text) return std::move(text).error().with_context("infect: pid " + std::to_string(pid));
  std::vector<Mapping> out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    Mapping m;
    char perms[8] = {};
    int name_at = 0;
    if (std::sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s%n", &m.start, &m.end, perms, &name_at) < 3)
      return Error{EINVAL, ErrorKind::System, "infect: " + path + ": cannot parse line '" + line + "'"};
    m.perms = perms;
    std::string rest = line.substr(size_t(name_at));
    size_t first = rest.find_first_not_of(' ');
    m.name = first == std::string::npos ? "" : rest.substr(first);
    out.push_back(std::move(m));
  }
  return out;
}

static bool executable(const Mapping& m) { return m.perms.size() >= 3 && m.perms[2] == 'x'; }
static bool readable(const Mapping& m) { return !m.perms.empty() && m.perms[0] == 'r'; }

Result<SyscallPlace> choose_syscall_place(pid_t pid) {
  auto maps = ENVRUN_TRY(read_maps(pid));
  for (const auto& m : maps) {
    if (m.name != "[vdso]") continue;
    auto at = find_syscall_insn(pid, m.start, m.end);
    if (at) return SyscallPlace{*at, false};
  }
  // [vsyscall] is execute-only and emulated: never use it.
  for (const auto& m : maps) {
    if (!executable(m) || !readable(m) || m.name == "[vsyscall]" || m.name == "[vdso]") continue;
    auto at = find_syscall_insn(pid, m.start, m.end);
    if (at) return SyscallPlace{*at, false};
  }
  for (const auto& m : maps)
    if (executable(m) && m.name != "[vsyscall]") return SyscallPlace{m.start, true};
  return error(pid, "no executable mapping to run a remote syscall from", ENOEXEC);
}

}  // namespace detail

Result<uint64_t> find_syscall_insn(pid_t pid, uint64_t start, uint64_t end) {
  constexpr size_t kChunk = 64 * 1024;
  std::vector<uint8_t> buf(kChunk + 1);
  bool carry = false;  // the previous chunk ended in 0x0f
  for (uint64_t at = start; at < end;) {
    size_t n = size_t(std::min<uint64_t>(kChunk, end - at));
    ENVRUN_CHECK(read_mem(pid, at, std::span<uint8_t>(buf.data(), n)));
    if (carry && buf[0] == 0x05) return at - 1;
    for (size_t i = 0; i + 1 < n; ++i)
      if (buf[i] == 0x0f && buf[i + 1] == 0x05) return at + i;
    carry = buf[n - 1] == 0x0f;
    at += n;
  }
  char range[64];
  std::snprintf(range, sizeof range, "[0x%" PRIx64 ", 0x%" PRIx64 ")", start, end);
  return Error{0, ErrorKind::NotFound, "infect: pid " + std::to_string(pid) + ": no syscall instruction (0f 05) in " + range};
}

}  // namespace envrun::infect
