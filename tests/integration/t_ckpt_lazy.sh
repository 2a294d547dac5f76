#!/usr/bin/env bash
# Lazy restore (restore --lazy-pages): the private anonymous memory of the restored tree is
# not written before it runs; a page server process answers its faults and copies the rest in
# the background, then ends. Judged by the checkpoint programs (tests/ckpt/*.c: PASS only when
# every page holds what it held). Then: a damaged page payload kills the tree (never zero pages
# in its place), a page server that skips pages is caught by the programs (mutation check), a
# host tree whose shell forks children while its pages come in, and an incremental chain.
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
PROGS=$BUILD/tests/ckpt
[[ -x $PROGS/ckpt_counter_static ]] || { fail "build products missing: $PROGS/ckpt_*_static"; exit 1; }

ckpt_bundle() {  # ckpt_bundle NAME [ARGS...]
  local name=$1; shift
  local args="'/ckpt_$name'"
  for a in "$@"; do args+=", '$a'"; done
  make_bundle "$name" "args($args)" 'c["process"]["capabilities"] = {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")}'
  cp "$PROGS/ckpt_${name}_static" "$B/rootfs/ckpt_$name"
}
stat_of() { grep -E "^  $1: " <<<"$RESTORED" | grep -oE '[0-9]+' | head -1; }
# gone, or a zombie its new parent (a subreaper, or init) has not reaped yet
server_gone() { [[ -n $1 ]] && { ! kill -0 "$1" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]; }; }

# start NAME ID [ARGS...]: run, READY, checkpoint (the container killed) to $T/ID.img
start() {
  local name=$1 id=$2; shift 2
  ckpt_bundle "$name" "$@"
  er run -d -b "$B" "$id" >"$T/$id.out" 2>&1 </dev/null || { fail "$name: run" "$(cat "$T/$id.out")"; return 1; }
  wait_for 20 grep -q READY "$T/$id.out" || { fail "$name: READY" "$(cat "$T/$id.out")"; return 1; }
  sleep 0.3
  capture er checkpoint --image-path "$T/$id.img" "$id"
  assert_eq "$name: checkpoint exits 0" 0 "$RC" || { last_cmd_details; er delete -f "$id" >/dev/null 2>&1; return 1; }
}
# verdict NAME ID WANT: SIGTERM the container, its last verdict line must match WANT
verdict() {
  er kill "$2" TERM
  wait_for 30 grep -qE '^(PASS|FAIL)' "$T/$2.out"
  assert_line_match "$1: $3" "$(cat "$T/$2.out")" "$3" || cat "$T/$2.out"
  er delete -f "$2" >/dev/null 2>&1
}

section "programs restored with --lazy-pages (--stats: waits until every page is in)"
for p in counter threads forktree "bigmem 256"; do
  set -- $p
  name=$1 id=lz-$1
  start "$name" "$id" "${@:2}" || continue
  capture er restore -d --lazy-pages --stats --image-path "$T/$id.img" -b "$B" "$id"
  assert_eq "$name: restore --lazy-pages exits 0" 0 "$RC" || { last_cmd_details; continue; }
  RESTORED=$OUT
  lazy=$(stat_of "pages left lazy") srv=$(stat_of "page server pid") copied=$(stat_of "pages copied lazily")
  check "$name: pages were left to the page server (${lazy:-none})" test "${lazy:-0}" -gt 0
  check "$name: it copied them all in (${copied:-?} of ${lazy:-?}, faults included)" test "${copied:-0}" -ge "${lazy:-1}"
  assert_contains "$name: --stats says when every page was in" "$RESTORED" "time until all in:"
  check "$name: the page server is gone once every page is in" wait_for 10 server_gone "$srv"
  [[ $name == bigmem ]] && check "bigmem: 256 MiB were lazy (${lazy:-0} pages)" test "${lazy:-0}" -ge 65536
  sleep 0.3
  verdict "$name" "$id" "^PASS $name\$"
done

section "without --stats the restore returns at once; the server ends on its own"
start bigmem lz-bg 128 || true
capture er --debug --log "$T/bg.log" restore -d --lazy-pages --image-path "$T/lz-bg.img" -b "$B" lz-bg
assert_eq "restore --lazy-pages -d exits 0" 0 "$RC" || last_cmd_details
assert_line_match "the log names what was left to the page server" "$(cat "$T/bg.log")" 'lazy pages: [0-9]+ pages .* left to the page server'
wait_for 30 grep -q 'lazy pages: every page in' "$T/bg.log"
assert_contains "the page server logs to the restore's log when it is done" "$(cat "$T/bg.log")" "lazy pages: every page in"
check "no page server of this test is left" wait_for 10 test -z "$(pgrep -x envrun-lazy -a | grep -F "$STATE")"
verdict bigmem lz-bg "^PASS bigmem\$"

section "a damaged page payload: the tree is killed, not run with zero pages"
start bigmem lz-bad 64 || true
img=$T/lz-bad.img/envrun.img
size=$(stat -c %s "$img")
off=$((size / 2))
byte=$(od -An -tu1 -j $off -N1 "$img" | tr -d ' ')
printf "\\$(printf %o $((byte ^ 255)))" | dd of="$img" bs=1 seek=$off conv=notrunc status=none
capture er --log "$T/bad.log" restore -d --lazy-pages --stats --image-path "$T/lz-bad.img" -b "$B" lz-bad
RESTORED=$OUT
assert_eq "the restore itself succeeds (the payload is the page server's to read)" 0 "$RC" || last_cmd_details
assert_contains "--stats reports the page server's failure" "$OUT" "lazy pages failed:"
assert_contains "... a checksum mismatch" "$OUT" "checksum mismatch"
assert_line_match "the log says the tree was killed" "$(cat "$T/bad.log")" 'killing the restored tree'
check "the container's program is gone" wait_for 10 test -z "$(pgrep -f '^/ckpt_bigmem 64')"
assert_eq "it never got to a verdict (no PASS, no FAIL)" "" "$(grep -E '^(PASS|FAIL)' "$T/lz-bad.out")"
check "the page server is gone" wait_for 10 server_gone "$(stat_of "page server pid")"
er delete -f lz-bad >/dev/null 2>&1

section "mutation check: a page server that skips pages is caught by the programs"
for p in "bigmem 64" counter; do
  set -- $p
  name=$1 id=lz-mut-$1
  start "$name" "$id" "${@:2}" || continue
  ENVRUN_LAZY_TEST_SKIP=3 capture er restore -d --lazy-pages --stats --image-path "$T/$id.img" -b "$B" "$id"
  assert_eq "$name: restore with the skipping server exits 0" 0 "$RC" || { last_cmd_details; continue; }
  sleep 0.3
  er kill "$id" TERM
  # the program says what differs, glibc finds its heap broken, it crashes or it hangs: never PASS
  wait_for 15 grep -qE "^(PASS|FAIL) $name|Fatal" "$T/$id.out"
  assert_not_contains "$name: the check that passes with a correct server fails" "$(cat "$T/$id.out")" "PASS $name"
  echo "     ($name with the skipping server: $(grep -vx READY "$T/$id.out" | head -1 | cut -c1-100), status $(status "$id"))"
  er delete -f "$id" >/dev/null 2>&1
done

section "a host tree that forks while its pages come in (userfaultfd fork events)"
cat >"$T/forker.sh" <<'SH'
big=$(head -c 8000000 /dev/zero | tr '\0' 'x')   # 8 MB of heap the children inherit
n=0
trap 'echo "PASS forker ${#big} $n"; exit 0' TERM
echo READY
while :; do v=$(echo "${big:n%7000000:5}"); [[ $v == xxxxx ]] || { echo "FAIL forker $n"; exit 1; }; n=$((n + 1)); done
SH
setsid bash "$T/forker.sh" >"$T/forker.out" 2>&1 </dev/null &
FPID=$!
PIDS_TO_KILL+=("$FPID")
wait_for 10 grep -q READY "$T/forker.out"
capture er checkpoint --pid "$FPID" --image-path "$T/forker.img"
assert_eq "forker: checkpoint --pid exits 0" 0 "$RC" || last_cmd_details
wait "$FPID" 2>/dev/null
capture er restore --lazy-pages --stats --image-path "$T/forker.img"
RESTORED=$OUT
assert_eq "forker: restore --lazy-pages exits 0" 0 "$RC" || last_cmd_details
check "forker: its heap was lazy ($(stat_of "pages left lazy") pages)" test "$(stat_of "pages left lazy")" -gt 1000
sleep 0.5
kill -TERM "$FPID" 2>/dev/null
wait_for 10 grep -qE '^(PASS|FAIL)' "$T/forker.out"
assert_line_match "forker: its children (forked from lazily restored memory) saw the heap intact" "$(cat "$T/forker.out")" '^PASS forker 8000000 [1-9]'

section "an incremental chain restored lazily (--parent-path)"
ckpt_bundle counter
er run -d -b "$B" lz-incr >"$T/lz-incr.out" 2>&1 </dev/null
wait_for 20 grep -q READY "$T/lz-incr.out" || fail "incr: READY"
capture er checkpoint --leave-running --track-mem --image-path "$T/incr1" lz-incr
assert_eq "incr: checkpoint --track-mem exits 0" 0 "$RC" || last_cmd_details
sleep 0.3
capture er checkpoint --parent-path ../incr1 --image-path "$T/incr2" lz-incr
assert_eq "incr: incremental checkpoint exits 0" 0 "$RC" || last_cmd_details
capture er restore -d --lazy-pages --stats --image-path "$T/incr2" -b "$B" lz-incr
RESTORED=$OUT
assert_eq "incr: restore --lazy-pages of the chain exits 0" 0 "$RC" || last_cmd_details
check "incr: pages were left to the page server" test "$(stat_of "pages left lazy")" -gt 1000
sleep 0.3
verdict counter lz-incr "^PASS counter\$"

section "a chain whose parent has a damaged page: a lazy restore scans parents' headers only; the page server finds it and kills the tree"
ckpt_bundle bigmem 64
er run -d -b "$B" lz-pbad >"$T/lz-pbad.out" 2>&1 </dev/null
wait_for 20 grep -q READY "$T/lz-pbad.out" || fail "pbad: READY"
capture er checkpoint --leave-running --track-mem --image-path "$T/pbad1" lz-pbad
assert_eq "pbad: checkpoint --track-mem exits 0" 0 "$RC" || last_cmd_details
capture er checkpoint --parent-path ../pbad1 --image-path "$T/pbad2" lz-pbad
assert_eq "pbad: incremental checkpoint exits 0" 0 "$RC" || last_cmd_details
img=$T/pbad1/envrun.img
off=$(( $(stat -c %s "$img") / 2 ))   # 64 MiB of pages: the middle is in a pages payload
byte=$(od -An -tu1 -j $off -N1 "$img" | tr -d ' ')
printf "\\$(printf %o $((byte ^ 255)))" | dd of="$img" bs=1 seek=$off conv=notrunc status=none
check "pbad: the parent differs from what was dumped" test "$(od -An -tu1 -j $off -N1 "$img" | tr -d ' ')" != "$byte"
expect_fail 1 "checksum" er restore -d --image-path "$T/pbad2" -b "$B" lz-pbad
check "pbad: a full restore refuses it before anything runs (no container)" test -z "$(er list -q | grep -x lz-pbad)"
capture er --log "$T/pbad.log" restore -d --lazy-pages --stats --image-path "$T/pbad2" -b "$B" lz-pbad
RESTORED=$OUT
assert_eq "pbad: the lazy restore itself succeeds (parent payloads are the page server's to read)" 0 "$RC" || last_cmd_details
assert_contains "pbad: --stats reports the page server's failure" "$OUT" "checksum mismatch"
check "pbad: the program is gone" wait_for 10 test -z "$(pgrep -f '^/ckpt_bigmem 64')"
assert_eq "pbad: it never got to a verdict" "" "$(grep -E '^(PASS|FAIL)' "$T/lz-pbad.out")"
er delete -f lz-pbad >/dev/null 2>&1

section "a chain whose middle image has a damaged parent-pages list: the lazy restore refuses it"
# The lazy restore reads each parent's headers once and keeps them; a parent-pages payload it
# reads later (by pread) must still have its checksum checked.
ckpt_bundle bigmem 16
er run -d -b "$B" lz-ppbad >"$T/lz-ppbad.out" 2>&1 </dev/null
wait_for 20 grep -q READY "$T/lz-ppbad.out" || fail "ppbad: READY"
capture er checkpoint --leave-running --track-mem --image-path "$T/ppbad1" lz-ppbad
capture er checkpoint --leave-running --track-mem --parent-path ../ppbad1 --image-path "$T/ppbad2" lz-ppbad
capture er checkpoint --parent-path ../ppbad2 --image-path "$T/ppbad3" lz-ppbad
assert_eq "ppbad: a chain of three images exits 0" 0 "$RC" || last_cmd_details
# The offset of the first byte of the first parent-pages section's payload (type 11).
off=$(python3 - "$T/ppbad2/envrun.img" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
at = struct.unpack_from("<I", b, 12)[0]
while at + 48 <= len(b):
    typ, flags, _id, raw, stored = struct.unpack_from("<IIQQQ", b, at)
    if typ == 11 and raw > 0 and not flags & 1:
        print(at + 48); break
    at += 48 + stored
PY
)
check "ppbad: the middle image has a parent-pages section" test -n "$off"
img=$T/ppbad2/envrun.img
byte=$(od -An -tu1 -j "${off:-0}" -N1 "$img" | tr -d ' ')
printf "\\$(printf %o $((byte ^ 1)))" | dd of="$img" bs=1 seek="${off:-0}" conv=notrunc status=none
capture er restore -d --lazy-pages --image-path "$T/ppbad3" -b "$B" lz-ppbad
assert_eq "ppbad: the lazy restore fails" 1 "$RC"
assert_contains "ppbad: ... naming the damaged payload" "$ERR" "parent-pages"
assert_contains "ppbad: ... and its checksum" "$ERR" "payload checksum mismatch"
check "ppbad: no container is left" test -z "$(er list -q | grep -x lz-ppbad)"
check "ppbad: no program is left" wait_for 10 test -z "$(pgrep -f '^/ckpt_bigmem 16')"
er delete -f lz-ppbad >/dev/null 2>&1

section "the page server killed half-way: its watchdog kills the tree (no zero pages)"
start bigmem lz-wd 64 || true
ENVRUN_LAZY_TEST_DELAY_US=100000 capture er --debug --log "$T/wd.log" restore -d --lazy-pages --image-path "$T/lz-wd.img" -b "$B" lz-wd
assert_eq "restore --lazy-pages (a slowed server) exits 0" 0 "$RC" || last_cmd_details
SRV=$(grep -oE 'page server pid [0-9]+' "$T/wd.log" | grep -oE '[0-9]+$')
check "the server runs (pid ${SRV:-?})" kill -0 "${SRV:-0}"
kill -KILL "$SRV" 2>/dev/null
check "the container's program is killed" wait_for 15 test -z "$(pgrep -f '^/ckpt_bigmem 64')"
assert_line_match "the watchdog says why" "$(cat "$T/wd.log")" 'page server died before every page was in: killing the restored tree'
assert_eq "the program never got to a verdict" "" "$(grep -E '^(PASS|FAIL)' "$T/lz-wd.out")"
check "no watchdog is left" wait_for 10 test -z "$(pgrep -x envrun-lazy-wd -a | grep -F "$STATE")"
er delete -f lz-wd >/dev/null 2>&1
