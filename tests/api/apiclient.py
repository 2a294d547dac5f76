#!/usr/bin/env python3
"""A small client of envrun's management API (envrun-serve(8)) for the tests.

As a module: Api(sock=PATH | https=(host, port, cafile), token=...).call(method, path, body)
returns (status, parsed JSON or text). As a command:
  apiclient.py --sock PATH [--token T | --token-file F] METHOD PATH [BODY] [--raw-body-size N]
prints the status on the first line and the body after it.
"""
import argparse
import http.client
import json
import socket
import ssl
import sys


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Api:
    def __init__(self, sock=None, https=None, token=None, timeout=60):
        self.sock, self.https, self.token, self.timeout = sock, https, token, timeout
        self.conn = None

    def _connect(self):
        if self.sock:
            return UnixConnection(self.sock, self.timeout)
        host, port, cafile = self.https
        ctx = ssl.create_default_context(cafile=cafile)
        return http.client.HTTPSConnection(host, port, context=ctx, timeout=self.timeout)

    def call(self, method, path, body=None, token=None, raw=None, keep=False, headers=None):
        """One request; a new connection unless keep (then one is reused)."""
        conn = self.conn if keep and self.conn else self._connect()
        h = dict(headers or {})
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            text = r.read().decode(errors="replace")
        except Exception:
            conn.close()
            self.conn = None
            raise
        if keep:
            self.conn = conn
        else:
            conn.close()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sock")
    p.add_argument("--https", help="HOST:PORT")
    p.add_argument("--cacert")
    p.add_argument("--token")
    p.add_argument("--token-file")
    p.add_argument("--raw-body-size", type=int)
    p.add_argument("--raw-body")
    p.add_argument("method")
    p.add_argument("path")
    p.add_argument("body", nargs="?")
    a = p.parse_args()
    tok = a.token
    if a.token_file:
        tok = open(a.token_file).read().strip()
    https = None
    if a.https:
        host, port = a.https.rsplit(":", 1)
        https = (host, int(port), a.cacert)
    api = Api(sock=a.sock, https=https, token=tok)
    raw = None
    if a.raw_body_size is not None:
        raw = b"{" + b" " * max(0, a.raw_body_size - 2) + b"}"
    elif a.raw_body is not None:
        raw = a.raw_body.encode()
    body = json.loads(a.body) if a.body else None
    status, out = api.call(a.method, a.path, body=body, raw=raw)
    print(status)
    print(json.dumps(out) if not isinstance(out, str) else out)


if __name__ == "__main__":
    main()
