#!/usr/bin/env bash
# libenvrun-intercept.so fixes, with real programs under LD_PRELOAD (no container):
# hidden names left out of their parent's listing (under a rule or not), syscall(SYS_close
# / SYS_close_range) keeping the library's own fds, a python parent's redirected dir fd
# surviving a vfork child's close_range, and writecopy creates through the absent-lower
# cache. Build products next to $ENVRUN's build tree (override with INTERCEPT_LIB,
# INTERCEPT_MKDB).
source "$(dirname "$0")/lib.sh"

BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
LIB=${INTERCEPT_LIB:-$BUILD/intercept/libenvrun-intercept.so}
MKDB=${INTERCEPT_MKDB:-$BUILD/tests/intercept/envrun-mkdb}
for f in "$LIB" "$MKDB"; do
  [[ -e $f ]] || { fail "build product missing: $f (build envrun-intercept envrun-mkdb)"; exit 1; }
done
PY=/usr/bin/python3

I=/envrun-fx-$$            # inside paths that do not exist on the host
DB=$T/intercept.db
cap() { capture env ENVRUN_INTERCEPT_DB="$DB" LD_PRELOAD="$LIB" "$@"; }

# ---------------------------------------------------------------- the trees
mkdir -p "$T"/{plain/secret,plain/pub,ov/secret,ov/pub,mhost/secret,mhost/hostonly,mout/both,lower/d/sub,upper/d,empty}
echo "s" > "$T/plain/secret/s"; echo "p" > "$T/plain/pub/p"; echo "leak" > "$T/plain/hidden-file"
echo "ok" > "$T/plain/keep"
echo "s" > "$T/ov/secret/s"; echo "o" > "$T/ov/f"
echo "h" > "$T/mhost/secret/h"; echo "o" > "$T/mout/outfile"
echo "lower" > "$T/lower/d/k"; echo "lower-sub" > "$T/lower/d/sub/x"; echo "up" > "$T/upper/d/u"
echo "lower-top" > "$T/lower/top"
chmod -R go+rX "$T"

cat > "$T/spec" <<SPEC
file hide      $T/plain/secret
file hide      $T/plain/hidden-file
file override  $I/ov         $T/ov
file hide      $I/ov/secret
file merge     $T/mhost      $T/mout
file hide      $T/mhost/secret
file hide      /etc/shadow
file writecopy $I/wc         $T/lower  $T/upper
file writecopy $I/wn         $T/empty  $T/wnupper
SPEC
check "envrun-mkdb builds the test database" "$MKDB" "$DB" "$T/spec"

# ---------------------------------------------------------------------------
section "hidden names are left out of their parent's listing"
cat > "$T/list.py" <<'EOF'
import ctypes, glob, os, sys
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
def raw(path):  # getdents64 on an O_DIRECTORY fd, through syscall() (SYS_getdents64)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    buf = ctypes.create_string_buffer(65536)
    names = []
    while True:
        n = libc.syscall(217, fd, buf, 65536)
        if n <= 0: break
        off = 0
        while off < n:
            reclen = int.from_bytes(buf.raw[off + 16:off + 18], "little")
            names.append(buf.raw[off + 19:off + reclen].split(b"\0")[0].decode())
            off += reclen
    os.close(fd)
    return sorted(x for x in names if x not in (".", ".."))
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
print("listdir", sorted(os.listdir(d)))
print("scandir", sorted(e.name for e in os.scandir(d)))
print("fdlist", sorted(os.listdir(fd)))                   # fdopendir
print("glob", sorted(os.path.basename(x) for x in glob.glob(d + "/*")))
print("getdents", raw(d))
EOF
for case in "$T/plain:keep pub" "$I/ov:f pub" "$T/mhost:both hostonly outfile"; do
  dir=${case%%:*}; want=${case#*:}
  cap ls "$dir"; assert_eq "ls $dir omits the hidden names" "$want" "$(echo $OUT)"
  py_want=$(printf "'%s', " $want); py_want="[${py_want%, }]"
  cap $PY "$T/list.py" "$dir"
  assert_eq "$dir: listdir, scandir, fdopendir, glob, getdents64 omit them" \
    "listdir $py_want scandir $py_want fdlist $py_want glob $py_want getdents $py_want" "$(echo $OUT)"
done
cap ls /etc; assert_not_contains "ls /etc: no shadow (hide /etc/shadow, /etc under no rule)" " $(echo $OUT) " " shadow "
PROBE=${INTERCEPT_PROBE:-$BUILD/tests/intercept/intercept-files-probe}
cap "$PROBE" scandir /etc; assert_not_contains "C scandir(3) of /etc: no shadow" " $(echo $OUT) " " shadow "
assert_contains "C scandir(3) of /etc: the other names" " $(echo $OUT) " " passwd "
assert_contains "ls /etc: the rest is there" " $(echo $OUT) " " passwd "
cap find "$T/plain"; assert_not_contains "find (fts: openat + fdopendir) does not list secret/" "$OUT" "secret"
assert_contains "find lists the rest" "$OUT" "$T/plain/pub/p"
cap stat "$T/plain/secret"; assert_eq "stat of a hidden name: ENOENT as before" "1" "$RC"
cap cat "$T/plain/hidden-file"; assert_contains "open of a hidden name: ENOENT" "$ERR" "No such file"
capture ls "$T/plain"; assert_eq "without the library all names are there" "hidden-file keep pub secret" "$(echo $OUT)"
cap sh -c "cd $T/plain && ls"; assert_eq "ls of the cwd (relative '.') omits them" "keep pub" "$(echo $OUT)"

# ---------------------------------------------------------------------------
section "syscall(SYS_close / SYS_close_range) keeps the library's fds"
cat > "$T/sysclose.py" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
path = sys.argv[1]
print(open(path).read().strip())           # opens the rule's layer fd (>= 900)
for fd in range(900, 1100):
    libc.syscall(3, fd)                       # SYS_close
print(open(path).read().strip())
libc.syscall(436, 3, 0xFFFFFFFF, 0)           # SYS_close_range(3, ~0, 0)
print(open(path).read().strip())
r = os.open("/dev/null", os.O_RDONLY)
for fd in range(900, 1100):
    libc.syscall(33, r, fd)                   # SYS_dup2 onto each
    libc.syscall(292, r, fd + 200, 0)         # SYS_dup3 onto each
print(open(path).read().strip())
print(os.path.samefile("/proc/self/fd/900", "/dev/null") or os.path.samefile("/proc/self/fd/1100", "/dev/null"))
EOF
cap $PY "$T/sysclose.py" "$I/ov/f"
assert_eq "after SYS_close of 900..1099, SYS_close_range(3, ~0), SYS_dup2/dup3 onto them the rule still reads" \
  "o o o o True" "$(echo $OUT)"
assert_eq "no error" "" "$ERR"

# ---------------------------------------------------------------------------
section "a vfork child's close_range leaves the parent's dir fd records"
cat > "$T/vfork.py" <<'EOF'
import os, subprocess, sys
d = sys.argv[1]
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
print("before", sorted(os.listdir(fd)))
subprocess.run(["/bin/true"], close_fds=True, check=True)    # vfork + close_range in the child
subprocess.run(["/bin/true"], close_fds=False, check=True)
print("after", sorted(os.listdir(fd)))
with open(os.open("k", os.O_RDONLY, dir_fd=fd)) as f:        # a lower-only name, relative to fd
    print("k", f.read().strip())
with open(os.open("sub/x", os.O_RDONLY, dir_fd=fd)) as f:
    print("sub/x", f.read().strip())
os.close(fd)
EOF
cap $PY "$T/vfork.py" "$I/wc/d"
assert_eq "listing before and after the children is the union" \
  "before ['k', 'sub', 'u'] after ['k', 'sub', 'u'] k lower sub/x lower-sub" "$(echo $OUT)"
assert_eq "no error" "" "$ERR"
if command -v strace >/dev/null; then
  env ENVRUN_INTERCEPT_DB="$DB" LD_PRELOAD="$LIB" strace -f -e trace=vfork,clone,clone3 -o "$T/vf.trace" \
    $PY "$T/vfork.py" "$I/wc/d" >/dev/null 2>&1
  assert_match "python's subprocess really used vfork" "$(cat "$T/vf.trace")" 'vfork|CLONE_VFORK'
fi

# ---------------------------------------------------------------------------
section "writecopy creates: lower directories known absent"
mkdir -p "$T/src/a/b" && echo 1 > "$T/src/a/f1" && echo 2 > "$T/src/a/b/f2" && echo 3 > "$T/src/top"
tar -C "$T/src" -cf "$T/t.tar" a top
cap sh -c "tar -C $I/wn -xf $T/t.tar && cat $I/wn/a/f1 $I/wn/a/b/f2 $I/wn/top"
assert_eq "tar into a writecopy tree over an empty lower, read back" "1 2 3" "$(echo $OUT)"
assert_eq "the files are in upper" "2" "$(cat "$T/wnupper/a/b/f2" 2>&1)"
cap sh -c "rm -r $I/wn/a && echo x > $I/wn/a/b/again"
assert_match "a removed directory's children cannot be created (ENOENT)" "$ERR" "No such file|nonexistent"
cap sh -c "mkdir -p $I/wn/a/b && echo y > $I/wn/a/b/again && cat $I/wn/a/b/again"
assert_eq "made again, created again" "y" "$OUT"
cap sh -c "echo new > $I/wc/d/sub/new && cat $I/wc/d/sub/new $I/wc/d/sub/x"
assert_eq "a new name in a directory lower has: upper, lower's file still read" "new lower-sub" "$(echo $OUT)"
cap $PY -c "import os; os.open('$I/wc/d/k', os.O_CREAT | os.O_EXCL | os.O_WRONLY)"
assert_contains "O_EXCL on a lower file: EEXIST" "$ERR" "File exists"
