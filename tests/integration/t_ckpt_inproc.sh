#!/usr/bin/env bash
# The in-process part of checkpoint/restore (ckpt/inproc.hpp, intercept/README.md
# "Checkpoint"): a bundle that runs with the interception library (isolation: both, a
# dynamic rootfs) whose program, tests/ckpt/stdio.c, fprintf's 120 lines into a fully
# buffered stream without flushing them and keeps a worker thread in hooked calls. With
# its argument "flushed" the program FAILs at SIGTERM unless someone flushed its stdio
# buffer before: only the library's checkpoint thread can. Also: the restore hooks ran
# (the meter counts the restored process in the new instance), the barrier is down after
# each step (the worker's hooked calls go on), no warning from the handshake.
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
PROG=$BUILD/tests/ckpt/ckpt_stdio
[[ -x $PROG && -f $BUILD/intercept/libenvrun-intercept.so ]] ||
  { fail "build products missing: $PROG, $BUILD/intercept/libenvrun-intercept.so"; exit 1; }
DYNROOT=$T/dynroot
bash "$SRC_DIR/tests/fixtures/make-dynroot.sh" "$DYNROOT" >/dev/null || { fail "make-dynroot"; exit 1; }
LINES_BYTES=4783   # the 120 lines stdio.c writes before READY
ALL_BYTES=5979     # with the 30 it adds at SIGTERM

section "the program judges itself (no checkpoint)"
run_native() {  # run_native OUT [ENV...] -- ARGS...: READY, SIGTERM after 0.3 s; the verdict in $VERDICT
  local out=$1; shift
  env "$@" >"$out" 2>/dev/null </dev/null &
  local pid=$!
  PIDS_TO_KILL+=("$pid")
  wait_for 20 grep -q READY "$out"
  sleep 0.3
  kill -TERM "$pid"
  wait "$pid"
  VERDICT=$(tail -n 1 "$out")
}
run_native "$T/n1.out" "$PROG" "$T/n1.txt"
assert_eq "stdio alone: PASS" "PASS stdio" "$VERDICT"
run_native "$T/n2.out" "$PROG" "$T/n2.txt" flushed
assert_contains "stdio flushed, never checkpointed: FAIL (nobody flushed)" "$VERDICT" "not flushed at the checkpoint"
for b in 1:"ftell 0" 3:"worker thread stuck" 4:"first difference at byte 1000"; do
  run_native "$T/b${b%%:*}.out" CKPT_SELFTEST_BREAK="${b%%:*}" "$PROG" "$T/b${b%%:*}.txt"
  assert_contains "CKPT_SELFTEST_BREAK=${b%%:*}: FAIL naming \"${b#*:}\"" "$VERDICT" "${b#*:}"
done

# The bundle: the dynamic program at /ckpt_stdio of the dynamic rootfs, the library inside.
FIXTURE_ROOTFS=$DYNROOT make_bundle stdio "args('/ckpt_stdio', '/tmp/out.txt', 'flushed')" \
  'c["envrun"] = {"isolation": "both"}' \
  'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"] for k in ("bounding", "effective", "permitted")}'
cp "$PROG" "$B/rootfs/ckpt_stdio"
FILE=$B/rootfs/tmp/out.txt
OUTLOG=$T/stdio.out
: >"$OUTLOG"
counter() { er intercept "$1" status --json | json_get "d['counters']['$2']"; }
# The worker's hooked calls go on: bytes_written (its pwrites) grows within 5 s.
worker_runs() {
  local id=$1 before
  before=$(counter "$id" bytes_written)
  wait_for 5 test "$(counter "$id" bytes_written)" -gt "$before"
}

section "checkpoint --leave-running: the checkpoint thread flushed stdio, then let the process go"
er run -d -b "$B" ckio >>"$OUTLOG" 2>&1 </dev/null
wait_for 20 grep -q READY "$OUTLOG" || fail "stdio: READY" "$(cat "$OUTLOG")"
PID=$(er state ckio | json_get "d['pid']")
check "the process has a thread named envrun-ckpt" grep -qx envrun-ckpt /proc/"$PID"/task/*/comm
assert_eq "the text is still in the stdio buffer" 0 "$(stat -c %s "$FILE")"
capture er checkpoint --leave-running --image-path "$T/img-a" ckio
assert_eq "checkpoint --leave-running exits 0" 0 "$RC" || last_cmd_details
assert_not_contains "no warning from the in-process part" "$ERR" "in-process"
assert_eq "the file holds the 120 lines now" "$LINES_BYTES" "$(stat -c %s "$FILE")"
assert_eq "first line" "stdio line 000: the quick brown fox 0" "$(head -n 1 "$FILE")"
assert_eq "still running" running "$(er state ckio | json_get "d['status']")"
check "the barrier is down: the worker's hooked calls go on" worker_runs ckio
check "the checkpoint thread is idle again" grep -qx envrun-ckpt /proc/"$PID"/task/*/comm

section "checkpoint, kill, restore: the program goes on with its stdio state"
capture er checkpoint --image-path "$T/img-b" ckio
assert_eq "checkpoint exits 0" 0 "$RC" || last_cmd_details
check "the container is gone" test -z "$(er list -q | grep -x ckio)"
capture er restore -d --image-path "$T/img-b" -b "$B" ckio
assert_eq "restore exits 0" 0 "$RC" || last_cmd_details
assert_not_contains "no warning from the in-process restore" "$ERR" "in-process"
assert_eq "the restore hooks ran: the meter counted the process in the new instance" 1 "$(counter ckio processes_started)"
check "the barrier of the new instance is down: the worker goes on" worker_runs ckio
er kill ckio TERM
wait_for 20 grep -qE '^(PASS|FAIL)' "$OUTLOG"
assert_line_match "the restored program finds its buffer flushed, its stream and file intact" "$(cat "$OUTLOG")" '^PASS stdio$' || cat "$OUTLOG"
assert_eq "the file holds the 150 lines" "$ALL_BYTES" "$(stat -c %s "$FILE")"
er delete -f ckio >/dev/null 2>&1

section "restore from the --leave-running image (the file put back as it was then)"
truncate -s "$LINES_BYTES" "$FILE"
: >"$OUTLOG"
capture er restore -d --image-path "$T/img-a" -b "$B" ckio
assert_eq "restore exits 0" 0 "$RC" || last_cmd_details
check "the worker goes on" worker_runs ckio
er kill ckio TERM
wait_for 20 grep -qE '^(PASS|FAIL)' "$OUTLOG"
assert_line_match "PASS again" "$(cat "$OUTLOG")" '^PASS stdio$' || cat "$OUTLOG"
er delete -f ckio >/dev/null 2>&1

section "restore under another id: the same DB works; a DB that differs (\${ID} in a rule) is refused"
truncate -s "$LINES_BYTES" "$FILE"
: >"$OUTLOG"
capture er restore -d --image-path "$T/img-a" -b "$B" ckio-other
assert_eq "restore as ckio-other exits 0" 0 "$RC" || last_cmd_details
assert_eq "restore hooks ran there" 1 "$(counter ckio-other processes_started)"
er kill ckio-other TERM
wait_for 20 grep -qE '^(PASS|FAIL)' "$OUTLOG"
assert_line_match "PASS under another id" "$(cat "$OUTLOG")" '^PASS stdio$' || cat "$OUTLOG"
er delete -f ckio-other >/dev/null 2>&1
printf 'version: 1\nenv:\n  - set: INSTANCE\n    value: "${ID}"\n' >"$B/intercept.yaml"
truncate -s 0 "$FILE"
: >"$OUTLOG"
er run -d -b "$B" ckid >>"$OUTLOG" 2>&1 </dev/null
wait_for 20 grep -q READY "$OUTLOG" || fail "ckid: READY" "$(cat "$OUTLOG")"
capture er checkpoint --image-path "$T/img-id" ckid
assert_eq "checkpoint ckid exits 0" 0 "$RC" || last_cmd_details
expect_fail 3 "differs from the checkpointed instance's intercept.db" er restore -d --image-path "$T/img-id" -b "$B" ckid-other
check "no container left by the refused restore" test -z "$(er list -q | grep -x ckid-other)"
capture er restore -d --image-path "$T/img-id" -b "$B" ckid
assert_eq "under its own id it restores" 0 "$RC" || last_cmd_details
er kill ckid TERM
wait_for 20 grep -qE '^(PASS|FAIL)' "$OUTLOG"
assert_line_match "and PASSes" "$(cat "$OUTLOG")" '^PASS stdio$' || cat "$OUTLOG"
er delete -f ckid >/dev/null 2>&1
rm -f "$B/intercept.yaml"

section "without the checkpoint thread (ENVRUN_INTERCEPT_CKPT=off): named, and the dump goes on"
FIXTURE_ROOTFS=$DYNROOT make_bundle stdio2 "args('/ckpt_stdio', '/tmp/out.txt')" \
  'c["envrun"] = {"isolation": "both"}' 'c["process"]["env"] = ["PATH=/usr/bin:/bin", "ENVRUN_INTERCEPT_CKPT=off"]'
cp "$PROG" "$B/rootfs/ckpt_stdio"
: >"$OUTLOG"
er run -d -b "$B" ckio2 >>"$OUTLOG" 2>&1 </dev/null
wait_for 20 grep -q READY "$OUTLOG" || fail "stdio2: READY" "$(cat "$OUTLOG")"
capture er checkpoint --leave-running --image-path "$T/img-c" ckio2
assert_eq "checkpoint exits 0" 0 "$RC" || last_cmd_details
assert_contains "the warning names the process" "$ERR" "(ckpt_stdio): the interception library runs without a checkpoint thread"
assert_eq "nothing flushed" 0 "$(stat -c %s "$B/rootfs/tmp/out.txt")"
check "the worker goes on" worker_runs ckio2
er delete -f ckio2 >/dev/null 2>&1
