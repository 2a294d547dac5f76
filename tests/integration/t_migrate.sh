#!/usr/bin/env bash
# envrun migrate / envrun serve between two "hosts": two network namespaces joined by a
# veth pair (10.231.7.1 <-> 10.231.7.2), each with its own state root; the agent runs in
# the second. The tests/ckpt counter program is migrated and must PASS on the target (no
# step lost: its counter and heap are checked by the program itself); a second migration
# of the same bundle sends only the changed files; and each failure leaves the app
# running on the source and nothing on the target: the agent killed mid-transfer, a
# wrong key, a corrupted frame (a proxy flips one byte), a full disk on the target.
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
PROGS=$BUILD/tests/ckpt
[[ -x $PROGS/ckpt_counter_static ]] || { fail "build products missing: $PROGS/ckpt_counter_static"; exit 1; }
command -v nsenter >/dev/null || { fail "nsenter is not installed (util-linux)"; exit 1; }

NS_A=envrun-mig-a-$$ NS_B=envrun-mig-b-$$
IP_A=10.231.7.1 IP_B=10.231.7.2 PORT=7070
AROOT=$T/hostB          # the agent's --root; its containers: $AROOT/state
two_hosts mig

in_a() { nsenter --net="/run/netns/$NS_A" "$@"; }
in_b() { nsenter --net="/run/netns/$NS_B" "$@"; }
# The target's own envrun (its state root), and migrate from host A.
eb() { timeout -k 5 "$ER_TIMEOUT" "$ENVRUN" --root "$AROOT/state" "$@"; }
migrate() { in_a timeout -k 5 120 "$ENVRUN" --root "$STATE" migrate "$@"; }

STATE_ROOTS+=("$AROOT/state" "$T/small/state")  # the agents' containers go too when the test ends

head -c 32 /dev/urandom >"$T/psk" && chmod 600 "$T/psk"
head -c 32 /dev/urandom >"$T/other.psk" && chmod 600 "$T/other.psk"

# start_agent ROOT PORT LOG [ARGS]: an agent in host B; sets AGENT_PID.
start_agent() {
  local root=$1 port=$2 log=$3; shift 3
  nsenter --net="/run/netns/$NS_B" "$ENVRUN" --cgroup-root "/$CG_PREFIX/host-b" --root "$root" serve --listen "$IP_B:$port" --psk-file "$T/psk" "$@" >"$log" 2>&1 </dev/null &
  AGENT_PID=$!
  PIDS_TO_KILL+=("$AGENT_PID")
  wait_for 10 grep -q "listening on $IP_B:$port" "$log" || fail "agent on port $port listens" "$(cat "$log")"
}

# counter_run ID: the counter program as container ID (bundle $T/counter), READY.
ckpt_bundle() {
  make_bundle counter "args('/ckpt_counter')" \
    'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL"] for k in ("bounding", "effective", "permitted")}'
  cp "$PROGS/ckpt_counter_static" "$B/rootfs/ckpt_counter"
}
counter_run() {
  er run -d -b "$T/counter" "$1" >"$T/$1.out" 2>&1 </dev/null || { fail "$1: run" "$(cat "$T/$1.out")"; return 1; }
  wait_for 20 grep -q READY "$T/$1.out" || { fail "$1: READY" "$(cat "$T/$1.out")"; return 1; }
}
# passes ID ENVRUN_FN: SIGTERM through that state root, then the program's verdict.
passes() {
  local id=$1 fn=$2
  $fn kill "$id" TERM >/dev/null 2>&1
  wait_for 20 grep -qE '^(PASS|FAIL)' "$T/$id.out"
  assert_line_match "$id: the program finds its state intact (PASS)" "$(cat "$T/$id.out")" '^PASS counter$' || cat "$T/$id.out"
  $fn delete -f "$id" >/dev/null 2>&1
}
# nothing_left ID ROOT: no container, bundle, image or staged file of ID on the target.
nothing_left() {
  local id=$1 root=$2
  check "$id: no container on the target" test ! -e "$root/state/$id"
  check "$id: no bundle on the target" test ! -e "$root/bundles/$id"
  assert_eq "$id: no image and nothing staged on the target" "" "$(find "$root/images" "$root/incoming" -mindepth 1 2>&1)"
}
source_runs() { assert_eq "$1: still running on the source" running "$(status "$1")"; }

section "usage: the key file, the address, the container"
start_agent "$AROOT" "$PORT" "$T/agent.log"
head -c 16 /dev/urandom >"$T/short.psk" && chmod 600 "$T/short.psk"
cp "$T/psk" "$T/open.psk" && chmod 644 "$T/open.psk"
expect_fail 2 "16 bytes: a key needs at least 32 random bytes" er migrate x --to "$IP_B:$PORT" --psk-file "$T/short.psk"
expect_fail 2 "mode 0644 lets group or others access the key (chmod 600 it)" er serve --listen 127.0.0.1:7999 --psk-file "$T/open.psk"
expect_fail 2 "host \"no-such-host.invalid\" not found" er migrate x --to "no-such-host.invalid:1" --psk-file "$T/psk"
expect_fail 2 "port must be 1..65535" er migrate x --to "localhost:0" --psk-file "$T/psk"
expect_fail 2 "\"host-b\": not an absolute path" er --cgroup-root host-b list
expect_fail 2 "\"..\" is not allowed" er --cgroup-root /a/../b list
expect_fail 4 "" er migrate nosuch --to "$IP_B:$PORT" --psk-file "$T/psk"
expect_fail 2 "--progress excludes --no-progress" er migrate x --to "$IP_B:$PORT" --psk-file "$T/psk" --progress --no-progress

section "stop-and-copy: the counter moves to host B and passes there"
ckpt_bundle
counter_run m1
capture migrate m1 --to "$IP_B:$PORT" --psk-file "$T/psk" --json
assert_eq "m1: migrate exits 0" 0 "$RC" || last_cmd_details
REPORT=$OUT
echo "       report: $REPORT"
FILES=$(json_get "d['bundle']['files']" <<<"$REPORT" 2>/dev/null)
SENT=$(json_get "d['bundle']['files_sent']" <<<"$REPORT" 2>/dev/null)
check "m1: the report counts the bundle's files ($FILES) and sends each content once ($SENT)" test "${SENT:-0}" -gt 0 -a "${SENT:-0}" -le "${FILES:-0}"
check "m1: the image (16 MiB heap and more) was sent" test "$(json_get "d['image_bytes']" <<<"$REPORT")" -gt $((16 << 20))
check "m1: downtime is reported and not above the total time" python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (0 < d['downtime_ms'] <= d['total_ms']))" "$REPORT"
check "m1: gone from the source" test -z "$(er list -q | grep -x m1)"
assert_eq "m1: running on the target" running "$(eb state m1 2>/dev/null | json_get "d['status']")"
check "m1: the target's bundle is in the agent's root" test -x "$AROOT/bundles/m1/rootfs/ckpt_counter"
M1_PID=$(eb state m1 2>/dev/null | json_get "d['pid']")
assert_contains "m1: its cgroup there is under the agent's --cgroup-root" "$(cat "/proc/$M1_PID/cgroup" 2>/dev/null)" ":/$CG_PREFIX/host-b/"
assert_contains "m1: the agent logged the commit" "$(cat "$T/agent.log")" "m1: committed: the container runs here"
assert_eq "m1: no image or staged file left on the target" "" "$(find "$AROOT/images" "$AROOT/incoming" -mindepth 1 2>&1)"
passes m1 eb

section "a second migration of the same bundle sends only what changed"
echo "changed $$" >"$T/counter/rootfs/etc/hostname-mig"
echo "motd $$" >>"$T/counter/rootfs/etc/motd"
counter_run m2
capture migrate m2 --to "$IP_B:$PORT" --psk-file "$T/psk" --json --progress
assert_eq "m2: migrate exits 0" 0 "$RC" || last_cmd_details
M2OUT=$OUT
# --progress: each step on standard error as it ends, in order; the JSON report alone on stdout.
STEPS=$(sed -nE 's/^envrun: migrate m2: [0-9.]+ s: //p' <<<"$ERR" | sed -E 's/^(pre-copy round [0-9]+|pre-copy ends|running on the target|bundle prefetched|final image stored there|restore asked|committed).*/\1/' | grep -vE '^final (manifest|bundle)' | tr '\n' '|')
assert_line_match "m2 --progress: the steps in order" "$STEPS" '^bundle prefetched\|(pre-copy round 0\|)?(pre-copy round [1-9][0-9]*\|)*(pre-copy ends\|)?final image stored there\|restore asked\|running on the target\|committed\|$'
check "m2 --progress: stdout holds the JSON report alone" python3 -c "import json,sys; json.loads(sys.argv[1])" "$M2OUT"
assert_eq "m2: two files sent (the new and the changed one)" 2 "$(json_get "d['bundle']['files_sent']" <<<"$M2OUT")"
assert_eq "m2: the changed file arrived" "motd $$" "$(tail -n 1 "$AROOT/bundles/m2/rootfs/etc/motd")"
passes m2 eb

section "two migrations at once to one agent: they take turns, both arrive"
counter_run m2a
counter_run m2b
migrate m2a --to "$IP_B:$PORT" --psk-file "$T/psk" >"$T/m2a.migrate" 2>&1 &
MA=$!
migrate m2b --to "$IP_B:$PORT" --psk-file "$T/psk" >"$T/m2b.migrate" 2>&1 &
MB=$!
wait "$MA"; RA=$?
wait "$MB"; RB=$?
assert_eq "m2a, m2b: both migrations exit 0" "0 0" "$RA $RB" || cat "$T/m2a.migrate" "$T/m2b.migrate"
assert_line_match "the agent made one wait for the other" "$(cat "$T/agent.log")" "m2[ab]: waits for the migration under way"
for id in m2a m2b; do
  assert_eq "$id: running on the target" running "$(eb state "$id" 2>/dev/null | json_get "d['status']")"
  passes "$id" eb
done

section "wrong key: refused before anything moves; the app never stops"
counter_run m3
PID3=$(state_pid m3)
capture migrate m3 --to "$IP_B:$PORT" --psk-file "$T/other.psk"
MERR=$ERR
check "m3: migrate fails" test "$RC" -ne 0
assert_contains "m3: ... with authentication failed" "$MERR" "authentication failed"
assert_eq "m3: the same process still runs on the source" "$PID3" "$(state_pid m3)"
wait_for 5 grep -q "authentication failed" "$T/agent.log"
assert_contains "m3: the agent logged the refusal" "$(cat "$T/agent.log")" "authentication failed"
nothing_left m3 "$AROOT"
passes m3 er

section "corrupted frame: one byte flipped in the image stream; rolled back on the source"
nsenter --net="/run/netns/$NS_B" python3 "$LIB_DIR/migrate_proxy.py" "$IP_B" 7071 "$IP_B" "$PORT" --flip-at $((10 << 20)) >"$T/proxy1.log" 2>&1 &
PIDS_TO_KILL+=($!)
wait_for 10 grep -q listening "$T/proxy1.log" || fail "proxy listens" "$(cat "$T/proxy1.log")"
counter_run m4
capture migrate m4 --to "$IP_B:7071" --psk-file "$T/psk" --no-precopy  # a final round rolled back (pre-copy: t_migrate_precopy)
MERR=$ERR
check "m4: migrate fails" test "$RC" -ne 0
assert_contains "m4: ... naming the corrupted frame" "$MERR" "corrupted frame"
assert_contains "m4: ... and the rollback" "$MERR" "rolled back: m4 runs on this host again"
source_runs m4
nothing_left m4 "$AROOT"
passes m4 er

section "the target agent killed mid-transfer: rolled back; a restarted agent sweeps its leftovers"
nsenter --net="/run/netns/$NS_B" python3 "$LIB_DIR/migrate_proxy.py" "$IP_B" 7072 "$IP_B" "$PORT" --rate $((8 << 20)) >"$T/proxy2.log" 2>&1 &
PIDS_TO_KILL+=($!)
wait_for 10 grep -q listening "$T/proxy2.log" || fail "proxy listens" "$(cat "$T/proxy2.log")"
counter_run m5
migrate m5 --to "$IP_B:7072" --psk-file "$T/psk" --no-precopy >"$T/m5.migrate" 2>&1 &
MIG=$!
partial_grows() { test "$(stat -c %s "$AROOT"/incoming/m5.*/envrun.img.partial 2>/dev/null || echo 0)" -gt $((1 << 20)); }
wait_for 30 partial_grows || fail "m5: the image transfer began" "$(cat "$T/m5.migrate")"
kill -9 "$AGENT_PID"
wait "$MIG"
RC=$?
check "m5: migrate fails" test "$RC" -ne 0
assert_contains "m5: ... the peer closed mid-transfer" "$(cat "$T/m5.migrate")" "peer closed mid-transfer"
assert_contains "m5: ... rolled back" "$(cat "$T/m5.migrate")" "rolled back: m5 runs on this host again"
source_runs m5
check "m5: no container or bundle on the target" test ! -e "$AROOT/state/m5" -a ! -e "$AROOT/bundles/m5"
start_agent "$AROOT" "$PORT" "$T/agent2.log"
assert_contains "m5: the restarted agent removed the killed one's staged files" "$(cat "$T/agent2.log")" "removed 1 leftovers"
nothing_left m5 "$AROOT"
passes m5 er

section "disk full on the target (an 8 MiB tmpfs root): rolled back, nothing left"
mkdir -p "$T/small" && mount -t tmpfs -o size=8m tmpfs "$T/small"
start_agent "$T/small" 7073 "$T/agent-small.log"
SMALL_PID=$AGENT_PID
counter_run m6
capture migrate m6 --to "$IP_B:7073" --psk-file "$T/psk" --no-precopy
MERR=$ERR
check "m6: migrate fails" test "$RC" -ne 0
assert_contains "m6: ... no space left on the target" "$MERR" "No space left on device"
assert_contains "m6: ... rolled back" "$MERR" "rolled back: m6 runs on this host again"
source_runs m6
nothing_left m6 "$T/small"
passes m6 er

section "redis-server with 100k keys moves to host B and answers there"
if REDIS=$(command -v redis-server) && command -v redis-cli >/dev/null; then
  # busybox rootfs + the host's /usr read-only (a bind mount: its source must exist on the target too)
  make_bundle redis "args('$REDIS', '--port', '6379', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no', '--dir', '/tmp')" \
    'mount("/usr", "bind", "/usr", ["rbind", "ro"])' \
    'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"] for k in ("bounding", "effective", "permitted")}'
  for d in lib lib64; do rm -rf "${B:?}/rootfs/$d"; ln -s "usr/$d" "$B/rootfs/$d"; done
  mkdir -p "$B/rootfs/tmp" "$B/rootfs/usr"
  awk 'BEGIN { for (i = 0; i < 100000; i++) printf "SET key:%d val:%d\r\n", i, i * 7 }' >"$B/rootfs/tmp/keys.txt"
  er run -d -b "$B" redis >"$T/redis.out" 2>&1 </dev/null || fail "redis: run" "$(cat "$T/redis.out")"
  wait_for 20 sh -c "'$ENVRUN' --root '$STATE' exec redis redis-cli ping 2>/dev/null | grep -q PONG" || fail "redis: answers PING" "$(cat "$T/redis.out")"
  capture er exec redis sh -c 'redis-cli --pipe < /tmp/keys.txt'
  assert_contains "redis: 100000 SETs" "$OUT" "errors: 0, replies: 100000"
  RUN_ID=$(er exec redis redis-cli info server </dev/null | tr -d '\r' | sed -n 's/^run_id://p')
  capture migrate redis --to "$IP_B:$PORT" --psk-file "$T/psk"
  assert_eq "redis: migrate exits 0" 0 "$RC" || last_cmd_details
  echo "$OUT" | sed 's/^/       /'
  assert_eq "redis: DBSIZE on the target" 100000 "$(eb exec redis redis-cli dbsize </dev/null)"
  assert_eq "redis: key:12345 read back on the target" "val:86415" "$(eb exec redis redis-cli get key:12345 </dev/null)"
  assert_eq "redis: the same server instance (run_id)" "$RUN_ID" "$(eb exec redis redis-cli info server </dev/null | tr -d '\r' | sed -n 's/^run_id://p')"
  assert_eq "redis: writes on the target" OK "$(eb exec redis redis-cli set after migrate </dev/null)"
  check "redis: gone from the source" test -z "$(er list -q | grep -x redis)"
  eb delete -f redis >/dev/null 2>&1
else
  echo "redis-server or redis-cli not installed: skipped"
fi

section "at most 16 connections at once: a 17th is closed at once, and the agent goes on"
# 17 peers that connect and say nothing (each would wait out the handshake's timeout).
in_a python3 - "$IP_B" 7073 "$T/agent-small.log" <<'PY' >"$T/conns.out" 2>&1
import socket, sys, time
ip, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
socks = [socket.create_connection((ip, port), timeout=5) for _ in range(16)]
deadline = time.monotonic() + 10
while open(log).read().count("connection from") < 16 and time.monotonic() < deadline:
    time.sleep(0.05)
extra = socket.create_connection((ip, port), timeout=5)
extra.settimeout(5)
closed = extra.recv(1) == b""
print("17th closed" if closed else "17th kept open")
for s in socks:
    s.close()
PY
assert_contains "the 17th connection is closed at once" "$(cat "$T/conns.out")" "17th closed"
assert_contains "... and the agent says why" "$(cat "$T/agent-small.log")" "refused: 16 connections are being served"
counter_run m7
capture migrate m7 --to "$IP_B:7073" --psk-file "$T/psk" --no-precopy
assert_contains "m7: a migration afterwards still reaches the agent (and fails for its full disk, as m6's)" "$ERR" "No space left on device"
passes m7 er

section "SIGTERM stops the agent cleanly"
kill -TERM "$SMALL_PID"
wait "$SMALL_PID"
assert_eq "the agent exits 0 on SIGTERM" 0 "$?"
assert_contains "it says why it stops" "$(cat "$T/agent-small.log")" "stopping (SIGTERM)"
