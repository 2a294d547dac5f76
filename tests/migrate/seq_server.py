#!/usr/bin/python3 -u
# seq_server.py ADDR PORT: a numbered-message TCP server for the TCP migration test
# (tests/integration/t_migrate_tcp.sh), run inside the container.
#
# A client sends lines "N PADDING\n" with N = 1, 2, 3, ... on one connection; each is
# answered with "N HOST PID\n": HOST names the network interfaces of the network namespace
# the server runs in now (read from /proc/self/net/dev at each answer, so it changes when
# the process moves to another host), PID is its own pid (the same after a restore). A
# number that is not the one after the previous is answered "BAD N want M\n" (a message the
# server lost or saw twice). Connections are served one after the other.
import os
import socket
import sys


def host_marker():
    with open("/proc/self/net/dev") as f:
        names = sorted(line.split(":")[0].strip() for line in f.read().splitlines()[2:])
    return ",".join(n for n in names if n != "lo") or "lo"


def serve(conn):
    want = 1
    reader = conn.makefile("rb")
    pid = os.getpid()
    for line in reader:
        fields = line.split()
        if not fields:
            continue
        n = int(fields[0])
        if n == want:
            conn.sendall(b"%d %s %d\n" % (n, host_marker().encode(), pid))
        else:
            conn.sendall(b"BAD %d want %d\n" % (n, want))
        want = n + 1


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(8)
    print("READY %s:%d on %s" % (addr, port, host_marker()), flush=True)
    while True:
        conn, peer = ls.accept()
        print("connection from %s:%d" % peer, flush=True)
        try:
            serve(conn)
        except OSError as e:
            print("connection from %s:%d: %s" % (peer[0], peer[1], e), flush=True)
        conn.close()
        print("connection from %s:%d closed" % peer, flush=True)


if __name__ == "__main__":
    main()
