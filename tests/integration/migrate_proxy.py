#!/usr/bin/env python3
"""A TCP proxy for t_migrate: one connection at a time, client -> server bytes optionally
changed or slowed down, so that the test can corrupt a frame or stretch a transfer.

usage: migrate_proxy.py LISTEN_ADDR LISTEN_PORT TO_ADDR TO_PORT [--flip-at N] [--flip-after TEXT]
                        [--rate BYTES_PER_S]

--flip-at N   XOR 0x01 into the byte at offset N of each connection's client -> server stream
--flip-after TEXT  the same at the last byte of TEXT's first occurrence (payloads are
              authenticated, not encrypted: '"kind":"pages","round":1}' finds an image's start)
--rate R      forward client -> server at most R bytes per second
Prints "listening" once ready; stops when the test kills it.
"""
import argparse
import select
import socket
import time


def serve(conn, to, flip_at, rate, flip_after=None):
    with socket.create_connection(to) as up:
        forward(conn, up, flip_at, rate, flip_after)


def forward(conn, up, flip_at, rate, flip_after=None):
    offset, started, seen = 0, time.monotonic(), b""
    peers = {conn: up, up: conn}
    while True:
        readable, _, _ = select.select([conn, up], [], [], 60)
        if not readable:
            return
        for s in readable:
            data = s.recv(65536)
            if not data:
                return
            if s is conn:
                if flip_after and flip_at is None:
                    seen = seen[-len(flip_after):] + data
                    i = seen.find(flip_after)
                    if i >= 0:
                        flip_at = offset - (len(seen) - len(data)) + i + len(flip_after) - 1
                if flip_at is not None and offset <= flip_at < offset + len(data):
                    b = bytearray(data)
                    b[flip_at - offset] ^= 0x01
                    data = bytes(b)
                offset += len(data)
                if rate:
                    ahead = offset / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            peers[s].sendall(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("port", type=int)
    ap.add_argument("to_addr")
    ap.add_argument("to_port", type=int)
    ap.add_argument("--flip-at", type=int)
    ap.add_argument("--rate", type=int)
    ap.add_argument("--flip-after")
    a = ap.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.addr, a.port))
    ls.listen(4)
    print("listening", flush=True)
    while True:
        conn, _ = ls.accept()
        try:
            serve(conn, (a.to_addr, a.to_port), a.flip_at, a.rate,
                  a.flip_after.encode() if a.flip_after else None)
        except OSError:
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    main()
