#!/usr/bin/env bash
# Billing end to end: a workload with known usage (tests/billing/workload.c) runs in a bundle
# (isolation "intercept": host binaries, the interception library's meter counters, a cgroup)
# while `envrun meterd` samples it; `envrun delete` records the last interval; `envrun billing
# export` gives back exactly what the workload did (counts exact; CPU and memory within stated
# tolerances). Then: meterd killed with SIGKILL again and again never corrupts the ledger nor
# counts twice; --since-last is idempotent; bad input gets one clear line.
source "$(dirname "$0")/lib.sh"
command -v cc >/dev/null || { fail "cc (gcc) is needed to build the workload"; exit 1; }
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not installed (scripts/deps.sh)"; exit 77; }
BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
export ENVRUN_INTERCEPT_LIB=${INTERCEPT_LIB:-$BUILD/intercept/libenvrun-intercept.so}
[[ -e $ENVRUN_INTERCEPT_LIB ]] || { fail "build product missing: $ENVRUN_INTERCEPT_LIB"; exit 1; }
export ENVRUN_LEDGER=$T/ledger.db
WL=$T/workload
check "build the workload" cc -O1 -o "$WL" "$SRC_DIR/tests/billing/workload.c"
ISO='c["envrun"] = {"isolation": "intercept"}'
export_json() { er billing export --from 2000-01-01T00:00:00Z --to 2100-01-01T00:00:00Z --format json "$@"; }
# q JSON BUNDLE METRIC: ConsumedQuantity of that row (x_Metric: the envrun metric name)
q() { json_get "[r['ConsumedQuantity'] for r in d if r['ResourceId']=='$2' and r['x_Metric']=='$3'][0]" <<<"$1"; }

# ---------------------------------------------------------------------------
section "a workload's usage, exported: exact counts"
N=37 BURN=400 FORKS=5 MEM=64 K=6 REPLY=60000
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/wd" && chmod 777 "$T/wd"
make_bundle wl "args('$WL', '$T/wd', '$N', '$BURN', '$FORKS', '$MEM', '$PORT', '$K', '$REPLY')" "$ISO" \
  'c["annotations"] = {"envrun.billing.bundle": "shop", "envrun.label.team": "blue"}'
"$ENVRUN" --root "$STATE" meterd --interval 300ms --sample 100ms >"$T/meterd.log" 2>&1 &
MPID=$!; PIDS_TO_KILL+=($MPID)
check "run the workload detached" er run -d -b "$B" wl1
wait_for 20 test -e "$T/wd/ready" || fail "workload ready" "$(cat "$T/meterd.log")"
python3 - "$PORT" "$K" <<'PY'
import socket, sys
port, k = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(k)]  # K at once
for s in socks: s.sendall(b"ping")
for s in socks:
    while s.recv(65536): pass
PY
wait_for 20 test -e "$T/wd/done"
sleep 0.5  # a few meterd intervals with the workload idle
check "meterd recorded intervals while it ran" test "$(sqlite3 "$ENVRUN_LEDGER" 'select count(*) from intervals')" -gt 1
check "delete the workload" er delete -f wl1
kill -TERM $MPID; wait $MPID
assert_eq "meterd exits 0 on SIGTERM" 0 "$?"
capture export_json
assert_eq "export exits 0" 0 "$RC" || last_cmd_details
J=$OUT
echo "$J" >"$T/export.json"
assert_eq "files_opened: N opens + 2 fopen (ready, done)" $((N + 2)) "$(q "$J" shop files_opened)"
assert_eq "processes_started: the workload and its $FORKS children" $((1 + FORKS)) "$(q "$J" shop processes_started)"
assert_eq "connections: K accepted" "$K" "$(q "$J" shop connections)"
assert_eq "connections_peak: K at once" "$K" "$(q "$J" shop connections_peak)"
assert_eq "net_bytes_sent: exactly the replies" "$REPLY" "$(q "$J" shop net_bytes_sent)"
assert_eq "net_bytes_received: 4 bytes per request" $((4 * K)) "$(q "$J" shop net_bytes_received)"
assert_eq "transactions: one exchange per connection" "$K" "$(q "$J" shop transactions)"
assert_eq "distinct_peers: 127.0.0.1 only" 1 "$(q "$J" shop distinct_peers)"
measured=$(cat "$T/wd/done")
cpu=$(json_get "sum(float(r['ConsumedQuantity']) for r in d if r['ResourceId']=='shop' and r['x_Metric'] in ('cpu_user_seconds','cpu_system_seconds'))" <<<"$J")
check "CPU user+system ($cpu s) within [measured, measured + 0.25 s] (measured $measured ns by the workload)" \
  python3 -c "import sys; c=float('$cpu'); m=int('$measured')/1e9; sys.exit(0 if m - 0.005 <= c <= m + 0.25 else 1)"
peak=$(q "$J" shop memory_peak_bytes)
check "memory peak ($peak) within [$MEM MiB, $MEM + 48 MiB]" python3 -c "import sys; p=float('$peak'); sys.exit(0 if $MEM*2**20 <= p <= ($MEM+48)*2**20 else 1)"
assert_eq "labels exported as tags" blue "$(json_get "[r for r in d if r['ResourceId']=='shop'][0]['Tags']['team']" <<<"$J")"
assert_eq "ledger: intervals of the instance do not overlap" 0 \
  "$(sqlite3 "$ENVRUN_LEDGER" 'select count(*) from intervals a join intervals b on a.instance_id=b.instance_id and a.start_ms<b.start_ms and b.start_ms<a.end_ms')"

# ---------------------------------------------------------------------------
section "meterd killed with SIGKILL again and again: the ledger stays whole, nothing counted twice"
export ENVRUN_LEDGER=$T/crash.db
make_bundle burner "args('/bin/sh', '-c', 'i=0; while [ \$i -lt 400000 ]; do i=\$((i+1)); done; touch /tmp/burned-$$; sleep 1000')" "$ISO"
check "run a CPU burner" er run -d -b "$B" burn1
for round in 1 2 3 4 5 6; do
  "$ENVRUN" --root "$STATE" meterd --interval 100ms --sample 100ms >>"$T/meterd2.log" 2>&1 &
  pid=$!
  sleep "0.$((RANDOM % 6 + 2))"
  kill -9 $pid; wait $pid 2>/dev/null
  assert_eq "round $round: integrity_check after SIGKILL" ok "$(sqlite3 "$ENVRUN_LEDGER" 'pragma integrity_check')"
done
wait_for 30 test -e /tmp/burned-$$
rm -f /tmp/burned-$$
sleep 0.3
cg_cpu=$(cat "$(cg_file cpuacct cpuacct.usage burner)" 2>/dev/null || awk '/usage_usec/ {print $2*1000}' "$(cg_file cpu cpu.stat burner)")
check "delete the burner" er delete -f burn1
J=$(export_json)
cpu=$(json_get "sum(float(r['ConsumedQuantity']) for r in d if r['ResourceId']=='burner' and r['x_Metric'] in ('cpu_user_seconds','cpu_system_seconds'))" <<<"$J")
check "exported CPU ($cpu s) = the cgroup's total ($cg_cpu ns) within 20 ms: no interval lost or counted twice" \
  python3 -c "import sys; sys.exit(0 if abs(float('$cpu') - int('$cg_cpu')/1e9) <= 0.02 else 1)"
check "more than one interval was recorded across the restarts" test "$(sqlite3 "$ENVRUN_LEDGER" 'select count(*) from intervals')" -gt 2
assert_eq "intervals never overlap" 0 \
  "$(sqlite3 "$ENVRUN_LEDGER" 'select count(*) from intervals a join intervals b on a.instance_id=b.instance_id and a.start_ms<b.start_ms and b.start_ms<a.end_ms')"

# ---------------------------------------------------------------------------
section "--since-last: twice exports nothing twice; a plan prices the rows"
cat >"$T/plan.yaml" <<'YAML'
version: 1
currency: EUR
rounding: {mode: half-up, digits: 2}
metrics:
  cpu_user_seconds: {unit_price: 100}
  connections: {unit_price: 0.5}
YAML
check "check-plan accepts it" er billing check-plan "$T/plan.yaml"
export ENVRUN_LEDGER=$T/ledger.db
capture er billing export --since-last --granularity 1s --grace 0 --format csv --plan "$T/plan.yaml" --out "$T/e1.csv"
assert_eq "first --since-last exits 0" 0 "$RC" || last_cmd_details
check "first export has rows" test "$(wc -l <"$T/e1.csv")" -gt 1
assert_contains "connections priced: 6 x 0.5 = 3.00 EUR" "$(grep ',connections' "$T/e1.csv" || grep connections "$T/e1.csv")" "3.00"
capture er billing export --since-last --granularity 1s --grace 0 --format csv --plan "$T/plan.yaml"
assert_eq "second --since-last exits 0" 0 "$RC" || last_cmd_details
assert_eq "second --since-last: header only" 1 "$(grep -c . <<<"$OUT")"

# ---------------------------------------------------------------------------
section "exec --meter: a host command metered as a transient instance"
export ENVRUN_LEDGER=$T/host.db
printf a >"$T/h1"; printf b >"$T/h2"; printf c >"$T/h3"
capture er exec --meter --name hm1 --bundle-name hostjob -- sh -c "cat '$T/h1' '$T/h2' '$T/h3' >/dev/null; exit 5"
assert_eq "exec --meter: the command's exit status" 5 "$RC"
check "exec --meter created the ledger" test -f "$ENVRUN_LEDGER"
J=$(export_json)
assert_eq "files_opened: cat's three files and sh's /dev/null" 4 "$(q "$J" hostjob files_opened)"
assert_eq "processes_started: sh and cat" 2 "$(q "$J" hostjob processes_started)"
assert_eq "the transient instance is gone" "" "$(er list -q 2>/dev/null | grep hm1)"
assert_eq "no cgroup left for it" "" "$(ls -d /sys/fs/cgroup/*/envrun/hm1 /sys/fs/cgroup/envrun/hm1 2>/dev/null)"
export ENVRUN_LEDGER=$T/ledger.db

# ---------------------------------------------------------------------------
section "bad input: one clear line"
printf 'version: 1\ncurrency: EUR\nmetrics:\n  cpu_seconds: {unit_price: 1}\n' >"$T/bad.yaml"
expect_fail 3 "bad.yaml:4:3: metrics.cpu_seconds: unknown metric" er billing check-plan "$T/bad.yaml"
expect_fail 3 "bad.yaml" er billing export --from 2000-01-01T00:00:00Z --to 2100-01-01T00:00:00Z --plan "$T/bad.yaml"
expect_fail 4 "instance nosuch: not in the ledger" er billing usage nosuch
expect_fail 2 "--from" er billing export --from yesterday --to 2100-01-01T00:00:00Z
expect_fail 2 "export needs --from and --to" er billing export
ENVRUN_LEDGER=$T/none.db expect_fail 4 "ledger $T/none.db: not found" er billing usage
check "no ledger created by a reading command" test ! -e "$T/none.db"
capture er billing usage wl1
assert_eq "billing usage wl1 exits 0" 0 "$RC" || last_cmd_details
assert_contains "usage table names the instance" "$OUT" wl1

# ---------------------------------------------------------------------------
section "live instances: meterd --once, Prometheus text, billing serve"
make_bundle idle "args('/bin/sleep', '1000')" "$ISO" 'c["annotations"] = {"envrun.label.env": "prod"}'
# envrun.yaml names the bundle and gives labels; an annotation overrides one of them
printf 'version: 1\nbilling:\n  bundle: idler\n  labels:\n    team: red\n    env: test\n' >"$B/envrun.yaml"
check "run an idle instance" er run -d -b "$B" idle1
check "meterd --once records it" er meterd --once
capture er billing usage --format prometheus
assert_line_match "prometheus: a counter for the live instance (bundle name from envrun.yaml)" "$OUT" '^envrun_cpu_user_seconds\{bundle="idler",instance="idle1"\} [0-9.e-]+$'
assert_contains "prometheus: TYPE lines" "$OUT" '# TYPE envrun_cpu_user_seconds counter'
check "ended instances are not in the live metrics" test "$(grep -c 'instance="wl1"' <<<"$OUT")" = 0
SPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ENVRUN" --root "$STATE" billing serve --listen 127.0.0.1:$SPORT 2>"$T/serve.log" &
PIDS_TO_KILL+=($!)
wait_for 10 curl -sf -o /dev/null "http://127.0.0.1:$SPORT/metrics"
capture curl -sf "http://127.0.0.1:$SPORT/metrics"
assert_contains "billing serve: GET /metrics" "$OUT" 'instance="idle1"'
capture curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SPORT/other"
assert_eq "billing serve: other paths 404" 404 "$OUT"
check "delete the idle instance" er delete -f idle1
J=$(export_json)
assert_eq "envrun.yaml labels exported as tags" red "$(json_get "[r for r in d if r['ResourceId']=='idler'][0]['Tags']['team']" <<<"$J")"
assert_eq "an annotation overrides an envrun.yaml label" prod "$(json_get "[r for r in d if r['ResourceId']=='idler'][0]['Tags']['env']" <<<"$J")"
printf 'billing:\n  lables: {team: red}\n' >"$B/envrun.yaml"
expect_fail 3 "envrun.yaml:2:3: billing.lables: unknown key" er create -b "$B" idle2
check "nothing left of the refused instance" test ! -e "$STATE/idle2"
printf 'billing:\n  labels: {"a b": red}\n' >"$B/envrun.yaml"
expect_fail 3 "envrun.yaml:2:12: billing.labels.a b: label names are" er run -b "$B" idle3
