// Registers of a stopped thread: NT_PRSTATUS (user_regs_struct) and NT_X86_XSTATE.
//
// The XSTATE size is the kernel's (it depends on the CPU's features: ~2.7 KiB with
// AVX-512, more with AMX). The first call offers a large buffer and the kernel trims
// the iovec to the real length, which is remembered for the following calls.
#include <elf.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include <atomic>

#include "ckpt/infect/detail.hpp"
#include "ckpt/infect/infect.hpp"

namespace envrun::infect {

namespace detail {

Result<user_regs_struct> get_gp(pid_t tid) {
  user_regs_struct gp{};
  struct iovec iov = {&gp, sizeof gp};
  if (::ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_PRSTATUS), &iov) != 0)
    return sys_error(tid, "PTRACE_GETREGSET NT_PRSTATUS");
  if (iov.iov_len != sizeof gp)
    return error(tid, "PTRACE_GETREGSET NT_PRSTATUS: " + std::to_string(iov.iov_len) + " bytes, expected " +
                          std::to_string(sizeof gp), EINVAL);
  return gp;
}

Result<void> set_gp(pid_t tid, const user_regs_struct& gp) {
  struct iovec iov = {const_cast<user_regs_struct*>(&gp), sizeof gp};
  if (::ptrace(PTRACE_SETREGSET, tid, reinterpret_cast<void*>(NT_PRSTATUS), &iov) != 0)
    return sys_error(tid, "PTRACE_SETREGSET NT_PRSTATUS");
  return ok();
}

}  // namespace detail

static std::atomic<size_t> g_xstate_size{0};

static Result<std::vector<uint8_t>> get_xstate(pid_t tid) {
  size_t size = g_xstate_size.load(std::memory_order_relaxed);
  std::vector<uint8_t> buf(size ? size : 64 * 1024);
  struct iovec iov = {buf.data(), buf.size()};
  if (::ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0)
    return detail::sys_error(tid, "PTRACE_GETREGSET NT_X86_XSTATE");
  buf.resize(iov.iov_len);
  if (!size) g_xstate_size.store(iov.iov_len, std::memory_order_relaxed);
  return buf;
}

Result<ThreadRegs> get_regs(pid_t tid) {
  ThreadRegs regs;
  regs.gp = ENVRUN_TRY(detail::get_gp(tid));
  regs.xstate = ENVRUN_TRY(get_xstate(tid));
  return regs;
}

Result<void> set_regs(pid_t tid, const ThreadRegs& regs) {
  ENVRUN_CHECK(detail::set_gp(tid, regs.gp));
  if (regs.xstate.empty()) return ok();
  struct iovec iov = {const_cast<uint8_t*>(regs.xstate.data()), regs.xstate.size()};
  if (::ptrace(PTRACE_SETREGSET, tid, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0)
    return detail::sys_error(tid, "PTRACE_SETREGSET NT_X86_XSTATE (" + std::to_string(regs.xstate.size()) + " bytes)");
  return ok();
}

}  // namespace envrun::infect
