#!/usr/bin/env bash
# envrun migrate with pre-copy rounds (issue 7) between two "hosts": two network
# namespaces joined by a veth pair, the agent in the second (as t_migrate.sh). The
# counter and the dirtier (1 GiB rewritten at 50 MB/s, the issue's figure) move with pre-copy and must PASS
# on the target (every page checked by the program); the JSON report has at least two
# rounds, round 1 smaller than round 0, and the app's pause per round; --max-rounds 1 is
# one live round and the final one; the agent killed between pre-copy rounds leaves the
# app running on the source (it never stopped); a corrupted final round is rolled back
# on the source (the stopped tree it held is let go, and the program still PASSes).
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
PROGS=$BUILD/tests/ckpt
DIRTIER=$BUILD/tests/migrate/migrate_dirtier_static
[[ -x $PROGS/ckpt_counter_static && -x $DIRTIER ]] || { fail "build products missing: ckpt_counter_static, migrate_dirtier_static"; exit 1; }
command -v nsenter >/dev/null || { fail "nsenter is not installed (util-linux)"; exit 1; }

NS_A=envrun-pre-a-$$ NS_B=envrun-pre-b-$$
IP_A=10.231.9.1 IP_B=10.231.9.2 PORT=7080
AROOT=$T/hostB
two_hosts pre

eb() { timeout -k 5 "$ER_TIMEOUT" "$ENVRUN" --root "$AROOT/state" "$@"; }
migrate() { nsenter --net="/run/netns/$NS_A" timeout -k 5 180 "$ENVRUN" --root "$STATE" migrate "$@"; }
STATE_ROOTS+=("$AROOT/state")  # the agent's containers go too
head -c 32 /dev/urandom >"$T/psk" && chmod 600 "$T/psk"

# The agent receives migrations only (no management API, when this envrun has one).
NO_API=()
"$ENVRUN" serve --help 2>/dev/null | grep -q -- --no-api && NO_API=(--no-api)
# The agent keeps its images on a tmpfs (--image-dir), as a target host would to store them faster.
IMGDIR=/dev/shm/envrun-it-precopy.$$
CLEANUP_DIRS+=("$IMGDIR")
start_agent() {  # start_agent PORT LOG: the agent in host B; sets AGENT_PID
  local port=$1 log=$2
  nsenter --net="/run/netns/$NS_B" "$ENVRUN" --cgroup-root "/$CG_PREFIX/host-b" --root "$AROOT" serve --listen "$IP_B:$port" --psk-file "$T/psk" --image-dir "$IMGDIR" "${NO_API[@]}" >"$log" 2>&1 </dev/null &
  AGENT_PID=$!
  PIDS_TO_KILL+=("$AGENT_PID")
  wait_for 10 grep -q "listening on $IP_B:$port" "$log" || fail "agent on port $port listens" "$(cat "$log")"
}
proxy() {  # proxy PORT LOG ARGS...: migrate_proxy.py in host B in front of the agent
  local port=$1 log=$2; shift 2
  nsenter --net="/run/netns/$NS_B" python3 "$LIB_DIR/migrate_proxy.py" "$IP_B" "$port" "$IP_B" "$PORT" "$@" >"$log" 2>&1 &
  PIDS_TO_KILL+=($!)
  wait_for 10 grep -q listening "$log" || fail "proxy on $port listens" "$(cat "$log")"
}
caps='c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL"] for k in ("bounding", "effective", "permitted")}'
make_bundle counter "args('/ckpt_counter')" "$caps"
cp "$PROGS/ckpt_counter_static" "$B/rootfs/ckpt_counter"
make_bundle dirtier "args('/dirtier', '1024', '50')" "$caps"
cp "$DIRTIER" "$B/rootfs/dirtier"
make_bundle dirtier64 "args('/dirtier', '64', '20')" "$caps"
cp "$DIRTIER" "$B/rootfs/dirtier"

app_run() {  # app_run BUNDLE ID: run detached until READY
  er run -d -b "$T/$1" "$2" >"$T/$2.out" 2>&1 </dev/null || { fail "$2: run" "$(cat "$T/$2.out")"; return 1; }
  wait_for 60 grep -q READY "$T/$2.out" || { fail "$2: READY" "$(cat "$T/$2.out")"; return 1; }
}
passes() {  # passes ID NAME ENVRUN_FN
  local id=$1 name=$2 fn=$3
  $fn kill "$id" TERM >/dev/null 2>&1
  wait_for 60 grep -qE '^(PASS|FAIL)' "$T/$id.out"
  assert_line_match "$id: the program finds its state intact (PASS)" "$(cat "$T/$id.out")" "^PASS $name\$" || cat "$T/$id.out"
  $fn delete -f "$id" >/dev/null 2>&1
}
nothing_left() {
  check "$1: no container on the target" test ! -e "$AROOT/state/$1"
  assert_eq "$1: no image and nothing staged on the target" "" "$(find "$AROOT/incoming" "$IMGDIR/images" "$IMGDIR/incoming" -mindepth 1 2>&1)"
  check "$1: the agent kept its images in --image-dir only" test ! -e "$AROOT/images"
}
jq_() { json_get "$1" <<<"$REPORT" 2>/dev/null; }
report_checks() {  # report_checks ID: rounds >= 2, round 1 < round 0, pauses reported
  local id=$1
  check "$id: at least two memory rounds ($(jq_ "d['rounds']"))" test "$(jq_ "d['rounds']")" -ge 2
  check "$id: round 0 is the full image, live" python3 -c "import json,sys; r=json.loads(sys.argv[1])['round_log'][0]; sys.exit(not (r['kind'] == 'full' and r['live']))" "$REPORT"
  local b0 b1
  b0=$(jq_ "d['round_log'][0]['image_bytes']") b1=$(jq_ "d['round_log'][1]['image_bytes']")
  check "$id: round 1 ($b1 bytes) sends less than round 0 ($b0)" test "${b1:-0}" -gt 0 -a "${b1:-0}" -lt "${b0:-0}"
  check "$id: only the last round is the final one" python3 -c "import json,sys; l=json.loads(sys.argv[1])['round_log']; sys.exit(not (all(r['live'] for r in l[:-1]) and not l[-1]['live'] and l[-1]['kind'] == 'pages'))" "$REPORT"
  check "$id: the app's pause per round is measured" python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(not all(r['app_pause_ms'] > 0 for r in d['round_log']))" "$REPORT"
  check "$id: the stop rule is named" python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(d['stop_rule'] not in ('few-pages','budget','no-progress','max-rounds'))" "$REPORT"
  check "$id: downtime is reported and below the total" python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (0 < d['downtime_ms'] < d['total_ms']))" "$REPORT"
}

start_agent "$PORT" "$T/agent.log"

section "the counter moves with pre-copy and passes on the target"
app_run counter p1
capture migrate p1 --to "$IP_B:$PORT" --psk-file "$T/psk" --json
assert_eq "p1: migrate exits 0" 0 "$RC" || last_cmd_details
REPORT=$OUT
echo "       report: $REPORT"
report_checks p1
assert_eq "p1: running on the target" running "$(eb state p1 2>/dev/null | json_get "d['status']")"
assert_contains "p1: the agent received round 1 as pages" "$(cat "$T/agent.log")" "p1: image round 1 (pages) received"
assert_eq "p1: no image and nothing staged on the target" "" "$(find "$AROOT/incoming" "$IMGDIR/images" "$IMGDIR/incoming" -mindepth 1 2>&1)"
passes p1 counter eb

section "the dirtier (1 GiB, 50 MB/s) moves with pre-copy and every page passes"
app_run dirtier p2
capture migrate p2 --to "$IP_B:$PORT" --psk-file "$T/psk" --json
assert_eq "p2: migrate exits 0" 0 "$RC" || last_cmd_details
REPORT=$OUT
echo "       report: $REPORT"
report_checks p2
check "p2: round 0 holds the 1 GiB" test "$(jq_ "d['round_log'][0]['pages']")" -ge 262144
passes p2 dirtier eb
grep -E "^dirtier:" "$T/p2.out" | sed 's/^/       /'

section "--max-rounds 1: one live round, then the final one"
app_run counter p3
capture migrate p3 --to "$IP_B:$PORT" --psk-file "$T/psk" --json --max-rounds 1
assert_eq "p3: migrate exits 0" 0 "$RC" || last_cmd_details
REPORT=$OUT
assert_eq "p3: two rounds" 2 "$(jq_ "d['rounds']")"
assert_eq "p3: ended by the round cap" max-rounds "$(jq_ "d['stop_rule']")"
passes p3 counter eb

section "--no-precopy: stop-and-copy, one round"
app_run counter p4
capture migrate p4 --to "$IP_B:$PORT" --psk-file "$T/psk" --json --no-precopy
assert_eq "p4: migrate exits 0" 0 "$RC" || last_cmd_details
REPORT=$OUT
assert_eq "p4: one round" 1 "$(jq_ "d['rounds']")"
assert_eq "p4: no pre-copy" disabled "$(jq_ "d['stop_rule']")"
passes p4 counter eb

section "the agent killed between pre-copy rounds: the app never stopped and runs on"
proxy 7081 "$T/proxy1.log" --rate $((16 << 20))
app_run dirtier64 p5
PID5=$(state_pid p5)
migrate p5 --to "$IP_B:7081" --psk-file "$T/psk" >"$T/p5.migrate" 2>&1 &
MIG=$!
wait_for 60 grep -q "p5: image round 0 (full) received" "$T/agent.log" || fail "p5: round 0 arrived" "$(cat "$T/p5.migrate" "$T/agent.log")"
kill -9 "$AGENT_PID"
wait "$MIG"
RC=$?
check "p5: migrate fails" test "$RC" -ne 0
assert_contains "p5: ... in a pre-copy round, the app running on" "$(cat "$T/p5.migrate")" "(p5 runs on)"
assert_contains "p5: ... naming the round" "$(cat "$T/p5.migrate")" "pre-copy round "
assert_eq "p5: the same process runs on the source" "$PID5" "$(state_pid p5)"
start_agent "$PORT" "$T/agent2.log"
nothing_left p5
passes p5 dirtier er

section "the final round corrupted: rolled back on the source, the held tree let go"
proxy 7082 "$T/proxy2.log" --flip-in-frame 11:2  # the second image-begin: round 1, the final one
app_run dirtier64 p6
capture migrate p6 --to "$IP_B:7082" --psk-file "$T/psk" --max-rounds 1
MERR=$ERR
check "p6: migrate fails" test "$RC" -ne 0
assert_contains "p6: ... naming the corrupted frame" "$MERR" "corrupted frame"
assert_contains "p6: ... rolled back" "$MERR" "rolled back: p6 runs on this host again"
assert_eq "p6: running on the source" running "$(status p6)"
nothing_left p6
check "p6: no rounds left in the work directory" test -z "$(ls -d /var/tmp/envrun-migrate-p6.* 2>/dev/null)"
passes p6 dirtier er
