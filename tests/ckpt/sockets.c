/* sockets: a unix stream socketpair with bytes queued in both directions (3000 to end 1,
 * 1000 to end 0), an eventfd holding 42 (O_NONBLOCK), a TCP socket listening on 127.0.0.1
 * (ephemeral port, SO_REUSEADDR, backlog 7), a UDP socket bound on 127.0.0.1 and connected
 * to a second bound UDP socket, and an epoll instance watching pair end 1 (data 0x1111),
 * the eventfd (0x2222) and the listener (EPOLLET, 0x3333). Needs 127.0.0.1 (lo up).
 * At SIGTERM: epoll reports exactly pair end 1 and the eventfd with their data; the queued
 * bytes come back in order on each end; the eventfd reads 42; the listener keeps its address,
 * options and accepts a new connection, which epoll then reports as 0x3333; the UDP socket
 * keeps its address and peer and a datagram goes through.
 * CKPT_SELFTEST_BREAK: 1 one byte read from pair end 1, 2 the eventfd drained,
 * 3 pair end 1 removed from the epoll set, 4 the listener closed and re-made on another port. */
#include "ckpt_common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define TO_END1 3000
#define TO_END0 1000

static int pair[2], efd, lsn, udp, udp_peer, ep;
static struct sockaddr_in lsn_addr, udp_addr, udp_peer_addr;

static unsigned char pat(int end, size_t i) { return (unsigned char)(end ? i * 5 + 1 : i * 11 + 7); }

static void bind_lo(int s, struct sockaddr_in *out)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0)
        ckpt_die("bind 127.0.0.1: %s", strerror(errno));
    socklen_t len = sizeof *out;
    getsockname(s, (struct sockaddr *)out, &len);
}

static void fill(int from, int end, size_t n)
{
    unsigned char buf[TO_END1];
    for (size_t i = 0; i < n; i++)
        buf[i] = pat(end, i);
    if (write(from, buf, n) != (ssize_t)n)
        ckpt_die("socketpair write: %s", strerror(errno));
}

static void watch(int fd, unsigned events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        ckpt_die("epoll_ctl ADD %d: %s", fd, strerror(errno));
}

static void make_listener(void)
{
    int one = 1;
    lsn = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(lsn, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bind_lo(lsn, &lsn_addr);
    if (listen(lsn, 7) != 0)
        ckpt_die("listen: %s", strerror(errno));
}

static void setup(void)
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0)
        ckpt_die("socketpair: %s", strerror(errno));
    fill(pair[0], 1, TO_END1);
    fill(pair[1], 0, TO_END0);
    efd = eventfd(42, EFD_NONBLOCK);
    make_listener();
    udp = socket(AF_INET, SOCK_DGRAM, 0);
    udp_peer = socket(AF_INET, SOCK_DGRAM, 0);
    bind_lo(udp, &udp_addr);
    bind_lo(udp_peer, &udp_peer_addr);
    if (connect(udp, (struct sockaddr *)&udp_peer_addr, sizeof udp_peer_addr) != 0)
        ckpt_die("udp connect: %s", strerror(errno));
    ep = epoll_create1(0);
    if (efd < 0 || ep < 0)
        ckpt_die("eventfd/epoll: %s", strerror(errno));
    watch(pair[1], EPOLLIN, 0x1111);
    watch(efd, EPOLLIN, 0x2222);
    watch(lsn, EPOLLIN | EPOLLET, 0x3333);
}

static void check_epoll(uint64_t want_a, uint64_t want_b, const char *when)
{
    struct epoll_event ev[8];
    int n = epoll_wait(ep, ev, 8, 0);
    uint64_t seen = 0;
    for (int i = 0; i < n; i++)
        seen |= ev[i].data.u64 == 0x1111 ? 1 : ev[i].data.u64 == 0x2222 ? 2 : ev[i].data.u64 == 0x3333 ? 4 : 8;
    uint64_t want = (want_a ? 1 : 0) | (want_b ? 2 : 0);
    if (n < 0 || seen != want)
        ckpt_fail("epoll %s: %d events, set %#llx, want %#llx", when, n, (unsigned long long)seen,
                  (unsigned long long)want);
}

static void check_end(int end, size_t want)
{
    unsigned char buf[TO_END1 + 16];
    int fd = pair[end], queued = -1;
    ioctl(fd, FIONREAD, &queued);
    if (queued != (int)want)
        ckpt_fail("pair end %d has %d bytes queued, want %zu", end, queued, want);
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n != (ssize_t)want) {
        ckpt_fail("pair end %d gave %zd bytes, want %zu", end, n, want);
        return;
    }
    for (size_t i = 0; i < want; i++)
        if (buf[i] != pat(end, i)) {
            ckpt_fail("pair end %d byte %zu is %#x, want %#x", end, i, buf[i], pat(end, i));
            return;
        }
}

static void check_listener(void)
{
    struct sockaddr_in now;
    socklen_t len = sizeof now;
    int v = 0;
    socklen_t vl = sizeof v;
    getsockname(lsn, (struct sockaddr *)&now, &len);
    if (now.sin_port != lsn_addr.sin_port || now.sin_addr.s_addr != lsn_addr.sin_addr.s_addr)
        ckpt_fail("listener on port %d, want %d", ntohs(now.sin_port), ntohs(lsn_addr.sin_port));
    if (getsockopt(lsn, SOL_SOCKET, SO_REUSEADDR, &v, &vl) != 0 || !v)
        ckpt_fail("listener lost SO_REUSEADDR");
    if (!(fcntl(lsn, F_GETFL) & O_NONBLOCK))
        ckpt_fail("listener lost O_NONBLOCK");
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&lsn_addr, sizeof lsn_addr) != 0) {
        ckpt_fail("connect to the listener on port %d: %s", ntohs(lsn_addr.sin_port), strerror(errno));
        return;
    }
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, 2000);
    if (n != 1 || ev.data.u64 != 0x3333)
        ckpt_fail("epoll did not report the new connection (%d events)", n);
    int a = accept(lsn, NULL, NULL);
    if (a < 0)
        ckpt_fail("accept: %s", strerror(errno));
    else if (write(c, "hi", 2) != 2 || read(a, &v, 2) != 2)
        ckpt_fail("no bytes over the accepted connection");
    close(a);
    close(c);
}

static void check_udp(void)
{
    struct sockaddr_in me, peer;
    socklen_t l1 = sizeof me, l2 = sizeof peer;
    getsockname(udp, (struct sockaddr *)&me, &l1);
    if (getpeername(udp, (struct sockaddr *)&peer, &l2) != 0)
        ckpt_fail("udp socket not connected any more: %s", strerror(errno));
    else if (peer.sin_port != udp_peer_addr.sin_port)
        ckpt_fail("udp peer port %d, want %d", ntohs(peer.sin_port), ntohs(udp_peer_addr.sin_port));
    if (me.sin_port != udp_addr.sin_port)
        ckpt_fail("udp port %d, want %d", ntohs(me.sin_port), ntohs(udp_addr.sin_port));
    char buf[8] = {0};
    if (send(udp, "dgram", 5, 0) != 5 || recv(udp_peer, buf, sizeof buf, 0) != 5 || memcmp(buf, "dgram", 5))
        ckpt_fail("no datagram through the udp pair: %s", strerror(errno));
}

static void apply_break(int brk)
{
    unsigned char b;
    uint64_t v;
    if (brk == 1) {
        ckpt_note_break("one byte read from pair end 1");
        if (read(pair[1], &b, 1) != 1)
            ckpt_fail("selftest read failed");
    } else if (brk == 2) {
        ckpt_note_break("eventfd drained");
        if (read(efd, &v, sizeof v) != sizeof v)
            ckpt_fail("selftest eventfd read failed");
    } else if (brk == 3) {
        ckpt_note_break("pair end 1 removed from the epoll set");
        epoll_ctl(ep, EPOLL_CTL_DEL, pair[1], NULL);
    } else if (brk == 4) {
        ckpt_note_break("listener re-made on another port");
        epoll_ctl(ep, EPOLL_CTL_DEL, lsn, NULL);
        close(lsn);
        struct sockaddr_in old = lsn_addr;
        make_listener();
        lsn_addr = old;
        watch(lsn, EPOLLIN | EPOLLET, 0x3333);
    }
}

int main(void)
{
    ckpt_init("sockets");
    setup();
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    check_epoll(1, 1, "at SIGTERM");
    check_end(1, TO_END1);
    check_end(0, TO_END0);
    uint64_t v = 0;
    if (read(efd, &v, sizeof v) != sizeof v || v != 42)
        ckpt_fail("eventfd read %llu, want 42", (unsigned long long)v);
    check_epoll(0, 0, "after draining");
    check_listener();
    check_udp();
    ckpt_finish();
}
