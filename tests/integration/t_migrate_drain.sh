#!/usr/bin/env bash
# Event-driven migration (issue 7): `envrun drain`, the envrun.yaml `migration:` policies (memory and CPU pressure with real loads)
# and SIGTERM to the agent. Two "hosts": network namespaces joined by a veth pair
# (10.231.9.1 <-> 10.231.9.2), an agent (`envrun serve`) in each; the containers start on
# host A under agent A's state root. The tests/ckpt counter program must PASS wherever it
# ends up (no step lost); a container that could not move keeps running (and PASSes) on A.
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
PROGS=$BUILD/tests/ckpt
for p in ckpt_counter_static ckpt_bigmem_static; do
  [[ -x $PROGS/$p ]] || { fail "build products missing: $PROGS/$p"; exit 1; }
done
command -v nsenter >/dev/null || { fail "nsenter is not installed (util-linux)"; exit 1; }

NS_A=envrun-drn-a-$$ NS_B=envrun-drn-b-$$
IP_A=10.231.9.1 IP_B=10.231.9.2 PORT=7170 DEAD_PORT=7179
AROOT=$T/hostA BROOT=$T/hostB
STATE=$AROOT/state      # er = host A's agent's containers (lib.sh's cleanup deletes them)
two_hosts drn

in_a() { nsenter --net="/run/netns/$NS_A" "$@"; }
eb() { timeout -k 5 "$ER_TIMEOUT" "$ENVRUN" --root "$BROOT/state" "$@"; }
drain() { in_a timeout -k 5 300 "$ENVRUN" drain "$@"; }

STATE_ROOTS+=("$BROOT/state")  # host B's agent's containers go too

head -c 32 /dev/urandom >"$T/psk" && chmod 600 "$T/psk"

# start_agent NS ROOT IP LOG: an agent in that namespace; sets AGENT_PID.
start_agent() {
  local ns=$1 root=$2 ip=$3 log=$4
  nsenter --net="/run/netns/$ns" "$ENVRUN" --cgroup-root "/$CG_PREFIX/host-$ns" --root "$root" serve --listen "$ip:$PORT" --psk-file "$T/psk" >"$log" 2>&1 </dev/null &
  AGENT_PID=$!
  PIDS_TO_KILL+=("$AGENT_PID")
  wait_for 10 grep -q "listening on $ip:$PORT" "$log" || fail "agent $ip:$PORT listens" "$(cat "$log")"
}

# counter ID [ENVRUN.YAML]: the counter program as container ID on host A, bundle $T/ID
# (a bundle each: the cgroup path is the bundle's), READY.
counter() {
  local id=$1 yaml=${2:-}
  make_bundle "$id" "args('/ckpt_counter')" \
    'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL"] for k in ("bounding", "effective", "permitted")}'
  cp "$PROGS/ckpt_counter_static" "$B/rootfs/ckpt_counter"
  [[ -n $yaml ]] && printf '%s\n' "$yaml" >"$B/envrun.yaml"
  started "$id"
}
started() {
  er run -d -b "$T/$1" "$1" >"$T/$1.out" 2>&1 </dev/null || { fail "$1: run" "$(cat "$T/$1.out")"; return 1; }
  wait_for 20 grep -q READY "$T/$1.out" || { fail "$1: READY" "$(cat "$T/$1.out")"; return 1; }
}
# passes ID ENVRUN_FN [PROGRAM]: SIGTERM through that state root, then the program's verdict.
passes() {
  local id=$1 fn=$2 prog=${3:-counter}
  $fn kill "$id" TERM >/dev/null 2>&1
  wait_for 20 grep -qE '^(PASS|FAIL)' "$T/$id.out"
  assert_line_match "$id: the program finds its state intact (PASS)" "$(cat "$T/$id.out")" "^PASS $prog\$" || cat "$T/$id.out"
  $fn delete -f "$id" >/dev/null 2>&1
}
runs_on_b() { [[ "$(eb state "$1" 2>/dev/null </dev/null | json_get "d['status']" 2>/dev/null)" == running ]]; }
gone_from_a() { ! er state "$1" >/dev/null 2>&1 </dev/null; }

peer_yaml() {  # peer_yaml PORT EVENTS [MORE LINES]
  printf 'migration:\n  peer: %s\n  on: [%s]\n%s' "$IP_B:$1" "$2" "${3:-}"
}

section "a bad migration: section is refused at create, naming file, line, field and reason"
make_bundle bad "args('/bin/true')"
printf 'billing:\n  bundle: shop\nmigration:\n  peer: %s\n  on: [drain, reboot]\n' "$IP_B:$PORT" >"$B/envrun.yaml"
expect_fail 3 "$B/envrun.yaml:5:15: migration.on: unknown event \"reboot\"" er create -b "$B" bad1
printf 'migration:\n  peer: host_b:7170\n' >"$B/envrun.yaml"
expect_fail 3 "$B/envrun.yaml:2:9: migration.peer: \"host_b\" is neither a host name nor a numeric IPv4 or IPv6 address" er create -b "$B" bad2
printf 'migration:\n  peer: %s\n  on: [memory_pressure]\n' "$IP_B:$PORT" >"$B/envrun.yaml"
expect_fail 3 "migration.on: memory_pressure needs memory_pressure_above or memory_psi_above" er create -b "$B" bad3
assert_eq "no container was left by the refusals" "" "$(er list -q 2>/dev/null)"
printf 'billing:\n  bundle: shop\nmigration:\n  peer: %s\n  on: [drain, sigterm]\n  for: 5s\n' "$IP_B:$PORT" >"$B/envrun.yaml"
check "a good one is accepted next to billing:" er create -b "$B" good1
er delete -f good1 >/dev/null 2>&1

start_agent "$NS_A" "$AROOT" "$IP_A" "$T/agentA.log"
AGENT_A=$AGENT_PID
start_agent "$NS_B" "$BROOT" "$IP_B" "$T/agentB.log"

section "drain: two containers move to their peer; one whose peer is down stays and is named"
counter d1 "$(peer_yaml $PORT drain)"
counter d2 "$(peer_yaml $PORT 'drain, sigterm')"
counter d3 "$(peer_yaml $DEAD_PORT drain)"
counter d4           # no envrun.yaml: no peer
capture drain "$IP_A:$PORT" --psk-file "$T/psk" --dry-run
assert_eq "dry run: exits 0" 0 "$RC" || last_cmd_details
assert_line_match "dry run: d1 would move to B" "$OUT" "^d1: would move to $IP_B:$PORT\$"
assert_line_match "dry run: d3 would move to its (dead) peer" "$OUT" "^d3: would move to $IP_B:$DEAD_PORT\$"
assert_line_match "dry run: d4 stays, no peer" "$OUT" '^d4: stays: no peer to move to'
assert_eq "dry run: nothing moved" "d1 d2 d3 d4" "$(er list -q | sort | xargs)"
capture drain "$IP_A:$PORT" --psk-file "$T/psk"
echo "$OUT" | sed 's/^/       /'
assert_eq "drain: exits 1 (containers are left)" 1 "$RC" || last_cmd_details
assert_contains "drain: names what still runs on A" "$ERR" "2 container(s) still run on $IP_A:$PORT: d4, d3"
assert_line_match "drain: d1 moved (pid there, downtime)" "$OUT" "^d1: moved to $IP_B:$PORT \\(pid [0-9]+ there; downtime [0-9.]+ ms"
assert_line_match "drain: d2 moved" "$OUT" "^d2: moved to $IP_B:$PORT "
assert_line_match "drain: d3 not moved, keeps running" "$OUT" "^d3: not moved: .*; it keeps running on $IP_A:$PORT\$"
for id in d1 d2; do
  check "$id: runs on host B" runs_on_b "$id"
  check "$id: gone from host A" gone_from_a "$id"
done
assert_eq "d3, d4: still running on host A" "running running" "$(status d3) $(status d4)"
assert_contains "agent A logged the drain" "$(cat "$T/agentA.log")" "drain: 2 moved, 1 failed, 1 stay"
check "d1: agent B's bundle copy" test -x "$BROOT/bundles/d1/rootfs/ckpt_counter"
passes d1 eb
passes d2 eb

section "drain --to: the rest moves to the agent named on the command line"
capture drain "$IP_A:$PORT" --psk-file "$T/psk" --to "$IP_B:$PORT"
assert_eq "drain --to: exits 0 (host A is empty)" 0 "$RC" || last_cmd_details
assert_line_match "drain --to: d3 moved" "$OUT" "^d3: moved to $IP_B:$PORT "
assert_line_match "drain --to: d4 moved" "$OUT" "^d4: moved to $IP_B:$PORT "
assert_eq "host A runs nothing" "" "$(er list -q)"
passes d3 eb
passes d4 eb
head -c 32 /dev/urandom >"$T/other.psk" && chmod 600 "$T/other.psk"
expect_fail 1 "authentication failed" drain "$IP_A:$PORT" --psk-file "$T/other.psk" --dry-run

section "a drain under way does not hold agent A: another client is served meanwhile"
make_bundle big1 "args('/ckpt_bigmem', '384')" \
  'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL"] for k in ("bounding", "effective", "permitted")}'
cp "$PROGS/ckpt_bigmem_static" "$B/rootfs/ckpt_bigmem"
printf '%s\n' "$(peer_yaml $PORT drain)" >"$B/envrun.yaml"
started big1
drain "$IP_A:$PORT" --psk-file "$T/psk" >"$T/big-drain.out" 2>&1 </dev/null &
BIG_DRAIN=$!
wait_for 30 grep -q "big1: drain: migrating to" "$T/agentA.log" || fail "big1: the drain begins" "$(tail -n 5 "$T/agentA.log")"
capture drain "$IP_A:$PORT" --psk-file "$T/psk" --dry-run
DRY_RC=$RC DRY_OUT=$OUT
check "the first drain still runs when the second client's dry run is answered" kill -0 "$BIG_DRAIN"
assert_eq "a dry run during the drain: exits 0" 0 "$DRY_RC"
assert_line_match "... and names big1 as being moved" "$DRY_OUT" '^big1: stays: a migration of it is under way$'
wait "$BIG_DRAIN"
assert_eq "the drain of big1: exits 0" 0 "$?" || cat "$T/big-drain.out"
check "big1: runs on host B" runs_on_b big1
# Agent A's log: the dry run was answered between the start and the end of big1's move.
order=$(grep -E "big1: drain: migrating to|drain \(dry run\) asked by|big1: drain: moved" "$T/agentA.log" | tail -n 3 | sed -E 's/^.*envrun serve: //; s/ (to|by) .*//')
assert_eq "agent A: the dry run came in while big1 moved" "$(printf 'big1: drain: migrating\ndrain (dry run) asked\nbig1: drain: moved')" "$order"
passes big1 eb bigmem

section "memory pressure: the container that allocates past its threshold moves; the other stays"
MEMPOL=$(peer_yaml $PORT memory_pressure $'  memory_pressure_above: 50%\n  for: 1s\n')
LIMIT='c["linux"]["resources"]["memory"] = {"limit": 128 << 20}'
make_bundle mem1 "args('/ckpt_bigmem', '80')" "$LIMIT" \
  'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL"] for k in ("bounding", "effective", "permitted")}'
cp "$PROGS/ckpt_bigmem_static" "$B/rootfs/ckpt_bigmem"
printf '%s\n' "$MEMPOL" >"$B/envrun.yaml"
make_bundle mem2 "args('/ckpt_counter')" "$LIMIT" \
  'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL"] for k in ("bounding", "effective", "permitted")}'
cp "$PROGS/ckpt_counter_static" "$B/rootfs/ckpt_counter"
printf '%s\n' "$MEMPOL" >"$B/envrun.yaml"
started mem2
started mem1
# The agent logs the move once migrate committed (the container runs on B a moment before).
wait_for 90 grep -q "mem1: moved to" "$T/agentA.log" || fail "mem1: moved to host B" "$(tail -n 20 "$T/agentA.log")"
check "mem1: runs on host B" runs_on_b mem1
assert_line_match "agent A: the policy fired for mem1, with the reading" "$(cat "$T/agentA.log")" \
  "mem1: memory in use [0-9.]+% of its 128 MiB limit \\(above 50.0%\\) for [0-9.]+ s: migrating to $IP_B:$PORT"
assert_line_match "agent A: mem1 moved" "$(cat "$T/agentA.log")" "mem1: moved to $IP_B:$PORT"
check "mem1: gone from host A" gone_from_a mem1
sleep 3   # three more rounds of the policy thread
assert_eq "mem2 (16 MiB of 128 MiB) still runs on host A" running "$(status mem2)"
assert_not_contains "agent A never fired for mem2" "$(cat "$T/agentA.log")" "mem2: memory in use"
passes mem1 eb bigmem
passes mem2 er

section "cpu pressure: the container whose threads wait for a CPU moves; the idle one stays"
# Four spinning threads on two cores: one of them is nearly always waiting, so the cgroup's
# PSI "some" (cgroup2's cpu.pressure, avg10) climbs past 40% within some seconds (the idle counter beside it stays far below).
CPUPOL=$(peer_yaml $PORT cpu_pressure $'  cpu_pressure_above: 40%\n  for: 1s\n')
make_bundle cpu1 "args('/ckpt_threads')" 'c["process"]["env"].append("CKPT_BUSY=1")' \
  'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL"] for k in ("bounding", "effective", "permitted")}'
cp "$PROGS/ckpt_threads_static" "$B/rootfs/ckpt_threads"
printf '%s\n' "$CPUPOL" >"$B/envrun.yaml"
counter cpu2 "$CPUPOL"
started cpu1
wait_for 90 grep -q "cpu1: moved to" "$T/agentA.log" || fail "cpu1: moved to host B" "$(tail -n 20 "$T/agentA.log")"
check "cpu1: runs on host B" runs_on_b cpu1
assert_line_match "agent A: the policy fired for cpu1, with the reading" "$(cat "$T/agentA.log")" \
  "cpu1: cpu pressure [0-9.]+% \\(PSI some avg10, above 40.0%\\) for [0-9.]+ s: migrating to $IP_B:$PORT"
check "cpu1: gone from host A" gone_from_a cpu1
passes cpu1 eb threads  # its threads all still step, and the spinning stops before the idle one is judged
sleep 3
assert_eq "cpu2 (a counter that sleeps) still runs on host A" running "$(status cpu2)"
assert_not_contains "agent A never fired for cpu2" "$(cat "$T/agentA.log")" "cpu2: cpu pressure"
passes cpu2 er

section "SIGTERM to agent A: the container with a sigterm policy moves first; the others stay"
counter s1 "$(peer_yaml $PORT 'drain, sigterm')"
counter s2 "$(peer_yaml $PORT drain)"
kill -TERM "$AGENT_A"
wait_for 120 sh -c "! kill -0 $AGENT_A 2>/dev/null"
wait "$AGENT_A"
assert_eq "agent A exits 0" 0 "$?"
echo "$(grep -E 's[12]:|SIGTERM' "$T/agentA.log" | sed 's/^/       /')"
assert_contains "agent A: one to move at SIGTERM" "$(cat "$T/agentA.log")" "SIGTERM: 1 container(s) with a sigterm policy to move"
assert_line_match "agent A: s1 moved at SIGTERM" "$(cat "$T/agentA.log")" "s1: sigterm: moved to $IP_B:$PORT"
check "s1: runs on host B" runs_on_b s1
assert_eq "s2 (drain only): still runs on host A" running "$(status s2)"
passes s1 eb
passes s2 er
