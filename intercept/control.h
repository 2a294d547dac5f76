// The control page of one container instance: a small file (<state>/intercept.ctl) that
// every process of the instance maps MAP_SHARED (the library opens the path given in
// ENVRUN_INTERCEPT_CTL). It is the instance's control channel: it reaches every process
// at once, without a thread or a socket in the application.
//   - `enabled` is the live interceptor chain: bit i enables Interceptor i of the DB.
//     `envrun intercept ID enable|disable NAME...` computes the new mask and stores it with
//     one atomic store, so a batch of changes is seen whole or not at all; a thread reads
//     the mask once per hooked call.
//   - `counters` are the meter interceptor's per-instance usage counters (billing/ reads
//     them; relaxed atomic adds from every process; the byte and transaction counters are
//     batched per thread, see intercept/README.md "Counters").
//   - `peers` is the set of distinct peer IP addresses seen by the instance (kDistinctPeers):
//     an open-addressing table of 64-bit address hashes, 0 = free slot, filled with CAS.
//   - `exec_pids` are processes that were counted in kProcessesStarted and are executing a
//     new program: its constructor finds its own (pid, start time) there and does not count
//     the process a second time.
//   - `barrier[kBarrierFlag]` is the checkpoint barrier word: non-zero means "a checkpoint
//     is in progress". The barrier interceptor makes every hooked call wait while it is set
//     (FUTEX_WAIT, not private, on its low 32 bits, so it works across processes; the wait
//     re-checks at least every 200 ms). Who sets it stores 1, and to release stores 0 and
//     FUTEX_WAKEs all waiters on the same address. Calls already inside the real function
//     when it is set finish normally.
//   - the other barrier words are the in-process checkpoint handshake between the engine
//     (ckpt/inproc.cpp) and each process's checkpoint thread (intercept/ckpt_thread.cpp);
//     see kCkptEpoch below and intercept/README.md "Checkpoint".
// Shared by intercept/ (libc only), runtime/, billing/ and ckpt/.
#pragma once
#include <atomic>
#include <cstdint>

namespace envrun::ictl {

inline constexpr char kMagic[8] = {'E', 'N', 'V', 'R', 'C', 'T', 'L', '\0'};
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kMaxCounters = 64;

// Meter counters (index into ControlPage::counters). Append only; never renumber.
enum Counter : uint32_t {
  kOpens = 0,          // successful open/openat/creat/fopen... calls
  kOpenFailures,       // failed ones
  kRedirected,         // path calls the redirect interceptor rewrote
  kDenied,             // calls refused by a rule (hide, readonly)
  kExecs,              // successful execve family calls (counted before the exec)
  kConnects,           // successful connect()
  kAccepts,            // successful accept()/accept4()
  kBinds,              // successful bind()
  kPortsMapped,        // bind/connect whose port a net rule mapped
  kBytesRead,          // bytes returned by read/recv family through the meter
  kBytesWritten,       // bytes accepted by write/send family through the meter
  kConnectionsOpen,    // accepted connections currently open (inc on accept, dec on close)
  kConnectionsPeak,    // peak of kConnectionsOpen
  kProcessesStarted,   // processes that loaded the library (fork children included; an exec
                       // of a counted process is not a new process)
  kNetBytesReceived,   // bytes received on sockets (recv family, read family on a socket fd)
  kNetBytesSent,       // bytes sent on sockets (send family, write family on a socket fd)
  kTransactions,       // turns from reading to writing on accepted connections
  kDistinctPeers,      // distinct peer IP addresses (accepted and connect() targets)
  kPeersTableFull,     // flag: 1 when `peers` was full and kDistinctPeers stopped counting
  kCounterCount
};

// Index of the "checkpoint in progress" word in ControlPage::barrier.
inline constexpr uint32_t kBarrierFlag = 0;
// The in-process checkpoint handshake (ControlPage::barrier words; futexes on the low 32
// bits, not private). One engine at a time (it holds flock(LOCK_EX) on the page file).
//   kCkptEpoch    request counter: the engine sets kBarrierFlag, stores kCkptAcks, then adds
//                 1 here and FUTEX_WAKEs. Each process's checkpoint thread quiesces, flushes
//                 and saves, then acks. A value below the one a thread remembers means the
//                 page is a new one: the process was restored into another instance.
//   kCkptAcks     (tag << 32) | count: the engine stores the tag of the phase (the low 32
//                 bits of the epoch for a checkpoint, kCkptRestoreTag after a restore) with a
//                 count of 0; a process adds 1 (CAS, only while the tag is the one it
//                 answers) and FUTEX_WAKEs.
//   kCkptRelease  the engine stores the epoch after the dump when the processes go on
//                 (--leave-running, or a failed dump), then clears kBarrierFlag.
//   kCkptLease    milliseconds a checkpoint thread waits for the release or a restore
//                 before it clears kBarrierFlag itself (an engine that died); 0: 60000.
inline constexpr uint32_t kCkptEpoch = 1;
inline constexpr uint32_t kCkptAcks = 2;
inline constexpr uint32_t kCkptRelease = 3;
inline constexpr uint32_t kCkptLease = 4;
inline constexpr uint32_t kCkptRestoreTag = 0xffffffffu;
inline constexpr uint64_t kCkptDefaultLeaseMs = 60000;

// A live option value: `envrun intercept ID set NAME KEY=VALUE` writes one slot, the library
// reads it instead of the DB's value. Seqlock: the writer makes `seq` odd, writes, makes it
// even again; a reader copies the slot and retries while `seq` was odd or changed.
inline constexpr uint32_t kMaxOptionOverrides = 16;
struct OptionOverride {
  std::atomic<uint32_t> seq;
  uint16_t interceptor;                 // DB interceptor index
  uint16_t used;                        // 1: the slot holds a value
  char key[32];                         // NUL-terminated
  char value[96];                       // NUL-terminated
};

// The distinct-peers set: hashes of peer addresses (IPv4 as IPv4-mapped IPv6, no port).
inline constexpr uint32_t kPeerSlots = 128;
// Processes between a counted exec and the new program's constructor.
inline constexpr uint32_t kExecSlots = 8;
struct ExecSlot {
  std::atomic<uint64_t> pid;            // 0: free
  std::atomic<uint64_t> start_time;     // /proc/<pid>/stat field 22 (clock ticks since boot)
};

struct ControlPage {
  char magic[8];
  uint32_t version;
  uint32_t size;                        // sizeof(ControlPage) of the writer
  std::atomic<uint64_t> enabled;        // live chain mask, bit i = DB interceptor i
  std::atomic<uint64_t> generation;     // incremented after every change of `enabled`
  std::atomic<uint64_t> barrier[6];     // [kBarrierFlag]: checkpoint in progress; [kCkpt*]: handshake; [5] reserved
  std::atomic<uint64_t> counters[kMaxCounters];
  OptionOverride options[kMaxOptionOverrides];  // live option values (envrun intercept ID set)
  std::atomic<uint64_t> peers[kPeerSlots];      // distinct peer address hashes (0: free)
  ExecSlot exec_pids[kExecSlots];               // counted processes inside an exec
};

// The control page file is one 4 KiB page (runtime/ writes sysconf(_SC_PAGESIZE) bytes).
static_assert(sizeof(ControlPage) <= 4096, "the control page must fit the 4096-byte page file");

static_assert(std::atomic<uint64_t>::is_always_lock_free, "the control page needs lock-free 64-bit atomics");

}  // namespace envrun::ictl
