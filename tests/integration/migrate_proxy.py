#!/usr/bin/env python3
"""A TCP proxy for t_migrate: one connection at a time, client -> server bytes optionally
changed or slowed down, so that the test can corrupt a frame or stretch a transfer.

usage: migrate_proxy.py LISTEN_ADDR LISTEN_PORT TO_ADDR TO_PORT [--flip-at N] [--flip-in-frame TYPE:N]
                        [--rate BYTES_PER_S]

--flip-at N   XOR 0x01 into the byte at offset N of each connection's client -> server stream
--flip-in-frame TYPE:N  the same at the first payload byte of the Nth (from 1) client frame
              of type TYPE (ha/frame.hpp: 11 is image-begin; payloads are encrypted, the
              16-byte frame headers are not: the proxy follows them)
--rate R      forward client -> server at most R bytes per second
Prints "listening" once ready; stops when the test kills it.
"""
import argparse
import select
import socket
import time


HANDSHAKE = 44 + 32  # ClientHello + ClientProof (ha/handshake.hpp)
HEADER, TAG = 16, 16


class FrameFinder:
    """Follows the client's frame headers; offset of the payload of the Nth frame of a type."""

    def __init__(self, ftype, nth):
        self.ftype, self.nth, self.next_at, self.head, self.found = ftype, nth, HANDSHAKE, b"", None

    def feed(self, offset, data):
        end = offset + len(data)
        while self.found is None and self.next_at < end:
            if self.next_at + len(self.head) < offset:
                return
            take = data[self.next_at + len(self.head) - offset:][:HEADER - len(self.head)]
            self.head += take
            if len(self.head) < HEADER:
                return
            ftype, length = self.head[0], int.from_bytes(self.head[4:8], "little")
            if ftype == self.ftype:
                self.nth -= 1
                if self.nth == 0:
                    self.found = self.next_at + HEADER
            self.next_at += HEADER + length + TAG
            self.head = b""


def serve(conn, to, flip_at, rate, finder=None):
    with socket.create_connection(to) as up:
        forward(conn, up, flip_at, rate, finder)


def forward(conn, up, flip_at, rate, finder=None):
    offset, started = 0, time.monotonic()
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
                if finder and flip_at is None:
                    finder.feed(offset, data)
                    flip_at = finder.found
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
    ap.add_argument("--flip-in-frame")
    a = ap.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.addr, a.port))
    ls.listen(4)
    print("listening", flush=True)
    while True:
        conn, _ = ls.accept()
        try:
            finder = None
            if a.flip_in_frame:
                t, n = a.flip_in_frame.split(":")
                finder = FrameFinder(int(t), int(n))
            serve(conn, (a.to_addr, a.to_port), a.flip_at, a.rate, finder)
        except OSError:
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    main()
