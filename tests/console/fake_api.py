#!/usr/bin/python3
"""A tiny in-memory stand-in for the management API, for developing the web console only.

NOT used by any test: tests/integration/t_console.sh runs the page against the real
`envrun serve`. This serves agent/console/* for / and /ui/*, and fakes /v1 well enough to
click through the page: tokens "admin" and "op" (roles admin and operator), bundles with
versions, instances that "run", upgrades, and a usage answer of made-up numbers.

usage: fake_api.py [PORT]   then open http://127.0.0.1:PORT/
"""
import json
import os
import random
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONSOLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../agent/console")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
TOKENS = {"admin": "admin", "op": "operator"}
BUNDLES = {}     # name -> {"versions": [{"version", "created", "source"}]}
INSTANCES = {}   # id -> {...}
NOW = lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, obj=None, raw=None, ctype="application/json"):
        body = raw if raw is not None else (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def err(self, status, msg):
        self.reply(status, {"error": msg})

    def do_GET(self): self.route("GET")
    def do_POST(self): self.route("POST")
    def do_PUT(self): self.route("PUT")
    def do_DELETE(self): self.route("DELETE")

    def route(self, method):
        path = self.path.split("?")[0]
        if method == "GET" and (path in ("/", "/ui", "/ui/") or path.startswith("/ui/")):
            name = "index.html" if path in ("/", "/ui", "/ui/") else path[4:]
            f = os.path.join(CONSOLE, name)
            if "/" in name or not os.path.isfile(f):
                return self.err(404, path + ": no such file")
            return self.reply(200, raw=open(f, "rb").read(), ctype=TYPES.get(os.path.splitext(f)[1], "text/plain"))
        auth = self.headers.get("Authorization", "")
        role = TOKENS.get(auth[7:]) if auth.startswith("Bearer ") else None
        if not role:
            return self.err(401, "a valid bearer token is required")
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}") if n else {}
        if method != "GET" and role != "admin" and "/bundles" in path:
            return self.err(403, f"role {role} may not {method} {path}")
        self.api(method, path, body)

    def api(self, method, path, body):
        if path == "/v1/bundles" and method == "GET":
            return self.reply(200, [self.summary(k) for k in sorted(BUNDLES)])
        if path == "/v1/bundles" and method == "POST":
            BUNDLES[body["name"]] = {"versions": [{"version": 1, "created": NOW(), "source": body.get("dir", "")}]}
            return self.reply(201, self.summary(body["name"]))
        m = re.fullmatch(r"/v1/bundles/([\w.-]+)(/versions)?", path)
        if m and m.group(1) in BUNDLES:
            b = BUNDLES[m.group(1)]
            if method == "POST" and m.group(2):
                b["versions"].append({"version": len(b["versions"]) + 1, "created": NOW(), "source": body.get("dir", "")})
                return self.reply(201, self.summary(m.group(1)))
            if method == "GET":
                return self.reply(200, dict(self.summary(m.group(1)), config='{"ociVersion": "1.0.2"}',
                                            intercept="", limits={}))
            if method == "DELETE":
                del BUNDLES[m.group(1)]
                return self.reply(200, {"deleted": True})
        if path == "/v1/instances" and method == "GET":
            for i in INSTANCES.values():
                if i["status"] == "running":
                    i["usage"]["cpu_s"] += random.random()
            return self.reply(200, list(INSTANCES.values()))
        if path == "/v1/instances" and method == "POST":
            b = BUNDLES.get(body.get("bundle"))
            if not b:
                return self.err(404, "no such bundle")
            v = body.get("version") or len(b["versions"])
            INSTANCES[body["id"]] = {"id": body["id"], "bundle": body["bundle"], "version": v, "status": "running",
                                     "pid": random.randint(1000, 9999), "created": NOW(),
                                     "usage": {"cpu_s": 0.0, "mem_bytes": 1 << 20}}
            return self.reply(201, INSTANCES[body["id"]])
        m = re.fullmatch(r"/v1/instances/([\w.-]+)(/\w+)?", path)
        if m and m.group(1) in INSTANCES:
            i, op = INSTANCES[m.group(1)], m.group(2)
            if op == "/stop":
                i.update(status="stopped", pid=0)
            elif op == "/start":
                i.update(status="running", pid=random.randint(1000, 9999))
            elif op == "/upgrade":
                time.sleep(1)
                old = i["version"]
                i.update(version=body["version"], pid=random.randint(1000, 9999))
                return self.reply(200, {"upgraded": True, "from_version": old, "to_version": body["version"],
                                        "mode_used": "restart", "message": "restarted on the new version"})
            elif op == "/checkpoint":
                pass
            elif method == "DELETE":
                del INSTANCES[m.group(1)]
                return self.reply(200, {"deleted": True})
            return self.reply(200, i)
        if path == "/v1/usage":
            q = dict(p.split("=", 1) for p in self.path.split("?", 1)[1].split("&"))
            return self.reply(200, {"bundles": [{"bundle": q.get("bundle"), "instances": [], "metrics": {
                "cpu_user_seconds": {"quantity": random.random() * 10, "unit": "s"},
                "memory_peak_bytes": {"quantity": random.randint(1, 64) << 20, "unit": "byte"}}}]})
        return self.err(404, f"{method} {path}: no such route")

    def summary(self, name):
        vs = BUNDLES[name]["versions"]
        return {"name": name, "version": vs[-1]["version"], "versions": vs, "labels": {}, "created": vs[0]["created"]}


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    print(f"fake API for console development on http://127.0.0.1:{port}/", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
