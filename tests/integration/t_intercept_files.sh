#!/usr/bin/env bash
# libenvrun-intercept.so, file rules, with real programs under LD_PRELOAD (no container):
# each mode (override, readonly, hide, merge, writecopy), union listings, whiteouts,
# copy-up, symlink escapes, inside paths from getcwd/realpath/readlink, tar and sqlite3
# into a writecopy tree, python3, fork, a run as nobody, and pass-through when the
# database is missing or corrupt. Build products next to $ENVRUN's build tree
# (override with INTERCEPT_LIB, INTERCEPT_MKDB, INTERCEPT_PROBE).
source "$(dirname "$0")/lib.sh"

BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
LIB=${INTERCEPT_LIB:-$BUILD/intercept/libenvrun-intercept.so}
MKDB=${INTERCEPT_MKDB:-$BUILD/tests/intercept/envrun-mkdb}
PROBE=${INTERCEPT_PROBE:-$BUILD/tests/intercept/intercept-files-probe}
for f in "$LIB" "$MKDB" "$PROBE"; do
  [[ -e $f ]] || { fail "build product missing: $f (build envrun-intercept envrun-mkdb intercept-files-probe)"; exit 1; }
done
PY=/usr/bin/python3

I=/envrun-it-$$            # inside paths that do not exist on the host
DB=$T/intercept.db
# ir CMD...: CMD with the library and the DB.
ir() { ENVRUN_INTERCEPT_DB=$DB LD_PRELOAD=$LIB "$@"; }
# cap CMD...: capture CMD run under the library.
cap() { capture env ENVRUN_INTERCEPT_DB="$DB" LD_PRELOAD="$LIB" "$@"; }

# ---------------------------------------------------------------- the trees
mkdir -p "$T"/{app/sub,app/hidden,ro,secret-dir,mhost/both,mhost/hostonly,mout/both,lower/d,lower/gone,upper,hlower,hupper,nbupper}
echo "app file" > "$T/app/f"
echo "in sub" > "$T/app/sub/s"
echo "must stay hidden" > "$T/app/hidden/x"
echo "read only" > "$T/ro/r"
echo "TOP SECRET" > "$T/secret-dir/s"
echo "NEXT-TO-OUTSIDE" > "$T/secret-sibling"
ln -s "$T/secret-dir/s" "$T/app/esc-abs"        # absolute: an inside path, hidden
ln -s ../secret-sibling "$T/app/esc-rel"         # ../ above the rule's directory
ln -s ../../../../../../../../secret-dir/s "$T/app/sub/esc-deep"
ln -s / "$T/app/rootlink"
ln -s sub/s "$T/app/inlink"                      # stays inside: allowed
echo "host" > "$T/mhost/hostfile"; echo "host-both" > "$T/mhost/both/b"
echo "outside" > "$T/mout/outfile"; echo "outside-both" > "$T/mout/both/b"
echo "lower line" > "$T/lower/l"; echo "keep" > "$T/lower/d/k"; echo "gone" > "$T/lower/gone/g"
echo "to remove" > "$T/lower/rm-me"; echo "to move" > "$T/lower/mv-me"; echo "mode" > "$T/lower/mode"
chmod 644 "$T/lower/mode"
echo "host lower" > "$T/hlower/h"
chown 65534:65534 "$T/nbupper"
chmod -R go+rX "$T"
chmod 750 "$T/mhost/hostonly"

cat > "$T/spec" <<SPEC
file override  $I/app        $T/app
file hide      $I/app/hidden
file readonly  $I/ro         $T/ro
file hide      $T/secret-dir
file merge     $T/mhost      $T/mout
file writecopy $I/wc         $T/lower  $T/upper
file writecopy $T/hlower     -         $T/hupper
file writecopy $I/nb         $T/lower  $T/nbupper
SPEC
check "envrun-mkdb builds the test database" "$MKDB" "$DB" "$T/spec"

# ---------------------------------------------------------------------------
section "pass-through without a usable database"
capture env LD_PRELOAD="$LIB" cat "$T/app/f"
assert_eq "no ENVRUN_INTERCEPT_DB: calls pass, nothing printed" "app file|" "$OUT|$ERR"
capture env ENVRUN_INTERCEPT_DB="$T/missing.db" LD_PRELOAD="$LIB" cat "$T/app/f"
assert_eq "missing DB: the host file is read" "app file" "$OUT"
assert_eq "missing DB: one warning line naming the file" "envrun-intercept: $T/missing.db: No such file or directory" "$ERR"
cp "$DB" "$T/corrupt.db"
printf '\xff' | dd of="$T/corrupt.db" bs=1 seek=200 conv=notrunc status=none
capture env ENVRUN_INTERCEPT_DB="$T/corrupt.db" LD_PRELOAD="$LIB" ls "$T/app"
assert_contains "corrupt DB: host listing still works" "$OUT" "sub"
assert_eq "corrupt DB: exactly one warning line" 1 "$(grep -c . <<<"$ERR")"
assert_contains "corrupt DB: the reason" "$ERR" "checksum mismatch"

# ---------------------------------------------------------------------------
section "override, and hide nested in it"
cap cat "$I/app/f"; assert_eq "cat reads the outside file" "app file" "$OUT"
cap ls "$I/app"; assert_eq "ls lists the outside directory, without the hidden name" "esc-abs esc-rel f inlink rootlink sub" "$(echo $OUT)"
cap stat -c '%s %F' "$I/app/sub/s"; assert_eq "stat sees the outside file" "7 regular file" "$OUT"
cap cp "$I/app/f" "$T/copied"; assert_eq "cp out of the rule" "app file" "$(cat "$T/copied" 2>&1)"
cap sh -c "mkdir $I/app/newdir && echo new > $I/app/newdir/n && mv $I/app/newdir/n $I/app/newdir/m && cat $I/app/newdir/m"
assert_eq "mkdir, write, mv inside the rule" "new" "$OUT"
assert_eq "they happened in the outside tree" "new" "$(cat "$T/app/newdir/m" 2>&1)"
cap rm -r "$I/app/newdir"; [[ ! -e $T/app/newdir ]] && pass "rm -r removes it from the outside tree" || fail "rm -r" "$ERR"
cap cat "$I/app/hidden/x"; assert_contains "nested hide: ENOENT" "$ERR" "No such file or directory"
cap cat "$I/app/inlink"; assert_eq "a relative symlink inside the tree works" "in sub" "$OUT"

# ---------------------------------------------------------------------------
section "symlinks cannot escape a rule"
cap cat "$I/app/esc-abs"; assert_not_contains "absolute symlink to a hidden host file" "$OUT" "TOP SECRET"
assert_contains "... fails with ENOENT" "$ERR" "No such file or directory"
cap cat "$I/app/esc-rel"; assert_not_contains "../ symlink to the outside tree's sibling" "$OUT" "NEXT-TO-OUTSIDE"
cap cat "$I/app/sub/esc-deep"; assert_not_contains "deep ../../ symlink" "$OUT" "TOP SECRET"
cap cat "$I/app/rootlink$T/secret-dir/s"; assert_not_contains "symlink to / then the hidden path" "$OUT" "TOP SECRET"
cap cat "$I/app/rootlink/etc/hostname"; assert_eq "symlink to / reaches visible host files" "$(cat /etc/hostname)" "$OUT"
cap cat "$I/app/sub/../../secret-sibling"; assert_not_contains "lexical .. stays in the inside view" "$OUT" "NEXT-TO-OUTSIDE"
cap $PY -c "print(open('$I/app/esc-rel').read())"; assert_not_contains "python open of the ../ symlink" "$OUT" "NEXT-TO-OUTSIDE"

# ---------------------------------------------------------------------------
section "readonly and hide"
cap cat "$I/ro/r"; assert_eq "readonly: reads" "read only" "$OUT"
cap touch "$I/ro/new"; assert_contains "readonly: create fails with EROFS" "$ERR" "Read-only file system"
cap rm "$I/ro/r"; assert_contains "readonly: unlink fails with EROFS" "$ERR" "Read-only file system"
cap sh -c "echo x >> $I/ro/r"; assert_contains "readonly: append fails" "$ERR" "Read-only file system"
assert_eq "readonly: the file is intact" "read only" "$(cat "$T/ro/r")"
cap ls "$T/secret-dir"; assert_contains "hide: ls of a hidden host dir" "$ERR" "No such file or directory"
cap cat "$T/secret-dir/s"; assert_eq "hide: the hidden file is not read" "" "$OUT"
cap mkdir "$T/secret-dir/x"; [[ $RC -ne 0 && ! -e $T/secret-dir/x ]] && pass "hide: mkdir under it fails" || fail "hide: mkdir" "$ERR"

# ---------------------------------------------------------------------------
section "merge"
cap ls "$T/mhost"; assert_eq "union of outside and host, no duplicates" "both hostfile hostonly outfile" "$(echo $OUT)"
cap cat "$T/mhost/both/b"; assert_eq "a name in both: outside wins" "outside-both" "$OUT"
cap cat "$T/mhost/hostfile"; assert_eq "host-only name" "host" "$OUT"
cap sh -c "echo made > $T/mhost/newfile"
assert_eq "a new file goes to outside" "made" "$(cat "$T/mout/newfile" 2>&1)"
[[ ! -e $T/mhost/newfile ]] && pass "... and not to the host" || fail "merge create touched the host"
cap sh -c "echo deep > $T/mhost/hostonly/nf"
assert_eq "a new file in a host-only dir: parent made in outside" "deep" "$(cat "$T/mout/hostonly/nf" 2>&1)"
assert_eq "... with the host directory's mode" "750" "$(stat -c %a "$T/mout/hostonly" 2>&1)"

# ---------------------------------------------------------------------------
section "writecopy"
cap cat "$I/wc/l"; assert_eq "reads fall through to lower" "lower line" "$OUT"
cap sh -c "echo appended >> $I/wc/l; cat $I/wc/l"
assert_eq "append copies up, then writes" "lower line appended" "$(echo $OUT)"
assert_eq "upper holds the copy" "lower line appended" "$(echo $(cat "$T/upper/l" 2>&1))"
assert_eq "lower is untouched" "lower line" "$(cat "$T/lower/l")"
cap rm "$I/wc/rm-me"; assert_eq "rm of a lower file succeeds" 0 "$RC"
cap cat "$I/wc/rm-me"; assert_contains "... then it is gone inside" "$ERR" "No such file or directory"
[[ -e $T/upper/.wh.rm-me && -e $T/lower/rm-me ]] && pass "whiteout in upper, lower kept" || fail "whiteout" "$(ls -a "$T/upper")"
cap mv "$I/wc/mv-me" "$I/wc/moved"
assert_eq "mv of a lower file" "to move" "$(ir cat "$I/wc/moved" 2>&1)"
cap ls "$I/wc"; assert_eq "union listing: both layers, no whiteouts, no .wh names" "d gone l mode moved" "$(echo $OUT)"
cap rm -r "$I/wc/gone"; assert_eq "rm -r of a lower directory" "0" "$RC" || last_cmd_details
cap ls "$I/wc"; assert_eq "... it is gone from the listing" "d l mode moved" "$(echo $OUT)"
cap sh -c "mkdir $I/wc/gone && ls -A $I/wc/gone"; assert_eq "a directory made again is empty (opaque)" "" "$OUT"
cap chmod 600 "$I/wc/mode"
assert_eq "chmod acts on the copy" "600 644" "$(stat -c %a "$T/upper/mode" 2>&1) $(stat -c %a "$T/lower/mode")"
cap $PROBE getdents "$I/wc"; assert_eq "raw getdents64 lists the union" "d gone l mode moved" "$(echo $(sort <<<"$OUT"))"
cap $PY -c "
import os
print(sorted(os.listdir('$I/wc')))
print(sorted((r, sorted(f)) for r, d, f in os.walk('$I/wc/d')))
open('$I/wc/py.txt', 'w').write('from python')
print(open('$I/wc/py.txt').read())"
assert_eq "python3 listdir/walk/open" "['d', 'gone', 'l', 'mode', 'moved'] [('$I/wc/d', ['k'])] from python" "$(echo $OUT)"
assert_eq "python's file is in upper" "from python" "$(cat "$T/upper/py.txt" 2>&1)"
cap sh -c "echo h2 >> $T/hlower/h"
assert_eq "writecopy over a host path: copy in upper" "host lower h2" "$(echo $(cat "$T/hupper/h" 2>&1))"
assert_eq "... the host file untouched" "host lower" "$(cat "$T/hlower/h")"

section "tar and sqlite3 into a writecopy tree"
mkdir -p "$T/src/pkg/bin" && echo "tool" > "$T/src/pkg/bin/tool" && ln -s bin/tool "$T/src/pkg/link"
tar -C "$T/src" -cf "$T/pkg.tar" pkg
cap tar -C "$I/wc" -xf "$T/pkg.tar"; assert_eq "tar extracts" 0 "$RC"
cap cat "$I/wc/pkg/link"; assert_eq "extracted symlink resolves" "tool" "$OUT"
[[ -f $T/upper/pkg/bin/tool && ! -e $T/lower/pkg ]] && pass "extracted into upper only" || fail "tar layers" "$(find "$T/upper" "$T/lower" | head -20)"
cap sqlite3 "$I/wc/app.db" "create table t(x); insert into t values (42); select x from t;"
assert_eq "sqlite3 writes and reads its database" "42" "$OUT"
[[ -s $T/upper/app.db && ! -e $T/lower/app.db ]] && pass "the database is in upper, lower untouched" || fail "sqlite layers"
assert_eq "sqlite3 reads it back in a new process" "42" "$(ir sqlite3 "$I/wc/app.db" 'select x from t;' 2>&1)"

# ---------------------------------------------------------------------------
section "inside paths: getcwd, realpath, readlink, dirfds, temp files"
cap sh -c "cd $I/app/sub && /bin/pwd -P && realpath ../f && readlink /proc/self/cwd"
assert_eq "pwd -P, realpath, /proc/self/cwd" "$I/app/sub $I/app/f $I/app/sub" "$(echo $OUT)"
cap sh -c "cd / && cat ${I#/}/app/f && cd ${I#/}/app/sub && cat s ../f ../../../etc/hostname"
assert_eq "relative paths from / and from a redirected cwd (.. back to the host)" "app file in sub app file $(cat /etc/hostname)" "$(echo $OUT)"
cap $PROBE fdlink "$I/app/f"; assert_eq "readlink /proc/self/fd/N" "$I/app/f" "$OUT"
cap $PROBE at "$I/app" sub/s; assert_eq "openat relative to a redirected dirfd" "in sub" "$OUT"
cap $PROBE cwdat "$I/app/sub" s; assert_eq "fchdir back into a redirected dir" "$I/app/sub found" "$OUT"
cap $PROBE mkstemp "$I/wc/tmpXXXXXX"
assert_match "mkstemp fills in an inside name" "$OUT" "^$I/wc/tmp[A-Za-z0-9]{6}$"
[[ -f $T/upper/$(basename "$OUT") ]] && pass "... created in upper" || fail "mkstemp layer" "$(ls "$T/upper")"
cap $PROBE errno /etc/hostname; assert_eq "errno untouched by a successful hooked call" "0 1234" "$OUT"
cap $PROBE errno "$I/ro/none"; assert_eq "errno from the real call" "-1 2" "$OUT"
cap $PROBE closeall "$I/app/f"; assert_eq "closefrom/close_range/close-all keep the library's fds" "app file" "$OUT"
cap $PROBE fork "$I/app/f"; assert_eq "a forked child resolves" "app file" "$OUT"
cap $PROBE renameat2 "$I/wc/l" "$I/wc/d/k"; assert_contains "renameat2 NOREPLACE onto a lower name" "$ERR" "File exists"

cat > "$T/loop.sh" <<'LOOP'
cd "$1" && ln -s "$2/loop-b" loop-a && ln -s "$2/loop-a" loop-b
LOOP
bash "$T/loop.sh" "$T/app" "$I/app"
cap cat "$I/app/loop-a"; assert_contains "absolute symlink loop through inside paths: ELOOP" "$ERR" "Too many levels of symbolic links"

# ---------------------------------------------------------------------------
section "control page: meter counters and the live chain"
# intercept/control.h: magic, version, size, enabled, generation, barrier[6], counters[64]
ctl_write() {  # ctl_write MASK: a fresh control page with this enabled mask
  python3 -c 'import struct,sys
page = struct.pack("<8sII", b"ENVRCTL\0", 1, 4096) + struct.pack("<QQ", int(sys.argv[1]), 0)
sys.stdout.buffer.write(page + bytes(4096 - len(page)))' "$1" > "$T/ctl"  # one page, as create makes it
}
ctl_counter() { python3 -c 'import struct,sys
d = open(sys.argv[1], "rb").read(); print(struct.unpack_from("<Q", d, 80 + 8 * int(sys.argv[2]))[0])' "$T/ctl" "$1"; }
ctl_write 15
capture env ENVRUN_INTERCEPT_DB="$DB" ENVRUN_INTERCEPT_CTL="$T/ctl" LD_PRELOAD="$LIB" sh -c "cat $I/app/f; cat $I/app/hidden/x; $PROBE fork $I/app/f"
assert_eq "with a control page: the rules apply" "app file app file" "$(echo $OUT)"
assert_eq "counters: opens, open failures, redirected, denied, processes (sh, 2 cat, probe, its child)" \
  "2 1 2 1 5" "$(ctl_counter 0) $(ctl_counter 1) $(ctl_counter 2) $(ctl_counter 3) $(ctl_counter 13)"
ctl_write 13  # redirect (bit 1) off
capture env ENVRUN_INTERCEPT_DB="$DB" ENVRUN_INTERCEPT_CTL="$T/ctl" LD_PRELOAD="$LIB" cat "$I/app/f"
assert_contains "redirect disabled in the page: the inside path is not mapped" "$ERR" "No such file or directory"
ctl_write 2   # meter off, redirect on
capture env ENVRUN_INTERCEPT_DB="$DB" ENVRUN_INTERCEPT_CTL="$T/ctl" LD_PRELOAD="$LIB" cat "$I/app/f"
assert_eq "meter disabled: redirect still works, nothing counted" "app file 0" "$OUT $(ctl_counter 0)"
printf 'garbage' > "$T/badctl"
capture env ENVRUN_INTERCEPT_DB="$DB" ENVRUN_INTERCEPT_CTL="$T/badctl" LD_PRELOAD="$LIB" cat "$I/app/f"
assert_eq "a bad control page: rules from the DB, one warning" "app file|1" "$OUT|$(grep -c 'envrun-intercept: .*badctl' <<<"$ERR")"

# ---------------------------------------------------------------------------
section "as nobody"
capture setpriv --reuid=65534 --regid=65534 --clear-groups env ENVRUN_INTERCEPT_DB="$DB" LD_PRELOAD="$LIB" \
  sh -c "cat $I/app/f; echo nb >> $I/nb/l; cat $I/nb/l; ls $I/nb"
assert_eq "nobody: reads, copies up, lists" "app file lower line nb d gone l mode mv-me rm-me" "$(echo $OUT)"
assert_eq "nobody's copy in its upper" "65534" "$(stat -c %u "$T/nbupper/l" 2>&1)"
