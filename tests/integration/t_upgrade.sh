#!/usr/bin/env bash
# Bundle library versions and instance upgrades (issue 8): `envrun library` on an agent dir
# (--root AGENT, as `envrun serve` uses it; its instances live in AGENT/state) and
# `envrun upgrade`: a restart upgrade whose env/args change (seen in /proc/PID/environ and
# cmdline), a checkpoint upgrade of the tests/ckpt counter whose config gains an env var
# (the program keeps counting: no restart, PASS at the end), health checks that fail and are
# rolled back (old version running, its state intact), files in use that differ (checkpoint
# refused, auto restarts), a bad version refused.
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
PROGS=$BUILD/tests/ckpt
[[ -x $PROGS/ckpt_counter_static ]] || { fail "build products missing: $PROGS/ckpt_counter_static"; exit 1; }

AGENT=$T/agent
STATE=$AGENT/state   # er and the cleanup trap act on the agent's instances
mkdir -p "$STATE"
lib() { timeout -k 5 120 "$ENVRUN" --root "$AGENT" library "$@"; }
up() { timeout -k 5 180 "$ENVRUN" --root "$AGENT" upgrade "$@"; }
vdir() { echo "$AGENT/library/$1/versions/$2"; }
bundle_of() { er state "$1" 2>/dev/null </dev/null | json_get 'd["bundle"]' 2>/dev/null; }
environ_of() { tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null; }
cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }
# next_config NAME PYTHON: the current config of NAME changed by PYTHON (c = the dict) -> $T/next.json
next_config() {
  python3 - "$AGENT/library/$1/current/config.json" "$T/next.json" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY
}

section "library: add, change, versions"
make_bundle loop "script('trap \"exit 0\" TERM; while true; do sleep 0.2; done # v1')" 'c["process"]["env"].append("APP_VERSION=1")'
capture lib add loop "$B"
assert_eq "library add exits 0" 0 "$RC" || last_cmd_details
assert_contains "... and makes version 1" "$OUT" "loop version 1: $(vdir loop 1)"
next_config loop 'c["process"]["env"] = [e for e in c["process"]["env"] if not e.startswith("APP_VERSION=")] + ["APP_VERSION=2"]; c["process"]["args"][-1] = c["process"]["args"][-1].replace("# v1", "# v2")'
capture lib change loop config.json --from "$T/next.json"
assert_eq "library change config.json exits 0" 0 "$RC" || last_cmd_details
check "version 2 has the new config" grep -q APP_VERSION=2 "$(vdir loop 2)/config.json"
check "version 1 is unchanged" grep -q APP_VERSION=1 "$(vdir loop 1)/config.json"
capture lib versions loop
assert_line_match "versions lists 2 as current" "$OUT" '^\* 2 '
assert_line_match "... and 1" "$OUT" '^  1 '

section "a bad version is refused and leaves nothing behind"
make_bundle bad 'c["process"]["args"] = []'
expect_fail 3 "process.args" lib publish loop "$B"
check "no version 3 directory" test ! -e "$(vdir loop 3)"
assert_eq "current is still version 2" "versions/2" "$(readlink "$AGENT/library/loop/current")"
assert_eq "no temporary copy is left" "" "$(ls -A "$AGENT/library/loop" | grep -v -x -e versions -e current)"
printf 'version: 1\nfiles:\n  - bogus: 1\n' >"$T/bad-intercept.yaml"
capture lib change loop intercept.yaml --from "$T/bad-intercept.yaml"
assert_eq "a bad intercept.yaml is refused (exit 3)" 3 "$RC"
assert_contains "... naming the file, line and field" "$ERR" "intercept.yaml:3:5: files[0].bogus"
check "... and no version 3 directory" test ! -e "$(vdir loop 3)"
expect_fail 2 "invalid bundle name" lib add ../escape "$B"

section "restart upgrade: env and args of the new version"
er run -d -b "$(vdir loop 1)" web >"$T/web.out" 2>&1 </dev/null
wait_status web running
OLD_PID=$(state_pid web)
assert_contains "version 1 runs with APP_VERSION=1" "$(environ_of "$OLD_PID")" "APP_VERSION=1"
capture up web --to-version 2 --mode restart --health-exec "test -d /proc/1"
assert_eq "upgrade --mode restart exits 0" 0 "$RC" || last_cmd_details
assert_contains "... and says so" "$OUT" "web runs version 2 (restart)"
assert_contains "progress lines on stderr" "$ERR" "stopping web (version 1)"
NEW_PID=$(state_pid web)
assert_eq "web runs from version 2" "$(cd "$(vdir loop 2)" && pwd -P)" "$(bundle_of web)"
if pid_alive "$OLD_PID" && [[ $OLD_PID != "$NEW_PID" ]]; then fail "the old process is gone" "pid $OLD_PID: $(cat /proc/$OLD_PID/stat 2>&1)"; else pass "the old process is gone"; fi
assert_contains "the new process has APP_VERSION=2" "$(environ_of "$NEW_PID")" "APP_VERSION=2"
assert_not_contains "... and not APP_VERSION=1" "$(environ_of "$NEW_PID")" "APP_VERSION=1"
assert_contains "... and the new args" "$(cmdline_of "$NEW_PID")" "# v2"

section "restart upgrade with a failing health check: rolled back"
next_config loop 'c["process"]["env"].append("BROKEN=1")'
capture lib change loop config.json --from "$T/next.json"
assert_eq "version 3 published" 0 "$RC" || last_cmd_details
capture up web --mode restart --health-exec "test -e /healthy" --health-timeout 2s --format json
assert_eq "a rolled back upgrade exits 1" 1 "$RC" || last_cmd_details
assert_eq "... rolled_back" true "$(json_get 'd["rolled_back"]' <<<"$OUT")"
assert_contains "... with the reason" "$(json_get 'd["message"]' <<<"$OUT")" "health check failed"
assert_eq "web runs from version 2 again" "$(cd "$(vdir loop 2)" && pwd -P)" "$(bundle_of web)"
wait_status web running
assert_contains "... with APP_VERSION=2" "$(environ_of "$(state_pid web)")" "APP_VERSION=2"
assert_not_contains "... not the broken version's env" "$(environ_of "$(state_pid web)")" "BROKEN=1"

section "files in use: checkpoint refused, auto restarts"
cp -a "$(vdir loop 3)" "$T/loop4"
printf 'x' >>"$T/loop4/rootfs/bin/busybox"   # the shell and sleep run from it
capture lib publish loop "$T/loop4"
assert_eq "version 4 published" 0 "$RC" || last_cmd_details
PID_BEFORE=$(state_pid web)
expect_fail 5 "changes files the instance has open or mapped: /bin/busybox" up web --mode checkpoint
assert_eq "the refused upgrade left web alone" "$PID_BEFORE" "$(state_pid web)"
capture up web --mode auto --format json
assert_eq "upgrade --mode auto exits 0" 0 "$RC" || last_cmd_details
assert_eq "... using a restart" restart "$(json_get 'd["mode"]' <<<"$OUT")"
echo "     (restart upgrade of the loop: downtime $(json_get 'round(d["downtime_ms"])' <<<"$OUT") ms)"
assert_contains "... and saying why" "$ERR" "restart instead of checkpoint"
assert_eq "web runs version 4" "$(cd "$(vdir loop 4)" && pwd -P)" "$(bundle_of web)"
expect_fail 5 "used by instance(s) web" lib remove loop
er delete -f web >/dev/null 2>&1

section "checkpoint upgrade: the counter keeps counting on the new config"
make_bundle counter "args('/ckpt_counter')" 'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"] for k in ("bounding", "effective", "permitted")}'
cp "$PROGS/ckpt_counter_static" "$B/rootfs/ckpt_counter"
capture lib add counter "$B"
assert_eq "counter added" 0 "$RC" || last_cmd_details
OUT_C=$T/cnt.out
: >"$OUT_C"
er run -d -b "$(vdir counter 1)" cnt >>"$OUT_C" 2>&1 </dev/null
wait_for 20 grep -q READY "$OUT_C" || fail "counter: READY" "$(cat "$OUT_C")"
next_config counter 'c["process"]["env"].append("COUNTER_VERSION=2")'
capture lib change counter config.json --from "$T/next.json"
assert_eq "counter version 2 published" 0 "$RC" || last_cmd_details
capture up cnt --mode auto --health-exec "true" --format json
assert_eq "upgrade --mode auto exits 0" 0 "$RC" || last_cmd_details
echo "     (checkpoint upgrade of the counter: downtime $(json_get 'round(d["downtime_ms"])' <<<"$OUT") ms)"
assert_eq "... by checkpoint" checkpoint "$(json_get 'd["mode"]' <<<"$OUT")"
assert_eq "... upgraded" true "$(json_get 'd["upgraded"]' <<<"$OUT")"
assert_eq "cnt runs from version 2" "$(cd "$(vdir counter 2)" && pwd -P)" "$(bundle_of cnt)"
capture er exec cnt -- env
assert_contains "a process started in it gets the new env" "$OUT" "COUNTER_VERSION=2"
assert_eq "the program was not restarted (one READY)" 1 "$(grep -c READY "$OUT_C")"
check "no image is left" test ! -e "$AGENT/upgrades/cnt.img"

section "checkpoint upgrade with a failing health check: the checkpoint comes back"
next_config counter 'c["process"]["env"].append("COUNTER_VERSION=3")'
capture lib change counter config.json --from "$T/next.json"
assert_eq "counter version 3 published" 0 "$RC" || last_cmd_details
capture up cnt --mode checkpoint --health-http "http://127.0.0.1:9/" --health-timeout 2s --format json
assert_eq "a rolled back upgrade exits 1" 1 "$RC" || last_cmd_details
assert_eq "... rolled_back" true "$(json_get 'd["rolled_back"]' <<<"$OUT")"
assert_contains "... naming the failed GET" "$(json_get 'd["message"]' <<<"$OUT")" "127.0.0.1:9"
assert_eq "cnt runs from version 2 again" "$(cd "$(vdir counter 2)" && pwd -P)" "$(bundle_of cnt)"
assert_eq "still one READY: the state came back from the checkpoint" 1 "$(grep -c READY "$OUT_C")"
expect_fail 4 "no version 9" up cnt --to-version 9
sleep 0.3
check "kill -TERM the counter" er kill cnt TERM
wait_for 20 grep -qE '^(PASS|FAIL)' "$OUT_C"
assert_line_match "the counter finds its state intact after two swaps" "$(cat "$OUT_C")" '^PASS counter$' || cat "$OUT_C"
er delete -f cnt >/dev/null 2>&1

section "upgrade errors"
expect_fail 4 "" up nothere
capture lib remove counter
assert_eq "remove of an unused bundle exits 0" 0 "$RC" || last_cmd_details
check "... and it is gone" test ! -e "$AGENT/library/counter"
