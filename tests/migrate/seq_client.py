#!/usr/bin/python3
# seq_client.py --host H --port P --status FILE --stop-file FILE [--window 8] [--interval 0.002]
#               [--max-seconds 100] [--pad 200]
# The client of seq_server.py for the TCP migration test: ONE connection, held open, on
# which numbered messages go continuously (up to --window of them unanswered: some are
# always in flight or queued in either direction). Every answer must carry the number
# after the previous answer's (no message lost or repeated in either direction: the
# server answers BAD for a number it did not expect). The connection is never reopened:
# a reset, an end of stream or 20 s without an answer ends the run as an error.
#
# --status FILE is rewritten every 0.1 s: "received N host HOST errors E". When the stop
# file appears (or after --max-seconds), sending stops, the answers still due are read,
# and one JSON line is printed: sent, received, errors (texts), bad (BAD answers), hosts
# ([host, first number answered from there, answers], in order), pids, max_gap_ms (the
# longest wait between two answers). Exit status 0 when there was no error. The end is a
# FIN from here, answered by the server's close once every message was answered.
import argparse
import json
import os
import socket
import threading
import time


class Run:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(a.window)
        self.sent = 0
        self.received = 0
        self.errors = []
        self.bad = 0
        self.hosts = []  # [host, first n, count]
        self.pids = []
        self.max_gap = 0.0
        self.done_sending = threading.Event()
        self.dead = threading.Event()

    def error(self, text):
        with self.lock:
            self.errors.append(text)
        self.dead.set()

    def sender(self, s):
        pad = b"x" * self.a.pad
        try:
            while not self.dead.is_set() and not self.stop_requested():
                if not self.slots.acquire(timeout=0.5):
                    continue
                n = self.sent + 1
                s.sendall(b"%d %s\n" % (n, pad))
                self.sent = n
                if self.a.interval > 0:
                    time.sleep(self.a.interval)
            self.done_sending.set()
            s.shutdown(socket.SHUT_WR)  # the server ends the connection once it answered all
        except OSError as e:
            self.error("send %d: %s" % (self.sent + 1, e))
        self.done_sending.set()

    def stop_requested(self):
        return os.path.exists(self.a.stop_file) or time.monotonic() > self.deadline

    def receiver(self, s):
        reader = s.makefile("rb")
        last = time.monotonic()
        while True:
            try:
                line = reader.readline()
            except socket.timeout:
                self.error("no answer for 20 s after %d (sent %d)" % (self.received, self.sent))
                return
            except OSError as e:
                self.error("receive after %d: %s" % (self.received, e))
                return
            if not line:
                if self.done_sending.is_set() and self.received >= self.sent:
                    return
                self.error("end of stream after %d answers (sent %d)" % (self.received, self.sent))
                return
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            last = now
            self.answer(line.split())
            self.slots.release()

    def answer(self, f):
        want = self.received + 1
        if f[0] == b"BAD":
            self.bad += 1
            self.error("the server got %s, wanted %s" % (f[1].decode(), f[3].decode()))
            self.received = want
            return
        n, host, pid = int(f[0]), f[1].decode(), int(f[2])
        if n != want:
            self.error("answer %d where %d was due" % (n, want))
        self.received = want
        with self.lock:
            if not self.hosts or self.hosts[-1][0] != host:
                self.hosts.append([host, n, 0])
            self.hosts[-1][2] += 1
            if pid not in self.pids:
                self.pids.append(pid)

    def status(self):
        host = self.hosts[-1][0] if self.hosts else "-"
        tmp = self.a.status + ".tmp"
        with open(tmp, "w") as f:
            f.write("received %d host %s errors %d\n" % (self.received, host, len(self.errors)))
        os.rename(tmp, self.a.status)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--status", required=True)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--interval", type=float, default=0.002)
    p.add_argument("--max-seconds", type=float, default=100)
    p.add_argument("--pad", type=int, default=200)
    a = p.parse_args()
    r = Run(a)
    r.deadline = time.monotonic() + a.max_seconds
    s = socket.create_connection((a.host, a.port), timeout=5)
    s.settimeout(20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threads = [threading.Thread(target=r.sender, args=(s,), daemon=True),
               threading.Thread(target=r.receiver, args=(s,), daemon=True)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        r.status()
        if r.dead.is_set():
            break
        time.sleep(0.1)
    r.status()
    s.close()
    print(json.dumps({"sent": r.sent, "received": r.received, "errors": r.errors, "bad": r.bad, "hosts": r.hosts,
                      "pids": r.pids, "max_gap_ms": round(r.max_gap * 1000, 1)}))
    return 1 if r.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
