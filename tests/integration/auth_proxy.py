#!/usr/bin/env python3
"""A registry front with credentials and bearer tokens, for the push and login tests.

auth_proxy.py PORT UPSTREAM LOG USER:PASSWORD

GET /token?service=..&scope=.. answers {"token": ...} only to `Authorization: Basic` with
USER:PASSWORD (401 otherwise, anonymous included). Any /v2/ request (GET, HEAD, POST, PUT,
PATCH, DELETE) without `Authorization: Bearer <token>` answers 401 with a Bearer challenge;
with it, the request (body included) goes to UPSTREAM (http://host:port) and the answer is
relayed, its Location pointed back at this front. Each request is logged to LOG as
"METHOD PATH AUTH" (AUTH: "-", "Basic", or "Bearer"; no secrets).
"""
import base64, http.server, json, sys, urllib.error, urllib.request
from urllib.parse import urlparse, parse_qs

PORT, UPSTREAM, LOG, CREDS = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
TOKEN = "push-tok-" + str(PORT)
SELF = f"http://127.0.0.1:{PORT}"


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        auth = self.headers.get("Authorization", "")
        with open(LOG, "a") as f:
            f.write(f"{self.command} {self.path} {auth.split(' ')[0] or '-'}\n")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        u = urlparse(self.path)
        if u.path == "/token":
            good = "Basic " + base64.b64encode(CREDS.encode()).decode()
            if auth != good:
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
            q = parse_qs(u.query)
            return self.send(200, json.dumps({"token": TOKEN, "scope": q.get("scope", [""])[0]}).encode())
        if auth != "Bearer " + TOKEN:
            ch = f'Bearer realm="{SELF}/token",service="envrun-push-test"'
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                             [("WWW-Authenticate", ch), ("Content-Type", "application/json")])
        hdrs = {k: self.headers[k] for k in ("Accept", "Content-Type") if self.headers.get(k)}
        req = urllib.request.Request(UPSTREAM + self.path, data=body, headers=hdrs, method=self.command)
        try:
            r = urllib.request.urlopen(req, timeout=30)
            code, rbody, rh = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            code, rbody, rh = e.code, e.read(), e.headers
        keep = [(k, rh[k]) for k in ("Content-Type", "Docker-Content-Digest", "Range") if rh.get(k)]
        if rh.get("Location"):
            keep.append(("Location", rh["Location"].replace(UPSTREAM, SELF)))
        if self.command == "HEAD":
            keep.append(("Content-Length-Upstream", rh.get("Content-Length", "0")))
        self.send(code, rbody, keep)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
