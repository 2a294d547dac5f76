// The `net` interceptor's port/address rules (db_format.h NetRule; envrun-intercept(5)):
// an inside endpoint [addr:]port the application uses maps to an outside [addr:]port the
// kernel sees, and back. The first rule in yaml order whose protocol, family, port and
// (when given) address match wins; port 0 (any port) is never mapped.
//
// Families: a rule with IPv4 addresses also applies to AF_INET6 sockets through v4-mapped
// addresses (::ffff:a.b.c.d); a rule without addresses (family 0) maps the port of both.
#include <netinet/in.h>
#include <string.h>

#include "intercept/hook_net.hpp"
#include "intercept/lib_state.hpp"

namespace envrun::icpt::net {

namespace {

using idb::NetProto;
using idb::NetRule;

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// Where the port and the address live inside a sockaddr_in / sockaddr_in6 (offsets are
// fixed by the ABI; byte access keeps unaligned caller buffers safe).
struct Endpoint {
  int family = 0;          // AF_INET or AF_INET6
  unsigned char* port = nullptr;  // 2 bytes, network order
  unsigned char* addr = nullptr;  // 4 or 16 bytes
};

bool endpoint_of(sockaddr* sa, socklen_t len, Endpoint& ep) {
  if (sa == nullptr || len < socklen_t(sizeof(sa_family_t))) return false;
  sa_family_t fam;
  memcpy(&fam, sa, sizeof fam);
  auto* b = reinterpret_cast<unsigned char*>(sa);
  if (fam == AF_INET && len >= socklen_t(sizeof(sockaddr_in))) {
    ep = {AF_INET, b + offsetof(sockaddr_in, sin_port), b + offsetof(sockaddr_in, sin_addr)};
    return true;
  }
  if (fam == AF_INET6 && len >= socklen_t(sizeof(sockaddr_in6))) {
    ep = {AF_INET6, b + offsetof(sockaddr_in6, sin6_port), b + offsetof(sockaddr_in6, sin6_addr)};
    return true;
  }
  return false;
}

uint16_t port_of(const Endpoint& ep) { return uint16_t(ep.port[0] << 8 | ep.port[1]); }
void set_port(const Endpoint& ep, uint16_t p) {
  ep.port[0] = uint8_t(p >> 8);
  ep.port[1] = uint8_t(p);
}

bool family_ok(const Endpoint& ep, const NetRule& r) {
  if (r.family == 0) return true;
  return ep.family == AF_INET6 || r.family == 4;  // AF_INET6 takes IPv4 rules as v4-mapped
}

bool addr_eq(const Endpoint& ep, const NetRule& r, const uint8_t* ra) {
  if (ep.family == AF_INET) return memcmp(ep.addr, ra, 4) == 0;
  if (r.family == 4) return memcmp(ep.addr, kV4MappedPrefix, 12) == 0 && memcmp(ep.addr + 12, ra, 4) == 0;
  return memcmp(ep.addr, ra, 16) == 0;
}

void set_addr(const Endpoint& ep, const NetRule& r, const uint8_t* ra) {
  if (ep.family == AF_INET) {
    memcpy(ep.addr, ra, 4);
  } else if (r.family == 4) {
    memcpy(ep.addr, kV4MappedPrefix, 12);
    memcpy(ep.addr + 12, ra, 4);
  } else {
    memcpy(ep.addr, ra, 16);
  }
}

uint8_t socket_proto(int fd) {
  int type = 0;
  socklen_t n = sizeof type;
  if (REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &n) != 0) return uint8_t(NetProto::Any);
  if (type == SOCK_STREAM) return uint8_t(NetProto::Tcp);
  if (type == SOCK_DGRAM) return uint8_t(NetProto::Udp);
  return uint8_t(NetProto::Any);
}

// The rule for `ep` seen from the inside (outward=true: match inside endpoints) or from
// the outside (match outside endpoints: outside_addr, else inside_addr, which then is
// unchanged on the way out).
const NetRule* find_rule(int fd, const Endpoint& ep, bool outward) {
  uint16_t port = port_of(ep);
  if (port == 0) return nullptr;
  int proto = -1;  // SO_TYPE, asked once and only when a rule needs it
  const NetRule* rules = g_state.db.net();
  for (uint32_t i = 0; i < g_state.db.net_count(); ++i) {
    const NetRule& r = rules[i];
    if ((outward ? r.inside_port : r.outside_port) != port || !family_ok(ep, r)) continue;
    bool has = outward ? r.has_inside_addr : (r.has_outside_addr || r.has_inside_addr);
    const uint8_t* ra = outward || !r.has_outside_addr ? r.inside_addr : r.outside_addr;
    if (has && !addr_eq(ep, r, ra)) continue;
    if (r.proto != uint8_t(NetProto::Any)) {
      if (proto < 0) proto = socket_proto(fd);
      if (proto != r.proto) continue;
    }
    return &r;
  }
  return nullptr;
}

}  // namespace

bool rules_active() {
  return g_state.db_ok && g_state.db.net_count() > 0 && on(live_mask(), g_state.idx_net);
}

bool map_to_outside(int fd, sockaddr* sa, socklen_t len) {
  Endpoint ep;
  if (!endpoint_of(sa, len, ep)) return false;
  const NetRule* r = find_rule(fd, ep, true);
  if (!r) return false;
  set_port(ep, r->outside_port);
  if (r->has_outside_addr) set_addr(ep, *r, r->outside_addr);
  return true;
}

bool map_to_inside(int fd, sockaddr* sa, socklen_t len) {
  Endpoint ep;
  if (!endpoint_of(sa, len, ep)) return false;
  const NetRule* r = find_rule(fd, ep, false);
  if (!r) return false;
  set_port(ep, r->inside_port);
  if (r->has_inside_addr) set_addr(ep, *r, r->inside_addr);
  return true;
}

}  // namespace envrun::icpt::net
