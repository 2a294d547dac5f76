/* tcp: an established TCP connection over 127.0.0.1 inside the program (client socket and
 * the server's accepted socket), with 3000 bytes sent by the client that the server has not
 * read and 1000 bytes sent by the server that the client has not read. Needs 127.0.0.1 and,
 * through a checkpoint, `envrun checkpoint --tcp-established` (TCP_REPAIR).
 * At SIGTERM: both ends keep their addresses (the client its ephemeral port), the queued bytes
 * come back in order on each side, then 256 KiB go each way over the same connection.
 * CKPT_SELFTEST_BREAK: 1 one byte read on the server side, 2 the client reconnected (new port),
 * 3 7 extra bytes sent by the server. */
#include "ckpt_common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define C2S 3000
#define S2C 1000
#define BULK (256 * 1024)

static int lsn, cli, srv;
static struct sockaddr_in lsn_addr, cli_addr;

static unsigned char pat(int dir, size_t i) { return (unsigned char)(dir ? i * 3 + 5 + (i >> 10) : i * 17 + 2 + (i >> 9)); }

static void connect_pair(void)
{
    socklen_t len = sizeof cli_addr;
    cli = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cli, (struct sockaddr *)&lsn_addr, sizeof lsn_addr) != 0)
        ckpt_die("connect: %s", strerror(errno));
    srv = accept(lsn, NULL, NULL);
    if (srv < 0)
        ckpt_die("accept: %s", strerror(errno));
    getsockname(cli, (struct sockaddr *)&cli_addr, &len);
}

static void send_pattern(int fd, int dir, size_t n, size_t from)
{
    unsigned char buf[4096];
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < sizeof buf ? n - done : sizeof buf;
        for (size_t i = 0; i < k; i++)
            buf[i] = pat(dir, from + done + i);
        ssize_t w = write(fd, buf, k);
        if (w <= 0) {
            ckpt_fail("write %s: %s", dir ? "server->client" : "client->server", strerror(errno));
            return;
        }
        done += (size_t)w;
    }
}

static void setup(void)
{
    int one = 1;
    socklen_t len = sizeof lsn_addr;
    lsn = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(lsn, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&lsn_addr, 0, sizeof lsn_addr);
    lsn_addr.sin_family = AF_INET;
    lsn_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lsn, (struct sockaddr *)&lsn_addr, sizeof lsn_addr) != 0 || listen(lsn, 4) != 0)
        ckpt_die("listen on 127.0.0.1: %s", strerror(errno));
    getsockname(lsn, (struct sockaddr *)&lsn_addr, &len);
    connect_pair();
    send_pattern(cli, 0, C2S, 0);
    send_pattern(srv, 1, S2C, 0);
    usleep(100000); /* let the bytes reach the other side's receive queue */
}

/* Reads exactly n bytes (2 s per poll), checking the pattern from offset `from`. */
static void expect(int fd, int dir, size_t n, size_t from, const char *what)
{
    unsigned char buf[4096];
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) != 1)
            break;
        size_t k = n - got < sizeof buf ? n - got : sizeof buf;
        ssize_t r = read(fd, buf, k);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pat(dir, from + got + (size_t)i)) {
                ckpt_fail("%s: byte %zu is %#x, want %#x", what, from + got + (size_t)i, buf[i],
                          pat(dir, from + got + (size_t)i));
                return;
            }
        got += (size_t)r;
    }
    if (got != n)
        ckpt_fail("%s: %zu of %zu bytes arrived", what, got, n);
}

static void apply_break(int brk)
{
    unsigned char b;
    if (brk == 1) {
        ckpt_note_break("one byte read on the server side");
        if (read(srv, &b, 1) != 1)
            ckpt_fail("selftest read failed");
    } else if (brk == 2) {
        ckpt_note_break("client reconnected");
        struct sockaddr_in old = cli_addr;
        close(cli);
        close(srv);
        connect_pair();
        send_pattern(cli, 0, C2S, 0);
        send_pattern(srv, 1, S2C, 0);
        cli_addr = old;
    } else if (brk == 3) {
        ckpt_note_break("7 extra bytes from the server");
        if (write(srv, "garbage", 7) != 7)
            ckpt_fail("selftest write failed");
    }
}

int main(void)
{
    ckpt_init("tcp");
    signal(SIGPIPE, SIG_IGN);
    setup();
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    struct sockaddr_in now, peer;
    socklen_t l1 = sizeof now, l2 = sizeof peer;
    getsockname(cli, (struct sockaddr *)&now, &l1);
    if (getpeername(cli, (struct sockaddr *)&peer, &l2) != 0)
        ckpt_fail("client not connected: %s", strerror(errno));
    else if (peer.sin_port != lsn_addr.sin_port)
        ckpt_fail("client peer port %d, want %d", ntohs(peer.sin_port), ntohs(lsn_addr.sin_port));
    if (now.sin_port != cli_addr.sin_port)
        ckpt_fail("client port %d, want %d", ntohs(now.sin_port), ntohs(cli_addr.sin_port));
    int q = -1;
    ioctl(srv, FIONREAD, &q);
    if (q != C2S)
        ckpt_fail("server side has %d bytes queued, want %d", q, C2S);
    expect(srv, 0, C2S, 0, "client->server queued");
    expect(cli, 1, S2C, 0, "server->client queued");
    int extra = -1;
    ioctl(cli, FIONREAD, &extra);
    if (extra != 0)
        ckpt_fail("client has %d unexpected bytes", extra);
    /* bulk both ways, interleaved so neither side blocks for long */
    for (size_t off = 0; off < BULK; off += 16384) {
        send_pattern(cli, 0, 16384, C2S + off);
        expect(srv, 0, 16384, C2S + off, "client->server bulk");
        send_pattern(srv, 1, 16384, S2C + off);
        expect(cli, 1, 16384, S2C + off, "server->client bulk");
        if (ckpt_reasons_len)
            break;
    }
    ckpt_finish();
}
