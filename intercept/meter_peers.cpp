// kDistinctPeers: the set of peer IP addresses (no port) of accepted connections and
// connect() targets, shared by every process of the instance through the control page's
// `peers` table: open addressing with linear probing over 64-bit hashes of the address
// (IPv4 as IPv4-mapped IPv6, so one host is one peer whichever family the socket has);
// 0 marks a free slot, a slot is claimed with one CAS and never freed. A table without a
// free slot stops the counting and raises kPeersTableFull (a flag, set once).
#include <netinet/in.h>
#include <string.h>

#include "intercept/lib_state.hpp"
#include "intercept/meter.hpp"
#include "intercept/sys.hpp"

namespace envrun::icpt::meter {

namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The address as 16 bytes (IPv4 mapped); false for other families or short lengths.
bool address_bytes(const sockaddr* sa, socklen_t len, uint8_t out[16]) {
  if (sa == nullptr || len < socklen_t(sizeof(sa_family_t))) return false;
  if (sa->sa_family == AF_INET && len >= socklen_t(sizeof(sockaddr_in))) {
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    return true;
  }
  if (sa->sa_family == AF_INET6 && len >= socklen_t(sizeof(sockaddr_in6))) {
    memcpy(out, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    return true;
  }
  return false;
}

uint64_t hash_of(const uint8_t a[16]) {
  uint64_t hi, lo;
  memcpy(&hi, a, 8);
  memcpy(&lo, a + 8, 8);
  uint64_t h = mix(hi ^ mix(lo + 0x9e3779b97f4a7c15ULL));
  return h != 0 ? h : 1;
}

// Insert h; the call that fills a free slot with it counts it.
void insert(uint64_t h) {
  ictl::ControlPage* page = g_state.ctl;
  if (page->counters[ictl::kPeersTableFull].load(std::memory_order_relaxed) != 0) return;
  uint32_t start = uint32_t(h % ictl::kPeerSlots);
  for (uint32_t i = 0; i < ictl::kPeerSlots; ++i) {
    auto& slot = page->peers[(start + i) % ictl::kPeerSlots];
    uint64_t v = slot.load(std::memory_order_acquire);
    if (v == h) return;
    if (v != 0) continue;
    if (slot.compare_exchange_strong(v, h, std::memory_order_acq_rel)) {
      page->counters[ictl::kDistinctPeers].fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (v == h) return;  // another process inserted the same peer here first
  }
  page->counters[ictl::kPeersTableFull].store(1, std::memory_order_relaxed);
}

}  // namespace

void note_peer(const sockaddr* sa, socklen_t len) {
  uint8_t a[16];
  if (address_bytes(sa, len, a)) insert(hash_of(a));
}

void note_peer_of(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (sys::raw(SYS_getpeername, fd, sys::L(&ss), sys::L(&len)) == 0)
    note_peer(reinterpret_cast<const sockaddr*>(&ss), len);
}

}  // namespace envrun::icpt::meter
