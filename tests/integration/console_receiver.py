#!/usr/bin/env python3
"""Console socket receiver for the terminal tests (what containerd/podman do).

usage: console_receiver.py SOCKET OUTFILE [--timeout SECONDS] [--send TEXT]

Listens on the AF_UNIX stream socket SOCKET, accepts one connection, receives
the pty master through SCM_RIGHTS, optionally writes TEXT to it (escapes like
\\n are decoded), then copies everything the container prints to OUTFILE until
the pty closes (EIO/EOF) or the timeout. Exit status: 0 when a master was
received and read to its end, 1 otherwise.
"""
import argparse
import array
import os
import select
import socket
import sys
import time


def receive_master(conn):
    fds = array.array("i")
    msg, ancdata, _flags, _addr = conn.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if len(fds) != 1:
        raise RuntimeError(f"expected one fd, got {len(fds)} (payload {msg!r})")
    return fds[0], msg


def copy_output(master, out, deadline):
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every slave end is closed
            return True
        if not chunk:
            return True
        out.write(chunk)
        out.flush()
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("outfile")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--send", default=None)
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(a.socket)
    srv.listen(1)
    srv.settimeout(a.timeout)
    try:
        conn, _ = srv.accept()
        conn.settimeout(max(1.0, deadline - time.monotonic()))
        master, name = receive_master(conn)
    except (OSError, RuntimeError) as e:  # socket.timeout is an OSError
        print(f"console_receiver: no pty master received: {e}", file=sys.stderr)
        return 1
    conn.close()
    srv.close()
    with open(a.outfile + ".name", "wb") as f:
        f.write(name)
    if a.send is not None:
        os.write(master, a.send.encode().decode("unicode_escape").encode())
    with open(a.outfile, "wb") as out:
        ended = copy_output(master, out, deadline)
    os.close(master)
    if not ended:
        print("console_receiver: timed out before the pty closed", file=sys.stderr)
    return 0 if ended else 1


if __name__ == "__main__":
    sys.exit(main())
