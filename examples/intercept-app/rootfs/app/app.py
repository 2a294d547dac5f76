"""The intercept-app example: reads its greeting, counts its runs, optionally serves HTTP."""
import http.server
import os
import sys

with open("/etc/app/greeting.txt") as f:
    greeting = f.read().strip()
with open("/var/lib/app/visits.log", "a") as f:
    f.write("visit\n")
with open("/var/lib/app/visits.log") as f:
    visits = sum(1 for _ in f)
print(f"{greeting} (run {visits}, cwd {os.getcwd()}, APP_MODE={os.environ.get('APP_MODE')})", flush=True)

if len(sys.argv) > 1 and sys.argv[1] == "serve":
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"{greeting} from port {self.server.server_address[1]}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", 8080), Handler).serve_forever()
