#!/usr/bin/env python3
"""A bearer-token front for a registry, for the pull tests.

token_proxy.py PORT UPSTREAM LOG [deny]

GET /v2/... without `Authorization: Bearer <token>` answers 401 with a
`WWW-Authenticate: Bearer realm=".../token",service="envrun-test"` challenge; with the
token the request is forwarded to UPSTREAM (http://host:port) and the answer relayed.
GET /token?service=..&scope=.. returns {"token": ...} (or 401 with `deny`). Every request
is logged to LOG as "METHOD PATH AUTH" lines.
"""
import http.server, json, sys, urllib.error, urllib.request
from urllib.parse import urlparse, parse_qs

PORT, UPSTREAM, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
DENY = len(sys.argv) > 4 and sys.argv[4] == "deny"
TOKEN = "tok-" + str(PORT)


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        auth = self.headers.get("Authorization", "-")
        with open(LOG, "a") as f:
            f.write(f"GET {self.path} {auth}\n")
        u = urlparse(self.path)
        if u.path == "/token":
            q = parse_qs(u.query)
            if DENY or q.get("service") != ["envrun-test"]:
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
            return self.send(200, json.dumps({"token": TOKEN, "scope": q.get("scope", [""])[0]}).encode())
        if auth != "Bearer " + TOKEN:
            ch = f'Bearer realm="http://127.0.0.1:{PORT}/token",service="envrun-test"'
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                             [("WWW-Authenticate", ch), ("Content-Type", "application/json")])
        req = urllib.request.Request(UPSTREAM + self.path, headers={"Accept": self.headers.get("Accept", "*/*")})
        try:
            r = urllib.request.urlopen(req, timeout=30)
            code, body, hdrs = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            code, body, hdrs = e.code, e.read(), e.headers
        keep = [(k, hdrs[k]) for k in ("Content-Type", "Docker-Content-Digest") if hdrs.get(k)]
        self.send(code, body, keep)


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
