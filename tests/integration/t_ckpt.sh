#!/usr/bin/env bash
# Checkpoint/restore with envrun's own engine, judged by the programs themselves
# (tests/ckpt/*.c: start, reach a known state, READY, wait for SIGTERM, verify, PASS/FAIL).
# Each program runs as the process of a container (busybox rootfs, own pid namespace,
# static binary); the container is checkpointed (and so killed and deleted), restored
# from the image, then sent SIGTERM: the program must find its whole state intact.
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
PROGS=$BUILD/tests/ckpt
[[ -x $PROGS/ckpt_counter_static ]] || { fail "build products missing: $PROGS/ckpt_*_static"; exit 1; }

# ckpt_bundle NAME [ARGS...]: a bundle running /ckpt_NAME ARGS with stdout to $T/NAME.out
# (CKPT_BUNDLE_EXTRA: one more bundle.py statement)
ckpt_bundle() {
  local name=$1; shift
  local args="'/ckpt_$name'"
  for a in "$@"; do args+=", '$a'"; done
  make_bundle "$name" "args($args)" 'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"] for k in ("bounding", "effective", "permitted")}' "${CKPT_BUNDLE_EXTRA:-pass}"
  cp "$PROGS/ckpt_${name}_static" "$B/rootfs/ckpt_$name"
}

# round_trip NAME ID [ARGS...]: run, READY, checkpoint, restore, SIGTERM, PASS
round_trip() {
  local name=$1 id=$2; shift 2
  local out=$T/$id.out img=$T/$id.img
  ckpt_bundle "$name" "$@"
  er run -d -b "$B" "$id" >"$out" 2>&1 </dev/null || { fail "$name: run" "$(cat "$out")"; return; }
  wait_for 20 grep -q READY "$out" || { fail "$name: READY" "$(cat "$out")"; return; }
  sleep 0.3
  capture er checkpoint ${CKPT_ARGS:-} --image-path "$img" "$id"
  assert_eq "$name: checkpoint exits 0" 0 "$RC" || { last_cmd_details; er delete -f "$id" >/dev/null 2>&1; return; }
  check "$name: the image is complete (no .partial left)" test -s "$img/envrun.img" -a ! -e "$img/envrun.img.partial"
  check "$name: the checkpointed container is gone" test -z "$(er list -q | grep -x "$id")"
  capture er restore -d --image-path "$img" -b "$B" "$id"
  assert_eq "$name: restore exits 0" 0 "$RC" || { last_cmd_details; return; }
  sleep 0.3
  check "$name: kill -TERM the restored container" er kill "$id" TERM
  wait_for 20 grep -qE '^(PASS|FAIL)' "$out"
  assert_line_match "$name: the program finds its state intact" "$(cat "$out")" "^PASS $name\$" || cat "$out"
  er delete -f "$id" >/dev/null 2>&1
}

section "each program, checkpointed, killed, restored in a new container"
for p in counter threads pipe fileoffset deletedfile signals altstack timer deadcwd forktree mprotect sockets anonfds; do
  case $p in
    fileoffset) round_trip $p ck-$p /tmp/ckpt_fileoffset.dat ;;
    deletedfile|deadcwd) round_trip $p ck-$p /tmp ;;
    anonfds) round_trip $p ck-$p devfiles ;;  # + /dev/null and a /dev/shm file: the container's own tmpfs mounts
    *) round_trip $p ck-$p ;;
  esac
done
round_trip bigmem ck-bigmem 256

section "established TCP connections: refused by default, carried over with --tcp-established"
ckpt_bundle tcp
er run -d -b "$B" ck-tcp0 >"$T/ck-tcp0.out" 2>&1 </dev/null
wait_for 20 grep -q READY "$T/ck-tcp0.out" || fail "tcp: READY" "$(cat "$T/ck-tcp0.out")"
capture er checkpoint --image-path "$T/ck-tcp0.img" ck-tcp0
ERRTXT=$(cat "$T/last.err")
check "tcp: without --tcp-established the checkpoint fails" test "$RC" -ne 0
assert_line_match "tcp: ... naming the connection and the option" "$ERRTXT" 'fd [0-9]+: inet stream 127\.0\.0\.1:[0-9]+ connected to 127\.0\.0\.1:[0-9]+: an established TCP connection \(checkpoint with --tcp-established\)'
check "tcp: nothing is left behind (not even the image directory it made)" test ! -e "$T/ck-tcp0.img"
assert_eq "tcp: the container still runs" running "$(er state ck-tcp0 | json_get "d['status']")"
er delete -f ck-tcp0 >/dev/null 2>&1
CKPT_ARGS=--tcp-established round_trip tcp ck-tcp

section "seccomp filters (shared by two threads) come back, with and without no_new_privs"
round_trip seccomp ck-seccomp
CKPT_BUNDLE_EXTRA='c["process"]["noNewPrivileges"] = False' round_trip seccomp ck-seccomp-root root


section "--leave-running, two checkpoints in a row, zstd, --stats, two restores from one image"
ckpt_bundle counter
OUT2=$T/ck2.out
: >"$OUT2"
er run -d -b "$B" ck2 >>"$OUT2" 2>&1 </dev/null  # O_APPEND: every restored run's PASS line is kept
wait_for 20 grep -q READY "$OUT2" || fail "counter: READY"
privs() { grep -E '^(Uid|Gid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "/proc/$(er state ck2 | json_get "d['pid']")/status"; }
PRIVS=$(privs)
capture er checkpoint --leave-running --image-path "$T/ck2-a" ck2
assert_eq "checkpoint --leave-running exits 0" 0 "$RC" || last_cmd_details
assert_eq "the container still runs after --leave-running" running "$(er state ck2 | json_get "d['status']")"
capture er checkpoint --compress zstd --stats --image-path "$T/ck2-b" ck2
assert_eq "second checkpoint (zstd, --stats) exits 0" 0 "$RC" || last_cmd_details
assert_line_match "--stats: frozen time" "$OUT" '^  frozen time: +[0-9]+ us$'
assert_line_match "--stats: pages written" "$OUT" '^  pages written: +[1-9][0-9]* *$'
check "the zstd image is smaller than the plain one" test "$(stat -c %s "$T/ck2-b/envrun.img")" -lt "$(stat -c %s "$T/ck2-a/envrun.img")"
for img in ck2-b ck2-b ck2-a; do
  capture er restore -d --image-path "$T/$img" -b "$B" ck2
  assert_eq "restore from $img exits 0" 0 "$RC" || last_cmd_details
  assert_eq "restore from $img: ids, capability sets and no_new_privs as before" "$PRIVS" "$(privs)"
  sleep 0.2
  er kill ck2 TERM
  n=$(grep -c '^PASS counter$' "$OUT2")
  wait_for 20 test "$(grep -cE '^(PASS|FAIL)' "$OUT2")" -gt "$((n))" 2>/dev/null
  sleep 0.3
  er delete -f ck2 >/dev/null 2>&1
done
assert_eq "three restores (twice from one image, once from the --leave-running one): three PASS lines" 3 "$(grep -c '^PASS counter$' "$OUT2")" || cat "$OUT2"

section "--stream: checkpoint into a pipe that restore reads at the same time (another id)"
ckpt_bundle counter
OUTS=$T/ck-stream.out
er run -d -b "$B" ck-stream >"$OUTS" 2>&1 </dev/null
wait_for 20 grep -q READY "$OUTS" || fail "stream: READY" "$(cat "$OUTS")"
# the restore side: the same bundle under its own cgroup (both containers exist for a moment)
cp -a "$B" "$T/stream-bundle"
python3 -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["linux"]["cgroupsPath"] += "-2"; json.dump(c, open(p, "w"))' "$T/stream-bundle/config.json"
( timeout -k 5 60 "$ENVRUN" --root "$STATE" checkpoint --stream 3 ck-stream 3>&1 >"$T/stream-ck.out" 2>"$T/stream-ck.err" |
  timeout -k 5 60 "$ENVRUN" --root "$STATE" restore --stream 0 -d -b "$T/stream-bundle" ck-stream-2 >"$T/stream-rs.out" 2>"$T/stream-rs.err"
  echo "${PIPESTATUS[*]}" >"$T/stream.rc" )
assert_eq "stream: checkpoint and restore both exit 0" "0 0" "$(cat "$T/stream.rc")" || cat "$T/stream-ck.err" "$T/stream-rs.err"
check "stream: the checkpointed container is gone" test -z "$(er list -q | grep -x ck-stream)"
er kill ck-stream-2 TERM
wait_for 20 grep -qE '^(PASS|FAIL)' "$OUTS"
assert_line_match "stream: the program finds its state intact" "$(cat "$OUTS")" '^PASS counter$' || cat "$OUTS"
er delete -f ck-stream-2 >/dev/null 2>&1
( "$ENVRUN" --root "$STATE" restore --stream 0 -d -b "$T/stream-bundle" ck-stream-3 < <(head -c 20000 "$T/ck2-a/envrun.img") >"$T/last.out" 2>"$T/last.err"; echo $? >"$T/stream.rc" )
ERRTXT=$(cat "$T/last.err")
check "stream: a truncated stream fails" test "$(cat "$T/stream.rc")" -ne 0
assert_contains "stream: ... saying so" "$ERRTXT" "truncated"
check "stream: and leaves no container" test -z "$(er list -q | grep -x ck-stream-3)"

section "--hold-fd: the stopped tree waits after its image; 'r' lets it run on, 'k' kills it; --parent-stub"
ckpt_bundle counter
OUTH=$T/ck-hold.out
er run -d -b "$B" ck-hold >"$OUTH" 2>&1 </dev/null
wait_for 20 grep -q READY "$OUTH" || fail "hold: READY" "$(cat "$OUTH")"
HPID=$(er state ck-hold | json_get "d['pid']")
expect_fail 2 "--hold-fd: not with --leave-running" er checkpoint --stream 1 --hold-fd 0 --leave-running ck-hold
mkfifo "$T/hold.fifo"
exec 7<>"$T/hold.fifo"
hold_ckpt() {  # hold_ckpt N: checkpoint ck-hold with --hold-fd on the fifo; sets CK
  timeout -k 5 60 "$ENVRUN" --root "$STATE" checkpoint --stream 3 --hold-fd 4 --stats ck-hold \
    3>"$T/hold$1.img" 4<&7 >"$T/hold$1.out" 2>"$T/hold$1.err" &
  CK=$!
  wait_for 20 grep -q "image whole" "$T/hold$1.out" || fail "hold $1: image whole" "$(cat "$T/hold$1.err")"
}
hold_ckpt 1
assert_contains "hold: the tree is stopped while held" "$(grep '^State:' "/proc/$HPID/status")" "t (tracing stop)"
check "hold: the image is complete before the decision" test "$(stat -c %s "$T/hold1.img")" -gt 4096
printf r >&7
wait "$CK"
assert_eq "hold 'r': checkpoint exits 0" 0 "$?"
assert_eq "hold 'r': the container runs on" running "$(er state ck-hold | json_get "d['status']")"
# Running or sleeping, no longer in tracing stop (a counter may be caught mid-step).
check "hold 'r': its init runs again" grep -Eq '^State:\s+[RS] ' "/proc/$HPID/status"
# --parent-stub: a round's inventory alone is enough to be the next round's parent
capture er checkpoint --stream 1 --leave-running --track-mem --parent-stub --image-path "$T/stub0" ck-hold
assert_eq "stub: checkpoint --parent-stub exits 0" 0 "$RC" || last_cmd_details
check "stub: the stub image is small (the inventory alone)" test "$(stat -c %s "$T/stub0/envrun.img")" -lt 65536
mkdir "$T/stub1"
( "$ENVRUN" --root "$STATE" checkpoint --stream 3 --leave-running --parent-path ../stub0 --image-path "$T/stub1" --stats ck-hold \
    3>"$T/stub1.img" >"$T/stub1.out" 2>"$T/stub1.err"; echo $? >"$T/stub1.rc" )
assert_eq "stub: a checkpoint with the stub as its parent exits 0" 0 "$(cat "$T/stub1.rc")" || cat "$T/stub1.err"
assert_line_match "stub: ... and finds the parent's pages" "$(cat "$T/stub1.out")" '^  pages in parent: +[1-9][0-9]* *$'
expect_fail 2 "--parent-stub: only with --stream" er checkpoint --parent-stub --image-path "$T/stub2" ck-hold
capture er checkpoint --stream 1 --leave-running --parent-stub --parent-path ../stub-none --image-path "$T/stub3" ck-hold
check "stub: a checkpoint whose parent is missing fails" test "$RC" -ne 0
check "stub: ... and leaves neither the stub nor its directory" test ! -e "$T/stub3"
hold_ckpt 2
printf k >&7
wait "$CK"
assert_eq "hold 'k': checkpoint exits 0" 0 "$?"
check "hold 'k': the container is gone" test -z "$(er list -q | grep -x ck-hold)"
dead() { [[ ! -e /proc/$1 ]] || grep -qE '^State:[[:space:]]+(Z|X)' "/proc/$1/status"; }  # gone, or a zombie its parent reaps
check "hold 'k': its init is dead" dead "$HPID"
exec 7>&-

section "a damaged image is refused before anything runs"
mkdir -p "$T/trunc" "$T/flip"
size=$(stat -c %s "$T/ck2-a/envrun.img")
head -c $((size / 2)) "$T/ck2-a/envrun.img" >"$T/trunc/envrun.img"
expect_fail 1 "truncated" er restore -d --image-path "$T/trunc" -b "$B" ck3
check "no container left by the refused restore" test -z "$(er list -q | grep -x ck3)"
cp "$T/ck2-a/envrun.img" "$T/flip/envrun.img"
printf '\x55' | dd of="$T/flip/envrun.img" bs=1 seek=$((size / 3)) conv=notrunc status=none
expect_fail 1 "checksum" er restore -d --image-path "$T/flip" -b "$B" ck3
check "no process of the refused restores runs" test -z "$(pgrep -f /ckpt_counter)"
expect_fail 2 "give a container id" er checkpoint --image-path "$T/x"
expect_fail 4 "" er checkpoint --image-path "$T/x" nosuch
expect_fail 4 "pid 999999: no such process" er checkpoint --pid 999999 --image-path "$T/nopid"
check "no image written for a missing pid" test ! -e "$T/nopid/envrun.img" -a ! -e "$T/nopid/envrun.img.partial"

section "restore into a fresh container directory (the bundle copied elsewhere, the original removed, another id)"
ckpt_bundle fileoffset /tmp/ckpt_fileoffset.dat
OUTF=$T/ck-fresh.out
er run -d -b "$B" ck-fresh >"$OUTF" 2>&1 </dev/null
wait_for 20 grep -q READY "$OUTF" || fail "fresh: READY" "$(cat "$OUTF")"
capture er checkpoint --image-path "$T/ck-fresh.img" ck-fresh
assert_eq "fresh: checkpoint exits 0" 0 "$RC" || last_cmd_details
cp -a "$B" "$T/fresh-bundle" && rm -rf "$B"
capture er restore -d --image-path "$T/ck-fresh.img" -b "$T/fresh-bundle" ck-fresh-2
assert_eq "fresh: restore into the copy as ck-fresh-2 exits 0" 0 "$RC" || last_cmd_details
FPID=$(er state ck-fresh-2 | json_get "d['pid']")
FILE_FD=$(ls -l "/proc/$FPID/fd" | awk '/ckpt_fileoffset.dat/ {print $9; exit}')
assert_eq "fresh: the restored process has the new rootfs's data file open (same device and inode)" \
  "$(stat -c %d:%i "$T/fresh-bundle/rootfs/tmp/ckpt_fileoffset.dat")" "$(stat -L -c %d:%i "/proc/$FPID/fd/${FILE_FD:-none}" 2>&1)"
er kill ck-fresh-2 TERM
wait_for 20 grep -qE '^(PASS|FAIL)' "$OUTF"
assert_line_match "fresh: the program finds its state intact" "$(cat "$OUTF")" '^PASS fileoffset$' || cat "$OUTF"
er delete -f ck-fresh-2 >/dev/null 2>&1

section "a container without its own pid namespace cannot take the old pids: refused up front"
cp -a "$T/fresh-bundle" "$T/nopidns-bundle"
python3 "$LIB_DIR/bundle.py" "$T/nopidns-bundle" "/$CG_PREFIX/nopidns" 'args("/ckpt_fileoffset", "/tmp/ckpt_fileoffset.dat")' 'ns_remove("pid")'
expect_fail 2 'linux.namespaces has no new "pid" namespace' er restore -d --image-path "$T/ck-fresh.img" -b "$T/nopidns-bundle" ck-nopidns
check "no container ck-nopidns is left" test -z "$(er list -q | grep -x ck-nopidns)"

section "a restore that fails half-way leaves nothing behind"
rm -f "$T/fresh-bundle/rootfs/tmp/ckpt_fileoffset.dat"   # the image's open file is gone
capture er restore -d --image-path "$T/ck-fresh.img" -b "$T/fresh-bundle" ck-fresh-3
ERRTXT=$(cat "$T/last.err")
check "restore without the file the image has open fails" test "$RC" -ne 0
assert_contains "... naming the file" "$ERRTXT" "ckpt_fileoffset.dat"
check "no container ck-fresh-3 is left" test -z "$(er list -q | grep -x ck-fresh-3)"
assert_no_state ck-fresh-3
check "no process is left in the bundle's cgroup" test -z "$(cat $(cgroup_dirs_of fileoffset | sed 's|$|/cgroup.procs|') 2>/dev/null)"
