#!/usr/bin/env python3
"""Load generator for envrun's management API: N client threads, each with its own
keep-alive connection over the unix socket, cycling through GET paths for D seconds.
Every answer must be 200 with a JSON body; anything else (or a transport error) counts
as an error. Prints one JSON summary line: requests, errors, requests/s, latency
percentiles (ms), and the first few error descriptions.

usage: loadgen.py --sock PATH --token-file F [--clients 50] [--seconds 30] PATH...
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiclient import Api  # noqa: E402


def worker(api, paths, deadline, offset, lat, errs, lock):
    i = offset
    mine, bad = [], []
    while time.monotonic() < deadline:
        path = paths[i % len(paths)]
        i += 1
        t0 = time.perf_counter()
        try:
            status, body = api.call("GET", path, keep=True)
            ok = status == 200 and not isinstance(body, str)
            why = "" if ok else "%s -> %s %s" % (path, status, str(body)[:200])
        except Exception as e:  # a transport error is an error too
            ok, why = False, "%s -> %s: %s" % (path, type(e).__name__, e)
        mine.append(time.perf_counter() - t0)
        if not ok:
            bad.append(why)
    with lock:
        lat.extend(mine)
        errs.extend(bad)


def pct(sorted_ms, p):
    if not sorted_ms:
        return 0.0
    k = min(len(sorted_ms) - 1, max(0, int(round(p / 100.0 * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[k]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sock", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("paths", nargs="+")
    a = p.parse_args()
    token = open(a.token_file).read().strip()
    lat, errs, lock = [], [], threading.Lock()
    start = time.monotonic()
    deadline = start + a.seconds
    threads = [threading.Thread(target=worker,
                                args=(Api(sock=a.sock, token=token, timeout=30), a.paths, deadline, n, lat, errs, lock))
               for n in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    ms = sorted(x * 1000.0 for x in lat)
    print(json.dumps({
        "clients": a.clients, "seconds": round(elapsed, 2), "requests": len(ms), "errors": len(errs),
        "rps": round(len(ms) / elapsed, 1) if elapsed > 0 else 0,
        "p50_ms": round(pct(ms, 50), 2), "p90_ms": round(pct(ms, 90), 2), "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(ms[-1], 2) if ms else 0, "first_errors": errs[:5]}))


if __name__ == "__main__":
    main()
