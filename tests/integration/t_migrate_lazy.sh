#!/usr/bin/env bash
# envrun migrate --lazy (post-copy) between two "hosts" (network namespaces joined by a
# veth pair; the agent in the second): the image goes without its pages sections' pages,
# the app runs on the target at once and its private anonymous memory is fetched from the
# source after (faults first, the rest in the background). The counter program and the
# dirtier (256 MiB rewritten at 10 MB/s) must PASS on the target (every page checked by
# the program); the report names the time until every page was in and the ranges and
# bytes fetched. The agent killed while pages are still being fetched (the page server
# slowed by ENVRUN_LAZY_TEST_DELAY_US): the target's page server cannot get a page and
# kills the tree there; the source restores the app from its local copy (rollback) and it
# PASSes there; nothing runs on the target, and the restarted agent deletes the
# container it had restored but never had committed.
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
PROGS=$BUILD/tests/ckpt
DIRTIER=$BUILD/tests/migrate/migrate_dirtier_static
[[ -x $PROGS/ckpt_counter_static && -x $DIRTIER ]] || { fail "build products missing: ckpt_counter_static, migrate_dirtier_static"; exit 1; }
command -v nsenter >/dev/null || { fail "nsenter is not installed (util-linux)"; exit 1; }

NS_A=envrun-lzy-a-$$ NS_B=envrun-lzy-b-$$
IP_A=10.231.11.1 IP_B=10.231.11.2 PORT=7090
AROOT=$T/hostB
two_hosts lzy

eb() { timeout -k 5 "$ER_TIMEOUT" "$ENVRUN" --root "$AROOT/state" "$@"; }
migrate() { nsenter --net="/run/netns/$NS_A" timeout -k 5 180 "$ENVRUN" --root "$STATE" migrate "$@"; }
STATE_ROOTS+=("$AROOT/state")  # the agent's containers go too
head -c 32 /dev/urandom >"$T/psk" && chmod 600 "$T/psk"

NO_API=()
"$ENVRUN" serve --help 2>/dev/null | grep -q -- --no-api && NO_API=(--no-api)
start_agent() {  # start_agent LOG [ENV=VALUE...]: the agent in host B; sets AGENT_PID
  local log=$1; shift
  env "$@" nsenter --net="/run/netns/$NS_B" "$ENVRUN" --cgroup-root "/$CG_PREFIX/host-b" --root "$AROOT" serve --listen "$IP_B:$PORT" --psk-file "$T/psk" "${NO_API[@]}" >"$log" 2>&1 </dev/null &
  AGENT_PID=$!
  PIDS_TO_KILL+=("$AGENT_PID")
  wait_for 60 grep -q "listening on $IP_B:$PORT" "$log" || fail "agent listens" "$(cat "$log"; ps -ef | grep -v grep | grep -E "envrun|dirtier")"
}
caps='c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL"] for k in ("bounding", "effective", "permitted")}'
make_bundle counter "args('/ckpt_counter')" "$caps"
cp "$PROGS/ckpt_counter_static" "$B/rootfs/ckpt_counter"
make_bundle dirtier "args('/dirtier', '256', '10')" "$caps"
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
jq_() { json_get "$1" <<<"$REPORT" 2>/dev/null; }
# report_checks ID MIN_BYTES: a post-copy report with at least MIN_BYTES fetched after Running.
report_checks() {
  local id=$1 min=$2
  check "$id: the report is a post-copy one with no pre-copy round" test "$(jq_ "'postcopy' in d and d['rounds']")" = 1
  check "$id: pages were fetched after the app ran there (>= $min bytes)" test "$(jq_ "d['postcopy']['bytes_fetched']")" -ge "$min"
  check "$id: ranges fetched = for faults + in the background" \
    test "$(jq_ "d['postcopy']['ranges_fetched'] - d['postcopy']['fault_ranges'] - d['postcopy']['background_ranges']")" -ge 0
  check "$id: the image sent leaves the pages out (image bytes < bytes fetched)" \
    test "$(jq_ "int(d['image_bytes'] < d['postcopy']['bytes_fetched'])")" = 1
  check "$id: downtime <= time until every page was in <= total" \
    test "$(jq_ "int(0 < d['downtime_ms'] <= d['postcopy']['all_in_ms'] <= d['total_ms'] + 1)")" = 1
  echo "       downtime $(jq_ "d['downtime_ms']") ms, all pages in $(jq_ "d['postcopy']['all_in_ms']") ms," \
    "$(jq_ "d['postcopy']['ranges_fetched']") ranges ($(jq_ "d['postcopy']['fault_ranges']") for faults)," \
    "$(jq_ "d['postcopy']['bytes_fetched']") bytes fetched, image $(jq_ "d['image_bytes']") bytes"
}

section "usage"
expect_fail 2 "" er migrate x --lazy --bogus --to "$IP_B:$PORT" --psk-file "$T/psk"
check "restore --help names --page-fetch-fd" sh -c "'$ENVRUN' restore --help | grep -q -- --page-fetch-fd"
expect_fail 2 "--page-fetch-fd needs --lazy-pages" er restore --image-path "$T" --page-fetch-fd 0

start_agent "$T/agent.log"

section "the counter moves with --lazy and passes on the target"
app_run counter l1
capture migrate l1 --to "$IP_B:$PORT" --psk-file "$T/psk" --lazy --json
assert_eq "l1: migrate exits 0" 0 "$RC" || last_cmd_details
REPORT=$OUT
echo "       report: $REPORT"
report_checks l1 $((16 << 20))
assert_eq "l1: running on the target" running "$(eb state l1 2>/dev/null | json_get "d['status']")"
check "l1: gone from the source" test -z "$(er list -q | grep -x l1)"
assert_contains "l1: the agent logged every page in" "$(cat "$T/agent.log")" "l1: post-copy: every page in"
assert_eq "l1: no image and nothing staged on the target" "" "$(find "$AROOT/images" "$AROOT/incoming" -mindepth 1 2>&1)"
passes l1 counter eb

section "the dirtier (256 MiB, 10 MB/s) moves with --lazy and every page passes"
app_run dirtier l2
capture migrate l2 --to "$IP_B:$PORT" --psk-file "$T/psk" --lazy --json
assert_eq "l2: migrate exits 0" 0 "$RC" || last_cmd_details
REPORT=$OUT
echo "       report: $REPORT"
report_checks l2 $((256 << 20))
# How many ranges were in flight at once is reported, not asserted: it depends on who asks
# (the restore and a fault ask one at a time, the background 8 ahead); CI saw 1 and 9.
echo "       l2: up to $(jq_ "d['postcopy']['max_in_flight']") ranges in flight at once"
assert_eq "l2: running on the target" running "$(eb state l2 2>/dev/null | json_get "d['status']")"
passes l2 dirtier eb
grep -E "^dirtier:" "$T/l2.out" | sed 's/^/       /'

section "the agent killed while pages are fetched: the tree dies there, rolled back here"
kill -9 "$AGENT_PID" 2>/dev/null; wait "$AGENT_PID" 2>/dev/null
start_agent "$T/agent-slow.log" ENVRUN_LAZY_TEST_DELAY_US=20000
app_run dirtier l3
migrate l3 --to "$IP_B:$PORT" --psk-file "$T/psk" --lazy >"$T/l3.migrate" 2>&1 &
MIG=$!
wait_for 90 grep -q "l3: restored as pid" "$T/agent-slow.log" || fail "l3: the target ran the app" "$(cat "$T/agent-slow.log" "$T/l3.migrate")"
TPID=$(eb state l3 2>/dev/null | json_get "d['pid']")
sleep 1
kill -9 "$AGENT_PID"
wait "$MIG"
RC=$?
check "l3: migrate fails" test "$RC" -ne 0
assert_contains "l3: ... rolled back" "$(cat "$T/l3.migrate")" "rolled back: l3 runs on this host again"
assert_eq "l3: running on the source again" running "$(status l3)"
check "l3: the app's process on the target ($TPID) is gone" wait_for 20 sh -c "test -n '$TPID' && ! kill -0 '$TPID' 2>/dev/null"
check "l3: the container does not run on the target" sh -c "! '$ENVRUN' --root '$AROOT/state' state l3 2>/dev/null | grep -q '\"running\"'"
passes l3 dirtier er
# (after the source's container is gone: both "hosts" share this machine's cgroup tree, and
# the target's copy of the bundle names the same cgroup path, busy while the source runs it)
start_agent "$T/agent-after.log"
assert_contains "l3: the restarted agent deletes the uncommitted container" "$(cat "$T/agent-after.log")" "l3: deleted: restored but never committed"
check "l3: no container on the target" test ! -e "$AROOT/state/l3"
assert_eq "l3: no image and nothing staged on the target" "" "$(find "$AROOT/images" "$AROOT/incoming" -mindepth 1 2>&1)"
