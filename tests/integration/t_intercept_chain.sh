#!/usr/bin/env bash
# The interceptor chain's order is real (intercept/chain.hpp): the same program under
# meter -> redirect and under redirect -> meter gives different kDenied / kOpenFailures
# counts (a meter after redirect never sees the calls redirect refused); disabling meter
# live stops counting; the barrier word blocks hooked calls until cleared (+ FUTEX_WAKE);
# a chain without redirect passes paths through. DBs from `envrun intercept compile`,
# programs under LD_PRELOAD with a control page written here (offsets: intercept/control.h).
source "$(dirname "$0")/lib.sh"

BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
LIB=${INTERCEPT_LIB:-$BUILD/intercept/libenvrun-intercept.so}
[[ -e $LIB ]] || { fail "build product missing: $LIB (build envrun-intercept)"; exit 1; }
PY=/usr/bin/python3
I=/envrun-chain-$$         # inside paths that do not exist on the host
K_OPENS=0 K_OPEN_FAILURES=1 K_REDIRECTED=2 K_DENIED=3 K_BINDS=7

mkdir -p "$T/app/hidden" "$T/hostonly"
echo "app file" > "$T/app/f"
echo "secret" > "$T/app/hidden/x"
echo "host secret" > "$T/hostonly/s"

# compile NAME CHAIN...: $T/NAME.db with these interceptors in this order.
compile() {
  local name=$1 n; shift
  {
    echo "version: 1"
    echo "files:"
    echo "  - {inside: $I/app, outside: $T/app}"
    echo "  - {inside: $I/app/hidden, mode: hide}"
    echo "  - {inside: $T/hostonly, mode: hide}"
    echo "interceptors:"
    for n in "$@"; do echo "  - name: $n"; done
  } > "$T/$name.yaml"
  check "compile $name ($*)" "$ENVRUN" intercept compile "$T/$name.yaml" -o "$T/$name.db"
}
# ctl_write FILE MASK: a fresh control page (one 4 KiB page, larger than the struct)
# with this enabled mask.
ctl_write() {
  $PY -c 'import struct, sys
head = struct.pack("<8sII", b"ENVRCTL\0", 1, 4096) + struct.pack("<QQ", int(sys.argv[1]), 0)
sys.stdout.buffer.write(head + bytes(4096 - len(head)))' "$2" > "$1"
}
# ctl_counter FILE INDEX
ctl_counter() {
  $PY -c 'import struct, sys
print(struct.unpack_from("<Q", open(sys.argv[1], "rb").read(), 80 + 8 * int(sys.argv[2]))[0])' "$1" "$2"
}
# ctl_set FILE OFFSET VALUE [wake]: store a 64-bit word in the live page (FUTEX_WAKE on it).
ctl_set() {
  $PY - "$@" <<'PY'
import ctypes, mmap, struct, sys
path, off, val = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    struct.pack_into("<Q", m, off, val)
    if len(sys.argv) > 4:
        word = ctypes.c_uint32.from_buffer(m, off)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall(202, ctypes.c_void_p(ctypes.addressof(word)), 1, 0x7fffffff, None, None, 0)  # FUTEX_WAKE
        del word
    m.close()
PY
}
# under DB CTL CMD...: CMD with the library, the DB and the control page.
under() { local db=$1 ctl=$2; shift 2; env ENVRUN_INTERCEPT_DB="$db" ENVRUN_INTERCEPT_CTL="$ctl" LD_PRELOAD="$LIB" "$@"; }

# ---------------------------------------------------------------------------
section "order: meter before redirect sees refused calls, meter after it does not"
compile before meter redirect barrier
compile after redirect meter barrier
for o in before after; do
  ctl_write "$T/$o.ctl" 7
  under "$T/$o.db" "$T/$o.ctl" cat "$I/app/f" > "$T/$o.out" 2>&1
  under "$T/$o.db" "$T/$o.ctl" cat "$I/app/hidden/x" >> "$T/$o.out" 2>&1
done
assert_eq "both orders redirect the same way" "$(cat "$T/before.out")" "$(cat "$T/after.out")"
assert_contains "the hidden file is refused" "$(cat "$T/before.out")" "No such file"
assert_eq "meter -> redirect: kDenied counts the hidden open" 1 "$(ctl_counter "$T/before.ctl" $K_DENIED)"
assert_eq "redirect -> meter: kDenied stays 0" 0 "$(ctl_counter "$T/after.ctl" $K_DENIED)"
fb=$(ctl_counter "$T/before.ctl" $K_OPEN_FAILURES); fa=$(ctl_counter "$T/after.ctl" $K_OPEN_FAILURES)
assert_eq "meter -> redirect: one more open failure (the refused one)" "$((fa + 1))" "$fb"
assert_eq "both orders: the same successful opens" \
  "$(ctl_counter "$T/after.ctl" $K_OPENS)" "$(ctl_counter "$T/before.ctl" $K_OPENS)"
rb=$(ctl_counter "$T/before.ctl" $K_REDIRECTED)
assert_eq "both orders: the same redirected calls (>= 1)" "$rb $rb" \
  "$(ctl_counter "$T/after.ctl" $K_REDIRECTED) $((rb >= 1 ? rb : -1))"

# The socket calls run the same chain: an AF_UNIX bind under a hide rule, then one under
# the override rule (the socket file lands in the outside directory).
for o in before after; do
  ctl_write "$T/$o-net.ctl" 7
  under "$T/$o.db" "$T/$o-net.ctl" $PY -c 'import socket, sys
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(p); print("bound")
    except OSError as e:
        print(e.strerror)
    s.close()' "$I/app/hidden/sock" "$I/app/sock-$o" > "$T/$o-net.out" 2>&1
done
assert_eq "bind: refused under hide, bound under override (both orders)" \
  "No such file or directory bound|No such file or directory bound" "$(echo $(cat "$T/before-net.out"))|$(echo $(cat "$T/after-net.out"))"
assert_eq "bind: the socket files are in the outside directory" "sock-after sock-before" "$(cd "$T/app" && echo sock-*)"
assert_eq "meter -> redirect: the refused bind is denied, the other counted" "1 1" \
  "$(ctl_counter "$T/before-net.ctl" $K_DENIED) $(ctl_counter "$T/before-net.ctl" $K_BINDS)"
assert_eq "redirect -> meter: no denied call, the bind counted" "0 1" \
  "$(ctl_counter "$T/after-net.ctl" $K_DENIED) $(ctl_counter "$T/after-net.ctl" $K_BINDS)"

# ---------------------------------------------------------------------------
section "disabling meter live stops counting"
# The program opens the file once, says ready, polls for a flag file (stat: counts
# nothing), then opens the file 3 times.
live_run() {  # live_run CTL MASK_AFTER_READY: prints kOpens at ready and at the end
  local ctl=$1 mask=$2 pid
  rm -f "$T/flag" "$T/ready"
  under "$T/before.db" "$ctl" $PY -c 'import os, sys, time
open(sys.argv[1]).read()
open(sys.argv[3], "w").close()
while not os.path.exists(sys.argv[2]): time.sleep(0.02)
for _ in range(3): open(sys.argv[1]).read()' "$I/app/f" "$T/flag" "$T/ready" &
  pid=$!; PIDS_TO_KILL+=("$pid")
  wait_for 20 test -e "$T/ready" || { fail "live run: the program never got ready"; return; }
  $PY -c 'import mmap, struct, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    struct.pack_into("<Q", m, 16, int(sys.argv[2]))
    struct.pack_into("<Q", m, 24, struct.unpack_from("<Q", m, 24)[0] + 1)' "$ctl" "$mask"
  local c1; c1=$(ctl_counter "$ctl" $K_OPENS)
  touch "$T/flag"
  wait "$pid"
  echo "$c1 $(ctl_counter "$ctl" $K_OPENS)"
}
ctl_write "$T/live.ctl" 7
read -r c1 c2 <<<"$(live_run "$T/live.ctl" 7)"
if [[ $c1 =~ ^[0-9]+$ && $c2 =~ ^[0-9]+$ ]] && ((c2 >= c1 + 3)); then pass "meter kept on: the 3 opens counted ($c1 -> $c2)"
else fail "meter kept on: the 3 opens counted" "kOpens $c1 -> $c2"; fi
ctl_write "$T/live.ctl" 7
read -r c1 c2 <<<"$(live_run "$T/live.ctl" 6)"   # bit 0 (meter) off
if [[ $c1 =~ ^[1-9][0-9]*$ ]] && [[ $c1 == "$c2" ]]; then pass "meter disabled live: nothing counted after ($c1 -> $c2)"
else fail "meter disabled live: nothing counted after" "kOpens $c1 -> $c2"; fi

# ---------------------------------------------------------------------------
section "the barrier blocks hooked calls while a checkpoint is in progress"
ctl_write "$T/bar.ctl" 7
ctl_set "$T/bar.ctl" 32 1
under "$T/before.db" "$T/bar.ctl" cat "$I/app/f" > "$T/bar.out" 2>&1 &
bpid=$!; PIDS_TO_KILL+=("$bpid")
sleep 1
if pid_alive "$bpid" && [[ ! -s $T/bar.out ]]; then pass "with the flag set, cat is held (no output yet)"
else fail "with the flag set, cat is held" "alive: $(pid_alive "$bpid" && echo yes || echo no), out: [$(cat "$T/bar.out")]"; fi
ctl_set "$T/bar.ctl" 32 0 wake
gone() { ! pid_alive "$1"; }
if wait_for 10 gone "$bpid"; then pass "cleared + FUTEX_WAKE: cat proceeds"
else fail "cleared + FUTEX_WAKE: cat proceeds" "still running"; fi
wait "$bpid"
assert_eq "and reads the redirected file" "app file" "$(cat "$T/bar.out")"
ctl_write "$T/bar.ctl" 3   # barrier disabled: the flag is ignored
ctl_set "$T/bar.ctl" 32 1
capture timeout 20 env ENVRUN_INTERCEPT_DB="$T/before.db" ENVRUN_INTERCEPT_CTL="$T/bar.ctl" LD_PRELOAD="$LIB" cat "$I/app/f"
assert_eq "barrier disabled: the flag does not hold calls" "0 app file" "$RC $OUT"

# ---------------------------------------------------------------------------
section "a chain without redirect passes paths through"
compile noredir meter barrier
ctl_write "$T/nr.ctl" 3
capture env ENVRUN_INTERCEPT_DB="$T/noredir.db" ENVRUN_INTERCEPT_CTL="$T/nr.ctl" LD_PRELOAD="$LIB" cat "$T/hostonly/s"
assert_eq "a hide rule's host path is read as is" "host secret" "$OUT"
capture env ENVRUN_INTERCEPT_DB="$T/noredir.db" ENVRUN_INTERCEPT_CTL="$T/nr.ctl" LD_PRELOAD="$LIB" cat "$I/app/f"
assert_contains "an inside path is not mapped" "$ERR" "No such file"
assert_eq "no redirect: nothing redirected or denied, opens still metered" "0 0 yes" \
  "$(ctl_counter "$T/nr.ctl" $K_REDIRECTED) $(ctl_counter "$T/nr.ctl" $K_DENIED) $( (($(ctl_counter "$T/nr.ctl" $K_OPENS) > 0)) && echo yes)"
capture env ENVRUN_INTERCEPT_DB="$T/before.db" ENVRUN_INTERCEPT_CTL="$T/nr.ctl" LD_PRELOAD="$LIB" cat "$T/hostonly/s"
assert_contains "control: with redirect the same host path is hidden" "$ERR" "No such file"
