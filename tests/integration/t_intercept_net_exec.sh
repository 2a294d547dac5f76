#!/usr/bin/env bash
# The interception library's net, exec, dlopen and syscall() hooks, with real programs run
# through `envrun run` in intercept mode: python's http.server bound on an inside port and
# fetched with curl on the outside one, UDP both ways, an AF_UNIX socket whose real path is
# longer than sun_path, children of an application that clears its environment, execvp
# through a redirected PATH directory, #! scripts with redirected interpreters, static
# binaries under exec_static deny|warn|allow, syscall(SYS_openat), io_uring_setup, dlopen,
# and the meter's counters in the instance's control page.
source "$(dirname "$0")/lib.sh"

BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
PROBE=$BUILD/tests/intercept/net/t_net_probe
PY=/usr/bin/python3
[[ -x $PROBE ]] || { fail "t_net_probe is built ($PROBE)"; exit 1; }
ISO='c["envrun"] = {"isolation": "intercept"}'

# A TCP/UDP port free on 127.0.0.1 right now.
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# ctl_counter ID INDEX: a meter counter of the instance's control page (intercept/control.h).
ctl_counter() {
  "$PY" - "$STATE/$1/intercept/intercept.ctl" "$2" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
print(struct.unpack_from("<Q", d, 80 + 8 * int(sys.argv[2]))[0])
EOF
}
K_EXECS=4 K_CONNECTS=5 K_ACCEPTS=6 K_BINDS=7 K_PORTS_MAPPED=8 K_BYTES_READ=9 K_BYTES_WRITTEN=10
K_CONN_OPEN=11 K_CONN_PEAK=12
counter_is() { [[ "$(ctl_counter "$1" "$2")" == "$3" ]]; }
assert_counter_ge() {  # DESC ID INDEX MIN
  local v; v=$(ctl_counter "$2" "$3")
  if [[ $v =~ ^[0-9]+$ ]] && ((v >= $4)); then pass "$1 ($v)"; else fail "$1" "counter $3 is [$v], want >= $4"; fi
}
# script_bundle NAME FILE_WITH_BASH [PYTHON_STATEMENT...]: a bundle running bash on a script file.
script_bundle() {
  local name=$1 file=$2; shift 2
  make_bundle "$name" "args(\"/bin/bash\", \"$file\")" "$ISO" "$@"
}

section "net: python http.server on an inside port, curl on the outside port"
PIN=$(free_port); POUT=$(free_port)
while [[ $POUT == "$PIN" ]]; do POUT=$(free_port); done
mkdir -p "$T/www"; echo "served through a port rule" > "$T/www/index.txt"
make_bundle web "args(\"$PY\", \"-u\", \"-m\", \"http.server\", \"$PIN\", \"--bind\", \"127.0.0.1\", \"--directory\", \"$T/www\")" "$ISO"
cat > "$B/intercept.yaml" <<EOF
version: 1
network:
  - inside: 127.0.0.1:$PIN
    outside: 127.0.0.1:$POUT
    protocol: tcp
EOF
cp "$B/intercept.yaml" "$T/web.yaml"
check "run -d the http.server bundle" er run -d -b "$B" web
fetch() { curl -sf --max-time 2 "http://127.0.0.1:$POUT/index.txt"; }
if wait_for 15 fetch; then pass "curl reaches the server on the outside port $POUT"; else fail "curl on the outside port" "$(ss -Htln 2>&1)"; fi
assert_eq "the file comes through the outside port" "served through a port rule" "$(fetch)"
assert_eq "nothing listens on the inside port $PIN" "" "$(ss -Htln "sport = :$PIN")"
assert_contains "the outside port $POUT is the listening one" "$(ss -Htln "sport = :$POUT")" "127.0.0.1:$POUT"

PBIN=$(free_port); PBOUT=$(free_port)
cat > "$T/client.py" <<EOF
import socket, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:$PIN/index.txt", timeout=5).read().decode().strip())
c = socket.create_connection(("127.0.0.1", $PIN), timeout=5)
print("peer", c.getpeername()[1])
c.close()
s = socket.socket()
try:
    s.bind(("127.0.0.1", $PIN))
except OSError as e:
    print("bind inside port:", e.strerror)  # the server holds $POUT
s = socket.socket()
s.bind(("127.0.0.1", $PBIN))
s.listen()
print("bound", s.getsockname()[1])
import subprocess
print("listens on", $PBOUT, ":$PBOUT " in subprocess.run(["ss", "-Htln"], capture_output=True, text=True).stdout)
EOF
make_bundle webc "args(\"$PY\", \"$T/client.py\")" "$ISO"
cp "$T/web.yaml" "$B/intercept.yaml"
cat >> "$B/intercept.yaml" <<EOF
  - {inside: "127.0.0.1:$PBIN", outside: "127.0.0.1:$PBOUT"}
EOF
capture er run -b "$B" webc
assert_line_match "python urllib inside fetches the inside port" "$OUT" '^served through a port rule$'
assert_line_match "getpeername shows the inside port" "$OUT" "^peer $PIN\$"
assert_line_match "a bind on the inside port meets the server on the outside port" "$OUT" '^bind inside port: Address already in use$'
assert_line_match "getsockname after bind shows the inside port" "$OUT" "^bound $PBIN\$"
assert_line_match "the socket listens on the outside port" "$OUT" "^listens on $PBOUT True\$"
[[ $RC -eq 0 ]] && pass "the client exits 0" || fail "the client exits 0" "$(last_cmd_details)"

assert_counter_ge "meter: accepted connections" web $K_ACCEPTS 3
assert_counter_ge "meter: binds" web $K_BINDS 1
assert_counter_ge "meter: ports mapped" web $K_PORTS_MAPPED 1
assert_counter_ge "meter: bytes written to sockets" web $K_BYTES_WRITTEN 100
assert_counter_ge "meter: bytes read from sockets" web $K_BYTES_READ 50
assert_counter_ge "meter: peak open connections" web $K_CONN_PEAK 1
if wait_for 10 counter_is web $K_CONN_OPEN 0; then pass "meter: no connection left open after the requests"
else fail "meter: no connection left open" "open: $(ctl_counter web $K_CONN_OPEN)"; fi
check "delete the server" er delete --force web

section "net: UDP both ways, and a udp rule leaves TCP alone"
UIN=$(free_port); UOUT=$(free_port); U2IN=$(free_port); U2OUT=$(free_port)
"$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(100)
    s.sendto(b"pong:" + d, a)' "$UOUT" >/dev/null 2>&1 </dev/null &
PIDS_TO_KILL+=($!)
disown
cat > "$T/udp.py" <<EOF
import socket, subprocess
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(0.25)
for _ in range(40):
    u.sendto(b"ping", ("127.0.0.1", $UIN))
    try:
        d, a = u.recvfrom(100)
        print(d.decode(), "from", a[1])
        break
    except socket.timeout:
        pass
t = socket.socket()
t.bind(("127.0.0.1", $UIN))
t.listen()
print("tcp", t.getsockname()[1])
out = subprocess.run(["ss", "-Htln"], capture_output=True, text=True).stdout
print("tcp really on the inside port:", ":$UIN " in out)
EOF
make_bundle udp "args(\"$PY\", \"$T/udp.py\")" "$ISO"
cat > "$B/intercept.yaml" <<EOF
version: 1
network:
  - {inside: $UIN, outside: $UOUT, protocol: udp}
  - {inside: "127.0.0.1:$U2IN", outside: "127.0.0.1:$U2OUT", protocol: udp}
EOF
capture er run -b "$B" udp
assert_line_match "the host's echo server on the outside port answers, seen from the inside port" "$OUT" "^pong:ping from $UIN\$"
assert_line_match "a TCP bind on the same port is not mapped" "$OUT" "^tcp $UIN\$"
assert_line_match "and listens on that very port" "$OUT" '^tcp really on the inside port: True$'
make_bundle udp2 "args(\"$PROBE\", \"udp\", \"$U2IN\")" "$ISO"
cp "$T/udp/intercept.yaml" "$B/"
capture er run -b "$B" udp2
assert_line_match "getsockname of a mapped UDP bind" "$OUT" "^server getsockname $U2IN\$"
assert_line_match "the kernel has the outside port" "$OUT" "^kernel port $U2OUT\$"
assert_line_match "recvmsg source maps back" "$OUT" "^client got pong from port $U2IN\$"

section "AF_UNIX: a socket path whose real path is longer than sun_path"
LONGDIR=$T/$(printf 'd%.0s' {1..60})/$(printf 'e%.0s' {1..60})
mkdir -p "$LONGDIR"
make_bundle ux "args(\"$PROBE\", \"unix\", \"/run/envrun-app/sock\")" "$ISO"
cat > "$B/intercept.yaml" <<EOF
version: 1
files:
  - {inside: /run/envrun-app, outside: "$LONGDIR", mode: override}
EOF
capture er run -b "$B" ux
assert_line_match "getsockname reports the inside path" "$OUT" '^getsockname /run/envrun-app/sock$'
assert_line_match "connect reaches it through the rule" "$OUT" '^round trip ping$'
[[ -S $LONGDIR/sock ]] && pass "the socket is in the outside dir (${#LONGDIR}+ bytes)" || fail "socket in the outside dir" "$(ls -la "$LONGDIR" 2>&1)"
[[ ! -e /run/envrun-app ]] && pass "nothing made on the host path" || fail "nothing made on the host path"

# A bundle with /app (programs, data) and /opt/sh (a shell) under rules, for the exec sections.
exec_bundle() {  # exec_bundle NAME SCRIPT_FILE [PYTHON_STATEMENT...]
  script_bundle "$@" 'c["process"]["env"] = ["PATH=/app/bin:/usr/bin:/bin"]'
  mkdir -p "$B/rootfs/app/bin" "$B/rootfs/shells"
  echo "hello from the bundle" > "$B/rootfs/app/hello.txt"
  cp /bin/echo "$B/rootfs/app/bin/hello-echo"
  cp /bin/dash "$B/rootfs/shells/mysh"
  printf '#!/opt/sh/mysh -e\necho "greet $0 $1 opts=$-"\n' > "$B/rootfs/app/bin/greet.sh"
  printf '#!/sbx/busybox sh\necho "bb $0"\n' > "$B/rootfs/app/bin/bb.sh"
  chmod 755 "$B/rootfs/app/bin/"*
  cat > "$B/intercept.yaml" <<'EOF'
version: 1
files:
  - {inside: /app, outside: "${ROOTFS}/app"}
  - {inside: /opt/sh, outside: "${ROOTFS}/shells", mode: readonly}
  - {inside: /sbx, outside: "${ROOTFS}/bin", mode: readonly}
EOF
}

section "exec: children of an application that clears its environment stay intercepted"
cat > "$T/noenv.sh" <<EOF
env -i /bin/cat /app/hello.txt
$PY -c 'import os; os.execve("/bin/cat", ["cat", "/app/hello.txt"], {})'
EOF
exec_bundle noenv "$T/noenv.sh"
capture er run -b "$B" noenv
assert_eq "env -i and os.execve(..., {}): both children read the bundle's file" \
  "$(printf 'hello from the bundle\nhello from the bundle')" "$OUT"

section "exec: PATH search through a redirected directory (execvp, execlp, posix_spawnp)"
cat > "$T/path.sh" <<EOF
env -i PATH=/app/bin hello-echo via-env
$PROBE execvp hello-echo via-execvp
$PROBE execlp hello-echo via-execlp
$PROBE spawnp hello-echo via-spawnp
$PROBE execvp no-such-tool
echo "missing rc=\$?"
$PY -c 'import os, struct; d = open(os.environ["ENVRUN_INTERCEPT_CTL"], "rb").read(); print("execs", struct.unpack_from("<Q", d, 80 + 8 * $K_EXECS)[0])'
EOF
exec_bundle search "$T/path.sh"
capture er run -b "$B" search
for how in env execvp execlp spawnp; do assert_line_match "$how finds /app/bin/hello-echo" "$OUT" "^via-$how\$"; done
assert_line_match "posix_spawnp's child exits 0" "$OUT" '^exit 0$'
assert_contains "a name found nowhere: ENOENT" "$ERR" "execvp: No such file or directory"
assert_line_match "and the probe fails" "$OUT" '^missing rc=1$'
execs=$(sed -n 's/^execs //p' <<<"$OUT")
if [[ $execs =~ ^[0-9]+$ ]] && ((execs >= 9)); then pass "the meter counted the execs ($execs)"
else fail "the meter counted the execs" "execs: [$execs] (want >= 9: 6 by bash, 3 by the probes)" "$(last_cmd_details)"; fi

section "exec: #! scripts with redirected interpreters"
cat > "$T/shebang.sh" <<EOF
/app/bin/greet.sh world
greet.sh via-path
/app/bin/bb.sh
EOF
exec_bundle shebang "$T/shebang.sh"
capture er run -b "$B" shebang
assert_line_match "the redirected interpreter runs the script with its option, \$0 is the inside path" \
  "$OUT" '^greet /app/bin/greet.sh world opts=[a-z]*e'
assert_line_match "found through PATH too" "$OUT" '^greet /app/bin/greet.sh via-path opts='
assert_line_match "a static interpreter gets the script's real path" "$OUT" "^bb $T/shebang/rootfs/app/bin/bb.sh\$"
assert_contains "and the static interpreter is warned about" "$ERR" "envrun-intercept: exec of static binary /sbx/busybox: not intercepted"

section "exec: static binaries under exec_static deny | warn | allow"
for policy in deny warn allow; do
  printf '/bin/busybox echo static-ran\necho "rc=$?"\n' > "$T/static-$policy.sh"
  script_bundle "st-$policy" "$T/static-$policy.sh"
  cat > "$B/intercept.yaml" <<EOF
version: 1
interceptors:
  - name: meter
  - name: redirect
    options: {exec_static: $policy}
  - name: net
  - name: barrier
EOF
  capture er run -b "$B" "st-$policy"
  case $policy in
    deny)
      assert_line_match "deny: the exec fails (126)" "$OUT" '^rc=126$'
      assert_not_contains "deny: busybox did not run" "$OUT" "static-ran"
      assert_contains "deny: EACCES" "$ERR" "Permission denied" ;;
    warn)
      assert_line_match "warn: busybox runs" "$OUT" '^static-ran$'
      assert_contains "warn: one line on stderr" "$ERR" "envrun-intercept: exec of static binary /bin/busybox: not intercepted" ;;
    allow)
      assert_line_match "allow: busybox runs" "$OUT" '^static-ran$'
      assert_not_contains "allow: silently" "$ERR" "envrun-intercept:" ;;
  esac
done

section "syscall(), io_uring_setup and dlopen"
cat > "$T/tiny.c" <<'EOF'
const char *tiny_hello(void) { return "tiny says hi"; }
EOF
cat > "$T/sys.sh" <<EOF
$PROBE syscall-cat /app/hello.txt
$PROBE io-uring
$PROBE dlopen /plugins/libtiny.so tiny_hello
$PY -c 'import ctypes, os; fd = ctypes.CDLL(None).syscall(257, -100, b"/app/hello.txt", 0); print("py-syscall", os.read(fd, 100).decode().strip())'
$PY -c 'import ctypes; f = ctypes.CDLL("/plugins/libtiny.so").tiny_hello; f.restype = ctypes.c_char_p; print("py-dlopen", f().decode())'
$PROBE dlopen $T/hidden/libtiny.so tiny_hello
echo "hidden rc=\$?"
$PY -c 'import ctypes, errno; c = ctypes.CDLL(None, use_errno=True); print("mkdir", c.syscall(83, b"/app/made-by-syscall", 0o755)); r = c.syscall(83, b"/sbx/nope", 0o755); print("mkdir-ro", r, errno.errorcode[ctypes.get_errno()])'
EOF
exec_bundle sys1 "$T/sys.sh"
mkdir -p "$B/rootfs/plugins" "$T/hidden"
gcc -shared -fPIC -o "$B/rootfs/plugins/libtiny.so" "$T/tiny.c" || fail "gcc builds libtiny.so"
cp "$B/rootfs/plugins/libtiny.so" "$T/hidden/"
cat >> "$B/intercept.yaml" <<EOF
  - {inside: /plugins, outside: "\${ROOTFS}/plugins"}
  - {inside: "$T/hidden", mode: hide}
EOF
capture er run -b "$B" sys1
assert_line_match "syscall(SYS_openat) is redirected" "$OUT" '^hello from the bundle$'
assert_line_match "io_uring_setup: ENOSYS while redirect is on" "$OUT" '^ENOSYS$'
assert_line_match "dlopen of a library under a rule" "$OUT" '^tiny says hi$'
assert_line_match "python ctypes syscall(257) is redirected" "$OUT" '^py-syscall hello from the bundle$'
assert_line_match "python ctypes.CDLL of a library under a rule" "$OUT" '^py-dlopen tiny says hi$'
assert_line_match "dlopen under a hide rule fails" "$OUT" '^hidden rc=1$'
assert_contains "with a loader message" "$ERR" "t_net_probe: dlopen:"
assert_line_match "syscall(SYS_mkdir) creates through the rule" "$OUT" '^mkdir 0$'
[[ -d $T/sys1/rootfs/app/made-by-syscall ]] && pass "in the outside dir" || fail "syscall(SYS_mkdir) in the outside dir"
assert_line_match "syscall(SYS_mkdir) under a readonly rule: EROFS" "$OUT" '^mkdir-ro -1 EROFS$'
check "the hidden library loads without the rule" "$PROBE" dlopen "$T/hidden/libtiny.so" tiny_hello


make_bundle sys2 "args(\"$PROBE\", \"io-uring\")" "$ISO"
cat > "$B/intercept.yaml" <<'EOF'
version: 1
interceptors:
  - {name: meter}
  - {name: redirect, enabled: false}
EOF
capture er run -b "$B" sys2
assert_not_contains "io_uring_setup passes through when redirect is off" "$OUT" "ENOSYS"

section "loader: a bare-name dlopen still searches the application's RUNPATH"
mkdir -p "$T/rpath/lib"
gcc -shared -fPIC -o "$T/rpath/lib/libtiny.so" "$T/tiny.c" || fail "gcc builds rpath/lib/libtiny.so"
cat > "$T/rpath/app.c" <<'EOC'
#include <dlfcn.h>
#include <stdio.h>
int main(void) {
  void *h = dlopen("libtiny.so", RTLD_NOW);  /* found through DT_RUNPATH $ORIGIN/lib */
  if (!h) { printf("dlopen: %s\n", dlerror()); return 1; }
  printf("%s\n", ((const char *(*)(void))dlsym(h, "tiny_hello"))());
  return 0;
}
EOC
gcc -o "$T/rpath/app" "$T/rpath/app.c" -Wl,-rpath,'$ORIGIN/lib' || fail "gcc builds rpath/app"
make_bundle rp "args(\"$T/rpath/app\")" "$ISO"
capture er run -b "$B" rp
assert_eq "dlopen(\"libtiny.so\") from an app with RUNPATH \$ORIGIN/lib" "tiny says hi" "$OUT"

section "meter: a vfork child closing fds before its exec leaves the parent's connections counted"
cat > "$T/vfork.py" <<'EOF'
import os, socket, struct, subprocess
ctl = os.environ["ENVRUN_INTERCEPT_CTL"]
def open_connections():
    return struct.unpack_from("<Q", open(ctl, "rb").read(), 80 + 8 * 11)[0]
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
c = socket.create_connection(srv.getsockname())
a, _ = srv.accept()
print("after accept", open_connections())
subprocess.run(["/bin/true"])  # vfork; the child closes every fd above 2 (close_fds)
print("after subprocess", open_connections())
a.close()
print("after close", open_connections())
EOF
make_bundle vf "args(\"$PY\", \"$T/vfork.py\")" "$ISO"
capture er run -b "$B" vf
assert_eq "open connections: 1, still 1 after the child, 0 after close" \
  "$(printf 'after accept 1\nafter subprocess 1\nafter close 0')" "$OUT"

section "without root: the port rule and the exec hooks for an ordinary user"
NIN=$(free_port); NOUT=$(free_port)
make_bundle nb "args(\"/bin/bash\", \"-c\", \"$PROBE udp $NIN; env -i /bin/cat /app/hello.txt\")" "$ISO"
mkdir -p "$B/rootfs/app"; echo "hello as nobody" > "$B/rootfs/app/hello.txt"
cat > "$B/intercept.yaml" <<EOF
version: 1
files:
  - {inside: /app, outside: "\${ROOTFS}/app", mode: readonly}
network:
  - {inside: "127.0.0.1:$NIN", outside: "127.0.0.1:$NOUT", protocol: udp}
EOF
chmod -R a+rX "$B"
NSTATE=$T/nobodystate; mkdir -p "$NSTATE"; chown 65534:65534 "$NSTATE"
capture timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp XDG_RUNTIME_DIR= \
  "$ENVRUN" --root "$NSTATE" run -b "$B" nb
assert_line_match "as nobody: getsockname shows the inside port" "$OUT" "^server getsockname $NIN\$"
assert_line_match "as nobody: the kernel has the outside port" "$OUT" "^kernel port $NOUT\$"
assert_line_match "as nobody: the reply comes from the inside port" "$OUT" "^client got pong from port $NIN\$"
assert_line_match "as nobody: env -i's child reads through the rule" "$OUT" '^hello as nobody$'
