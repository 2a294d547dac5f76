#!/usr/bin/python3
# redis_load.py: a steady write load on a redis-server that records which writes were
# acknowledged, and the check that every one of them is there (tests/integration/
# t_migrate_redis.sh). RESP over a plain socket (no client library).
#
#   redis_load.py load --host H --port P --status FILE --stop-file FILE --acked FILE
#                      [--batch 8] [--interval 0.002] [--max-seconds 40]
#     Write n = 1, 2, 3, ...: each write is "INCR counter" and "SET key:n n", sent
#     --batch writes at a time (pipelined) on one connection, --interval seconds apart. Write n is acknowledged when
#     both answers arrived (":<count>" and "+OK"); its number goes to the --acked file.
#     While the connection holds, each INCR answer must be the previous one plus 1 (a
#     write the server lost or applied twice shows as a jump). A reset, an end of stream,
#     or 15 s without an answer: the connection is counted as lost and a new one is made
#     (its INCR answers start a new run); writes not acknowledged are not retried.
#     --status FILE is rewritten every 0.1 s: "acked N reconnects R errors E".
#     At the stop file (or --max-seconds): one JSON line (acked, last, reconnects,
#     incr_jumps, errors, max_gap_ms); exit status 0 unless an INCR jumped or no write
#     was acknowledged.
#
#   redis_load.py verify --host H --port P --acked FILE
#     GET counter, and every acknowledged key:n (MGET, 1000 at a time) must hold n;
#     the counter must be at least the number of acknowledged writes. One JSON line
#     (checked, missing, wrong, counter); exit status 0 when all are there.
import argparse
import json
import os
import socket
import time


class Resp:
    def __init__(self, host, port, timeout):
        self.s = socket.create_connection((host, port), timeout=5)
        self.s.settimeout(timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.r = self.s.makefile("rb")

    @staticmethod
    def command(*args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        return out

    def send(self, data):
        self.s.sendall(data)

    def reply(self):
        line = self.r.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("end of stream")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.r.read(n + 2)
            if len(data) != n + 2:
                raise ConnectionError("end of stream")
            return data[:-2].decode()
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise ConnectionError("not a RESP reply: %r" % line[:40])

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def connect(a, deadline):
    while True:
        try:
            return Resp(a.host, a.port, 15)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def write_status(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text + "\n")
    os.rename(path + ".tmp", path)


def load(a):
    start = time.monotonic()
    deadline = start + a.max_seconds
    acked, errors, reconnects, jumps = [], [], 0, 0
    n, last_incr, max_gap, t_last, t_status = 0, None, 0.0, start, 0.0
    conn = connect(a, deadline + 15)
    while not os.path.exists(a.stop_file) and time.monotonic() < deadline:
        batch = list(range(n + 1, n + 1 + a.batch))
        n = batch[-1]
        try:
            conn.send(b"".join(Resp.command("INCR", "counter") + Resp.command("SET", "key:%d" % i, i) for i in batch))
            for i in batch:
                incr, ok = conn.reply(), conn.reply()
                if not isinstance(incr, int) or ok != "OK":
                    errors.append("write %d: answers %r %r" % (i, incr, ok))
                    continue
                if last_incr is not None and incr != last_incr + 1:
                    jumps += 1
                    errors.append("write %d: INCR answered %d after %d" % (i, incr, last_incr))
                last_incr = incr
                acked.append(i)
                now = time.monotonic()
                max_gap, t_last = max(max_gap, now - t_last), now
        except (OSError, ConnectionError) as e:
            errors.append("connection lost at write %d: %s" % (n, e))
            conn.close()
            reconnects += 1
            last_incr = None
            conn = connect(a, deadline + 15)
        if a.interval > 0:
            time.sleep(a.interval)
        if time.monotonic() - t_status > 0.1:
            write_status(a.status, "acked %d reconnects %d errors %d" % (len(acked), reconnects, len(errors)))
            t_status = time.monotonic()
    conn.close()
    write_status(a.status, "acked %d reconnects %d errors %d" % (len(acked), reconnects, len(errors)))
    with open(a.acked, "w") as f:
        f.write("".join("%d\n" % i for i in acked))
    print(json.dumps({"acked": len(acked), "last": n, "reconnects": reconnects, "incr_jumps": jumps,
                      "errors": errors[:20], "max_gap_ms": round(max_gap * 1000, 1)}))
    return 1 if jumps or not acked else 0


def verify(a):
    with open(a.acked) as f:
        acked = [int(x) for x in f.read().split()]
    conn = connect(a, time.monotonic() + 10)
    conn.send(Resp.command("GET", "counter"))
    counter = int(conn.reply() or 0)
    missing, wrong = [], []
    for k in range(0, len(acked), 1000):
        part = acked[k:k + 1000]
        conn.send(Resp.command("MGET", *["key:%d" % i for i in part]))
        for i, v in zip(part, conn.reply()):
            if v is None:
                missing.append(i)
            elif v != str(i):
                wrong.append(i)
    conn.close()
    good = not missing and not wrong and counter >= len(acked) and acked
    print(json.dumps({"checked": len(acked), "missing": len(missing), "first_missing": missing[:10],
                      "wrong": len(wrong), "counter": counter}))
    return 0 if good else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["load", "verify"])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--acked", required=True)
    p.add_argument("--status")
    p.add_argument("--stop-file")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-seconds", type=float, default=40)
    p.add_argument("--interval", type=float, default=0.002)
    a = p.parse_args()
    return load(a) if a.mode == "load" else verify(a)


if __name__ == "__main__":
    raise SystemExit(main())
