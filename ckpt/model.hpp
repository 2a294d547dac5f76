// What a checkpoint knows about a process tree: the engine's in-memory model, written
// to and read from the image's JSON sections (envrun-image(5)). Raw CPU state
// (registers, XSAVE area) and memory contents travel in binary sections beside it.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace envrun::ckpt {

inline constexpr int kImageFormat = 1;

// One mapping of /proc/PID/maps (plus VmFlags from smaps where it matters).
struct Vma {
  enum class Kind { Anon, File, SharedAnon, Vdso, Vvar, VvarVclock, Vsyscall };
  uint64_t start = 0, end = 0;
  int prot = 0;               // PROT_*
  bool shared = false;        // MAP_SHARED
  bool grows_down = false;    // the stack ([stack] or VmFlags gd)
  Kind kind = Kind::Anon;
  uint64_t offset = 0;        // file offset (File)
  std::string path;           // File: the path as the kernel shows it
  uint64_t ino = 0;           // File / SharedAnon: inode (SharedAnon: shmem id)
  uint64_t dev = 0;
  std::string name;           // "[heap]", "[stack]", "[anon:...]"
  uint64_t size() const { return end - start; }
};

// An established TCP connection, read in repair mode (TCP_REPAIR; --tcp-established).
struct TcpRepair {
  uint32_t snd_seq = 0, rcv_seq = 0;  // TCP_QUEUE_SEQ: write_seq of the send queue, rcv_nxt of the receive queue
  uint32_t outq_len = 0, unsent_len = 0, inq_len = 0;
  uint64_t send_data_id = 0;          // FileData: the send queue (the receive queue: SocketState::in_data_id)
  uint32_t mss = 0, snd_wscale = 0, rcv_wscale = 0, options = 0;  // options: tcpi_options (TCPI_OPT_*)
  uint32_t timestamp = 0;
  uint32_t snd_wl1 = 0, snd_wnd = 0, max_window = 0, rcv_wnd = 0, rcv_wup = 0;  // TCP_REPAIR_WINDOW
};

// A socket: what it takes to make it again (Kind::Socket).
struct SocketState {
  int family = 0, type = 0, protocol = 0;  // SO_DOMAIN, SO_TYPE, SO_PROTOCOL
  bool listening = false;
  int backlog = 0;                         // listening: the listen() backlog (0: SOMAXCONN)
  std::string addr;                        // bound address: numeric (inet), path or "@name" (unix)
  int port = 0;
  std::string peer_addr;                   // connected (UDP) peer
  int peer_port = 0;
  std::map<std::string, int> opts;         // socket options by name (sockets.cpp: the table)
  uint64_t ino = 0, peer_ino = 0;          // unix socket pairs: this end's inode, the other end's
  uint64_t in_data_id = 0;                 // unix stream pairs, TCP: FileData of the bytes queued to this end
  bool established = false;                // TCP connection (then `tcp`)
  TcpRepair tcp;
};

// One registration of an epoll instance (fdinfo "tfd: events: data:").
struct EpollTarget {
  int fd = 0;
  uint32_t events = 0;
  uint64_t data = 0;
};

// A timerfd: clock, the remaining time (relative, as fdinfo shows it) and unread expirations.
struct TimerFdState {
  int clockid = 0, settime_flags = 0;
  uint64_t ticks = 0;
  int64_t value_sec = 0, value_nsec = 0, interval_sec = 0, interval_nsec = 0;
};

// One open file description; shared by fd entries (across processes) that point to it.
struct OpenFile {
  // (Numbered in the image: new kinds go at the end.)
  enum class Kind { Regular, Directory, Pipe, Fifo, CharDevice, Deleted, Unsupported, Socket, Epoll, EventFd, TimerFd, SignalFd };
  uint64_t id = 0;             // image-wide id
  Kind kind = Kind::Regular;
  std::string path;            // Regular, Directory, Fifo, CharDevice, Deleted: see host_path
  bool host_path = true;       // path is on a mount the host sees (else: below the process's root)
  int flags = 0;               // O_* access mode and status flags (fdinfo "flags", without O_CLOEXEC)
  int64_t pos = 0;
  uint64_t pipe_ino = 0;       // Pipe / Fifo: the pipe's inode (both ends share it)
  uint64_t data_id = 0;        // FileData section holding a deleted file's bytes or a pipe's buffer
  uint64_t data_size = 0;
  uint32_t mode = 0;           // Deleted: st_mode
  std::string what;            // Unsupported: the /proc link text, for the error message
  SocketState sock;            // Socket
  std::vector<EpollTarget> epoll;  // Epoll: its registrations, fd numbers as seen by `owner`
  pid_t owner = 0;             // Epoll: the process (namespace pid) that re-registers them
  uint64_t count = 0;          // EventFd: the counter
  bool semaphore = false;      // EventFd: EFD_SEMAPHORE
  TimerFdState timer;          // TimerFd
  uint64_t sigmask = 0;        // SignalFd: bit (signo - 1)
};

struct FdEntry {
  int fd = 0;
  uint64_t file = 0;  // OpenFile id
  bool cloexec = false;
};

struct SigAction {
  uint64_t handler = 0, flags = 0, restorer = 0, mask = 0;  // the kernel's struct sigaction
};

// An interval timer (getitimer): ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF.
struct ITimer {
  int64_t interval_sec = 0, interval_usec = 0, value_sec = 0, value_usec = 0;
};

// A POSIX timer (timer_create), with its id (restored as is: PR_TIMER_CREATE_RESTORE_IDS).
struct PosixTimer {
  int id = 0, clock = 0, signo = 0, notify = 0;  // notify: SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID
  pid_t tid = 0;                                  // SIGEV_THREAD_ID: the thread (namespace tid)
  uint64_t sigval = 0;
  int64_t interval_sec = 0, interval_nsec = 0, value_sec = 0, value_nsec = 0;
};

struct ThreadCore {
  pid_t tid = 0;        // in the container's pid namespace
  pid_t host_tid = 0;   // on the dumping host (not used at restore)
  uint64_t sigmask = 0;
  uint64_t altstack_sp = 0, altstack_size = 0;
  int altstack_flags = 0;
  uint64_t clear_tid = 0;           // set_tid_address
  uint64_t robust_list = 0, robust_len = 0;
  uint64_t rseq = 0, rseq_len = 0, rseq_sig = 0;
  std::vector<std::vector<uint8_t>> pending;  // private pending siginfos (128 bytes each)
  // Its seccomp filters, oldest first; each a BPF program as sock_filter words
  // (code | jt << 16 | jf << 24 | k << 32).
  std::vector<std::vector<uint64_t>> seccomp;
};

struct ProcessCore {
  pid_t pid = 0, ppid = 0, pgid = 0, sid = 0;  // in the container's pid namespace
  pid_t host_pid = 0;
  bool zombie = false;
  int exit_code = 0;  // zombie: the wait status
  std::string comm;
  std::string exe;
  std::string cwd;
  bool cwd_deleted = false;
  std::string root;
  uint32_t umask = 022;
  std::vector<uint32_t> uids, gids;  // real, effective, saved, fs
  std::vector<uint32_t> groups;
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = ~0ull, cap_amb = 0;
  bool no_new_privs = false;
  int seccomp_mode = 0;  // /proc/PID/status Seccomp: 0 none, 2 filters (1, strict, is refused)
  std::map<int, std::pair<uint64_t, uint64_t>> rlimits;  // resource -> (soft, hard)
  std::map<int, SigAction> sigactions;                    // only non-default ones
  std::vector<std::vector<uint8_t>> shared_pending;
  // mm: the fields of prctl(PR_SET_MM_MAP)
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0, start_brk = 0, brk = 0,
           start_stack = 0, arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  std::vector<uint64_t> auxv;
  std::vector<ITimer> itimers;      // [ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF]
  std::vector<PosixTimer> timers;
  std::vector<Vma> vmas;
  std::vector<FdEntry> fds;
  std::vector<ThreadCore> threads;  // threads[0] is the main thread
};

nlohmann::json to_json(const ProcessCore& p);
ProcessCore process_from_json(const nlohmann::json& j);  // throws nlohmann exceptions on bad input
nlohmann::json to_json(const OpenFile& f);
OpenFile file_from_json(const nlohmann::json& j);

}  // namespace envrun::ckpt
