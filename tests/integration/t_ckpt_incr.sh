#!/usr/bin/env bash
# Incremental checkpoints (--track-mem, --parent-path): a chain of three images of a container
# whose program (tests/ckpt/dirty.c) changes 1% of its memory, drops some pages and maps a new
# region in each round; restored from the last image (and from the middle one), the program
# checks every page against its recomputed history. Then: the chain is checked before anything
# is restored (missing, corrupt, re-taken parent), the refusals at checkpoint time, and the
# per-process fallback (a process the parent's round did not track is dumped whole, with a
# warning naming it).
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
PROGS=$BUILD/tests/ckpt
[[ -x $PROGS/ckpt_dirty_static && -x $PROGS/ckpt_dirty ]] || { fail "build products missing: $PROGS/ckpt_dirty{,_static}"; exit 1; }

MIB=64
ID=ck-incr
DOUT=$T/$ID.out
make_bundle dirty "args('/ckpt_dirty', '$MIB')" 'c["process"]["capabilities"] = {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")}'
cp "$PROGS/ckpt_dirty_static" "$B/rootfs/ckpt_dirty"

stat_of() { grep -E "^  $1: " "$T/last.out" | grep -oE '[0-9]+' | head -1; }
round() {  # round N: SIGUSR1 to the container, wait for "ROUND N"
  er kill "$ID" USR1
  wait_for 20 grep -qx "ROUND $1" "$DOUT" || fail "round $1 done" "$(cat "$DOUT")"
}
finish_run() {  # finish_run DESC: SIGTERM the restored container, its verdict must be PASS
  local n
  n=$(grep -cE '^(PASS|FAIL)' "$DOUT")
  er kill "$ID" TERM
  wait_for 30 test "$(grep -cE '^(PASS|FAIL)' "$DOUT")" -gt "$n"
  assert_eq "$1" "PASS dirty" "$(grep -E '^(PASS|FAIL)' "$DOUT" | tail -1)" || cat "$DOUT"
  wait_for 10 test -z "$(er list -q | grep -x "$ID")"
  er delete -f "$ID" >/dev/null 2>&1
}

section "a chain of three: full (--track-mem), incremental, incremental (the tree killed)"
: >"$DOUT"
er run -d -b "$B" "$ID" >>"$DOUT" 2>&1 </dev/null
wait_for 20 grep -qx READY "$DOUT" || fail "dirty: READY" "$(cat "$DOUT")"
PID=$(state_pid "$ID")
capture er checkpoint --leave-running --track-mem --stats --image-path "$T/i1" "$ID"
assert_eq "1st checkpoint (--leave-running --track-mem) exits 0" 0 "$RC" || last_cmd_details
FULL_PAGES=$(stat_of "pages written")
assert_contains "the program now holds its tracker (a userfaultfd)" "$(ls -l /proc/"$PID"/fd)" "anon_inode:[userfaultfd]"
assert_eq "the container still runs" running "$(status "$ID")"
round 1
capture er checkpoint --leave-running --parent-path ../i1 --stats --image-path "$T/i2" "$ID"
assert_eq "2nd checkpoint (--parent-path ../i1) exits 0" 0 "$RC" || last_cmd_details
INCR_PAGES=$(stat_of "pages written")
IN_PARENT=$(stat_of "pages in parent")
assert_eq "2nd checkpoint: no warning (every process tracked)" "" "$ERR"
check "2nd checkpoint: pages in the parent (${IN_PARENT:-?}) are most of the mapping" test "${IN_PARENT:-0}" -gt $((MIB * 256 * 9 / 10))
# 1% of the big mapping + the round's new 1 MiB mapping + what else the program touched
check "2nd checkpoint: pages written (${INCR_PAGES:-?}) are fewer than 5% of the full dump's (${FULL_PAGES:-?})" \
  test "${INCR_PAGES:-999999}" -lt $((${FULL_PAGES:-0} / 20))
check "2nd image is under a tenth of the first" test "$(stat -c %s "$T/i2/envrun.img")" -lt $(($(stat -c %s "$T/i1/envrun.img") / 10))
round 2
capture er checkpoint --parent-path ../i2 --stats --image-path "$T/i3" "$ID"
assert_eq "3rd checkpoint (--parent-path ../i2, the tree killed) exits 0" 0 "$RC" || last_cmd_details
check "the checkpointed container is gone" test -z "$(er list -q | grep -x "$ID")"

capture er restore -d --stats --image-path "$T/i3" -b "$B" "$ID"
assert_eq "restore of the 3rd image (two parents) exits 0" 0 "$RC" || last_cmd_details
RESTORED=$(stat_of "pages restored")
check "restore: pages restored (${RESTORED:-?}) cover the mapping" test "${RESTORED:-0}" -gt $((MIB * 256 * 9 / 10))
finish_run "after the chain's restore, every page holds what 2 rounds made of it"

capture er restore -d --image-path "$T/i2" -b "$B" "$ID"
assert_eq "restore of the 2nd image (one parent) exits 0" 0 "$RC" || last_cmd_details
finish_run "after the middle image's restore, every page holds what 1 round made of it"

section "other programs through a chain of two (threads, a fork tree, mprotect'ed and shared memory, timers, signals)"
for name in threads forktree mprotect timer signals; do
  make_bundle "$name" "args('/ckpt_$name')" 'c["process"]["capabilities"] = {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")}'
  cp "$PROGS/ckpt_${name}_static" "$B/rootfs/ckpt_$name"
  out=$T/$name.out
  er run -d -b "$B" "ck-$name" >"$out" 2>&1 </dev/null
  wait_for 20 grep -q READY "$out" || { fail "$name: READY" "$(cat "$out")"; continue; }
  capture er checkpoint --leave-running --track-mem --image-path "$T/$name-1" "ck-$name"
  assert_eq "$name: checkpoint --track-mem exits 0" 0 "$RC" || last_cmd_details
  sleep 0.3
  capture er checkpoint --parent-path ../$name-1 --image-path "$T/$name-2" "ck-$name"
  assert_eq "$name: incremental checkpoint exits 0, no warning" "0 " "$RC $ERR" || last_cmd_details
  capture er restore -d --image-path "$T/$name-2" -b "$B" "ck-$name"
  assert_eq "$name: restore of the chain exits 0" 0 "$RC" || last_cmd_details
  sleep 0.3
  er kill "ck-$name" TERM
  wait_for 20 grep -qE '^(PASS|FAIL)' "$out"
  assert_line_match "$name: the program finds its state intact" "$(cat "$out")" "^PASS $name\$" || cat "$out"
  er delete -f "ck-$name" >/dev/null 2>&1
done
B=$T/dirty

section "the parent chain is checked before anything is restored"
for bad in missing corrupt retaken; do
  mkdir -p "$T/$bad"
  cp -a "$T/i1" "$T/i2" "$T/i3" "$T/$bad/"
done
rm -rf "$T/missing/i1"
expect_fail 7 "i1/envrun.img" er restore -d --image-path "$T/missing/i3" -b "$B" "$ID"
size=$(stat -c %s "$T/corrupt/i1/envrun.img")
# one byte flipped (XOR 0xff: a byte written over it could equal the one there)
byte=$(od -An -tu1 -j $((size / 2)) -N1 "$T/corrupt/i1/envrun.img" | tr -d ' ')
printf "\\$(printf %o $((byte ^ 255)))" | dd of="$T/corrupt/i1/envrun.img" bs=1 seek=$((size / 2)) conv=notrunc status=none
check "the corrupted parent differs from the original" test -n "$(cmp "$T/corrupt/i1/envrun.img" "$T/i1/envrun.img" 2>&1)"
expect_fail 1 "checksum" er restore -d --image-path "$T/corrupt/i3" -b "$B" "$ID"
assert_contains "... naming the parent image" "$ERR" "corrupt/i2/../i1/envrun.img"
cp "$T/i1/envrun.img" "$T/retaken/i2/envrun.img"   # i2's place holds another image
expect_fail 3 "not the image" er restore -d --image-path "$T/retaken/i3" -b "$B" "$ID"
check "no container is left by the refused restores" test -z "$(er list -q | grep -x "$ID")"
assert_no_state "$ID"
check "no process of the refused restores runs" test -z "$(pgrep -f '^/ckpt_dirty ')"

section "checkpoint refusals"
make_bundle dirty2 "args('/ckpt_dirty', '8')"
cp "$PROGS/ckpt_dirty_static" "$B/rootfs/ckpt_dirty"
er run -d -b "$B" ck-plain >"$T/plain.out" 2>&1 </dev/null
wait_for 20 grep -qx READY "$T/plain.out" || fail "plain: READY" "$(cat "$T/plain.out")"
expect_fail 2 "--track-mem needs --leave-running" er checkpoint --track-mem --image-path "$T/p0" ck-plain
capture er checkpoint --leave-running --image-path "$T/p1" ck-plain
assert_eq "a checkpoint without tracking exits 0" 0 "$RC" || last_cmd_details
expect_fail 5 "taken without memory tracking" er checkpoint --leave-running --parent-path ../p1 --image-path "$T/p2" ck-plain
check "... and writes no image" test ! -e "$T/p2/envrun.img"
expect_fail 5 "another process tree" er checkpoint --leave-running --parent-path ../i2 --image-path "$T/p3" ck-plain
expect_fail 7 "p9/envrun.img" er checkpoint --leave-running --parent-path ../p9 --image-path "$T/p4" ck-plain
assert_eq "the container still runs after the refusals" running "$(status ck-plain)"
er delete -f ck-plain >/dev/null 2>&1

section "a process the parent's round did not track is dumped whole, with a warning"
# bash (the root) starts a new sleep on SIGUSR1: that one is in no tracker's round.
setsid bash -c 'trap "sleep 1000 &" USR1; sleep 1000 & while :; do wait; done' >/dev/null 2>&1 </dev/null &
ROOT=$!
PIDS_TO_KILL+=("$ROOT")
wait_for 10 test -n "$(pgrep -P "$ROOT" sleep)"
capture er checkpoint --pid "$ROOT" --leave-running --track-mem --image-path "$T/h1"
assert_eq "host tree: checkpoint --track-mem exits 0" 0 "$RC" || last_cmd_details
kill -USR1 "$ROOT"
wait_for 10 test "$(pgrep -P "$ROOT" sleep | wc -l)" -eq 2
NEW=$(pgrep -n -P "$ROOT" sleep)
capture er checkpoint --pid "$ROOT" --leave-running --parent-path ../h1 --stats --image-path "$T/h2"
assert_eq "host tree: incremental checkpoint exits 0" 0 "$RC" || last_cmd_details
assert_line_match "... warns that the new process is dumped whole" "$ERR" \
  "^envrun: checkpoint: warning: pid $NEW: memory dumped whole: not tracked in the parent image\$"
assert_eq "... and about nothing else" 1 "$(grep -c warning <<<"$ERR")"
check "... the tracked processes still take pages from the parent" test "$(stat_of "pages in parent")" -gt 0
{ pkill -KILL -s "$ROOT"; wait "$ROOT"; } 2>/dev/null

section "dirty's own checks can fail (self-test hooks after two rounds, no checkpoint)"
for brk in 1 2 3; do
  CKPT_SELFTEST_BREAK=$brk "$PROGS/ckpt_dirty" 8 >"$T/brk$brk.out" 2>/dev/null </dev/null &
  p=$!
  PIDS_TO_KILL+=("$p")
  wait_for 10 grep -qx READY "$T/brk$brk.out"
  for r in 1 2; do kill -USR1 "$p"; wait_for 10 grep -qx "ROUND $r" "$T/brk$brk.out"; done
  kill -TERM "$p"
  wait "$p"
  assert_eq "break $brk: exit 1" 1 "$?"
  assert_line_match "break $brk: FAIL naming what differs" "$(cat "$T/brk$brk.out")" '^FAIL dirty: (page|round)'
done
