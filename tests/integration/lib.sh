# Shared helpers for the integration tests (sourced by tests/integration/t_*.sh).
#
# Environment (set by CTest): ENVRUN (the binary), FIXTURE_ROOTFS (busybox rootfs
# built by tests/fixtures/make-rootfs.sh), SRC_DIR (source tree).
# Every test gets a private temp dir $T, a private state root $STATE (--root) and a
# private cgroup prefix; an EXIT trap force-deletes its containers, removes netns,
# kills background helpers, unmounts and removes $T. Checks never abort the script:
# each failure is printed and counted, and the script exits 1 if any check failed.
set -uo pipefail

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=${SRC_DIR:-$(cd "$LIB_DIR/../.." && pwd)}
: "${ENVRUN:?set ENVRUN to the envrun binary}"
TEST_NAME=$(basename "$0" .sh)
ER_TIMEOUT=${ER_TIMEOUT:-30}   # upper bound for any one runtime command

T=$(mktemp -d "/tmp/envrun-it.$TEST_NAME.XXXXXX")
chmod 755 "$T"                  # user-namespaced containers must traverse it
STATE=$T/state
CG_PREFIX="envrun-it-$TEST_NAME-$$"   # one top-level cgroup dir per test run
FAILS=0
CHECKS=0
FAILED_CHECKS=()
NETNS_TO_DELETE=()
PIDS_TO_KILL=()
CLEANUP_DIRS=()   # removed at the end too (outside $T, e.g. on /dev/shm)
STATE_ROOTS=()    # more state roots whose containers the cleanup deletes (an agent's), before $STATE

if [[ -z ${FIXTURE_ROOTFS:-} || ! -x ${FIXTURE_ROOTFS}/bin/busybox ]]; then
  FIXTURE_ROOTFS=${FIXTURE_ROOTFS:-$T/fixture-rootfs}
  "$SRC_DIR/tests/fixtures/make-rootfs.sh" "$FIXTURE_ROOTFS" >/dev/null || {
    echo "FATAL: cannot build the fixture rootfs" >&2; exit 1; }
fi

# ---------------------------------------------------------------- reporting
section() { echo; echo "=== $TEST_NAME: $*"; }
pass() { CHECKS=$((CHECKS + 1)); echo "ok   - $1"; }
fail() {
  CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); FAILED_CHECKS+=("$1")
  echo "FAIL - $1"
  shift
  local line
  for line in "$@"; do printf '       %s\n' "$line"; done
}
# Show the last captured command (for failure details).
last_cmd_details() {
  echo "cmd: ${LAST_CMD:-?}"
  echo "rc: ${RC:-?}"
  echo "stdout: $(head -c 2000 "$T/last.out" 2>/dev/null)"
  echo "stderr: $(head -c 2000 "$T/last.err" 2>/dev/null)"
}

# ---------------------------------------------------------------- running
# er ARGS...: the runtime with this test's state root, bounded in time.
er() { timeout -k 5 "$ER_TIMEOUT" "$ENVRUN" --root "$STATE" "$@"; }

# capture CMD...: run with stdout/stderr into files (never a pipe: a detached
# container would keep a pipe open). Sets RC, OUT, ERR, LAST_CMD. Never fails.
capture() {
  LAST_CMD="$*"
  "$@" >"$T/last.out" 2>"$T/last.err" </dev/null
  RC=$?
  OUT=$(cat "$T/last.out")
  ERR=$(cat "$T/last.err")
  return 0
}

# check DESC CMD...: pass if CMD succeeds.
check() {
  local desc=$1; shift
  capture "$@"
  if [[ $RC -eq 0 ]]; then pass "$desc"; else fail "$desc" "$(last_cmd_details)"; return 1; fi
}

# expect_ok DESC CMD...: same as check (reads better next to expect_fail).
expect_ok() { check "$@"; }

# expect_fail CODE "message substring" CMD...: CMD must exit with CODE and say SUBSTRING on stderr.
expect_fail() {
  local code=$1 needle=$2; shift 2
  capture "$@"
  local desc="exit $code and \"$needle\" from: $*"
  if [[ $RC -ne $code ]]; then
    fail "$desc" "wrong exit code $RC (want $code)" "$(last_cmd_details)"; return 1
  fi
  if [[ $ERR != *"$needle"* ]]; then
    fail "$desc" "stderr lacks \"$needle\"" "$(last_cmd_details)"; return 1
  fi
  pass "$desc"
}

assert_eq() {  # assert_eq DESC EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1" "expected: [$2]" "actual:   [$3]"; return 1; fi
}
assert_contains() {  # assert_contains DESC HAYSTACK NEEDLE
  if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1" "missing: [$3]" "in: [$2]"; return 1; fi
}
assert_not_contains() {
  if [[ "$2" != *"$3"* ]]; then pass "$1"; else fail "$1" "unexpected: [$3]" "in: [$2]"; return 1; fi
}
assert_match() {  # assert_match DESC STRING ERE
  if [[ "$2" =~ $3 ]]; then pass "$1"; else fail "$1" "no match for /$3/" "in: [$2]"; return 1; fi
}
assert_line_match() {  # assert_line_match DESC TEXT ERE: some line of TEXT matches ERE
  if grep -Eq -- "$3" <<<"$2"; then pass "$1"; else fail "$1" "no line matches /$3/" "in: [$2]"; return 1; fi
}

# wait_for TIMEOUT_SECONDS CMD...: poll (every 0.1 s) until CMD succeeds. Bounded.
wait_for() {
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  while ((SECONDS < deadline)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "$@" >/dev/null 2>&1
}

# json_get EXPR: read JSON on stdin, print eval(EXPR) with the document as d.
json_get() {
  python3 -c 'import json,sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$1"
}

# status ID: the container's status from `state` ("" when state fails).
status() { er state "$1" 2>/dev/null </dev/null | json_get 'd["status"]' 2>/dev/null; }
state_pid() { er state "$1" 2>/dev/null </dev/null | json_get 'd["pid"]' 2>/dev/null; }
# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
  [[ $1 =~ ^[1-9][0-9]*$ ]] || return 1
  local st
  st=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z && $st != X ]]
}
status_is() { [[ "$(status "$1")" == "$2" ]]; }

# wait_status ID STATUS [TIMEOUT]: assert that ID reaches STATUS within TIMEOUT seconds.
wait_status() {
  local id=$1 want=$2 limit=${3:-15}
  if wait_for "$limit" status_is "$id" "$want"; then
    pass "$id reaches status $want"
  else
    fail "$id reaches status $want" "status is [$(status "$id")]" "state: $(er state "$id" 2>&1 </dev/null)"
    return 1
  fi
}

# ---------------------------------------------------------------- bundles
# make_bundle NAME [PYTHON_STATEMENT...]: $T/NAME with a private copy of the
# fixture rootfs and a config.json (see bundle.py for the helpers the statements
# may use: args, script, ns_set, ns_remove, mount, caps, hook, c, B).
# Sets B to the bundle dir; the cgroup path is /$CG_PREFIX/NAME.
make_bundle() {
  local name=$1; shift
  B=$T/$name
  rm -rf "$B"
  mkdir -p "$B"
  chmod 755 "$B"
  cp -a "$FIXTURE_ROOTFS" "$B/rootfs"
  python3 "$LIB_DIR/bundle.py" "$B" "/$CG_PREFIX/$name" "$@" || {
    fail "make_bundle $name: bundle.py failed"; return 1; }
}
cgroup_path_of() { echo "/$CG_PREFIX/$1"; }

# Every cgroup directory of bundle NAME that exists (v1 hierarchies + unified).
cgroup_dirs_of() {
  local d
  for d in /sys/fs/cgroup/*/"$CG_PREFIX/$1" /sys/fs/cgroup/"$CG_PREFIX/$1"; do
    [[ -d $d ]] && echo "$d"
  done
  return 0
}

# Cgroup layout: v1 or hybrid (controllers under /sys/fs/cgroup/<controller>) or v2 (unified).
if [[ $(stat -f -c %T /sys/fs/cgroup 2>/dev/null) == cgroup2fs ]]; then CGROUP_V2=1; else CGROUP_V2=0; fi
# cg_file CONTROLLER FILE NAME: FILE in bundle NAME's cgroup (v1: that controller's hierarchy).
cg_file() {
  if ((CGROUP_V2)); then echo "/sys/fs/cgroup/$CG_PREFIX/$3/$2"; else echo "/sys/fs/cgroup/$1/$CG_PREFIX/$3/$2"; fi
}

assert_no_state() {  # assert_no_state ID
  if [[ -e $STATE/$1 ]]; then
    fail "no state dir left for $1" "$STATE/$1 exists: $(ls -A "$STATE/$1" 2>&1 | tr '\n' ' ')"
    return 1
  fi
  pass "no state dir left for $1"
}
assert_no_cgroup() {  # assert_no_cgroup BUNDLE_NAME
  local left
  left=$(cgroup_dirs_of "$1")
  if [[ -n $left ]]; then fail "no cgroup dirs left for $1" $left; return 1; fi
  pass "no cgroup dirs left for $1"
}

# ---------------------------------------------------------------- two hosts
# two_hosts TAG: the network namespaces $NS_A and $NS_B (set by the caller) joined by a
# veth pair TAG-a-PID / TAG-b-PID with $IP_A and $IP_B (/24), loopback up in both; both
# deleted at the end. The migration tests' two "hosts".
two_hosts() {
  local a="$1-a-$$" b="$1-b-$$"
  ip netns add "$NS_A" && NETNS_TO_DELETE+=("$NS_A")
  ip netns add "$NS_B" && NETNS_TO_DELETE+=("$NS_B")
  ip link add "$a" netns "$NS_A" type veth peer name "$b" netns "$NS_B" ||
    { fail "veth pair between the two namespaces"; exit 1; }
  ip -n "$NS_A" addr add "$IP_A/24" dev "$a" && ip -n "$NS_A" link set "$a" up && ip -n "$NS_A" link set lo up
  ip -n "$NS_B" addr add "$IP_B/24" dev "$b" && ip -n "$NS_B" link set "$b" up && ip -n "$NS_B" link set lo up
}

# ---------------------------------------------------------------- cleanup
cleanup() {
  local id p ns m
  for p in "${PIDS_TO_KILL[@]}"; do kill -9 "$p" 2>/dev/null; done
  local root d
  for root in "${STATE_ROOTS[@]}" "$STATE"; do
    [[ -d $root ]] || continue
    for d in "$root"/*/; do
      [[ -d $d ]] || continue
      id=$(basename "$d")
      timeout -k 2 20 "$ENVRUN" --root "$root" delete --force "$id" >/dev/null 2>&1 </dev/null
      if [[ -d $root/$id ]]; then echo "cleanup: container $id could not be deleted" >&2; fi
    done
  done
  for ns in "${NETNS_TO_DELETE[@]}"; do ip netns delete "$ns" 2>/dev/null; done
  # Leftover cgroups of this test (deepest first); only empty ones can go.
  for m in /sys/fs/cgroup/*/"$CG_PREFIX" /sys/fs/cgroup/"$CG_PREFIX"; do
    [[ -d $m ]] || continue
    find "$m" -depth -type d -exec rmdir {} + 2>/dev/null
    [[ -d $m ]] && echo "cleanup: cgroup $m left behind" >&2
  done
  # Anything still mounted under $T (should never happen: containers have their own mount ns).
  awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf --one-file-system "$T"
  for m in "${CLEANUP_DIRS[@]}"; do rm -rf --one-file-system "$m"; done
}

on_exit() {
  local rc=$?
  cleanup
  echo
  if ((FAILS > 0)); then
    echo "$TEST_NAME: $FAILS of $CHECKS checks FAILED:"
    local f
    for f in "${FAILED_CHECKS[@]}"; do echo "  - $f"; done
    exit 1
  fi
  if ((rc != 0 && rc != 77)); then echo "$TEST_NAME: aborted (exit $rc) after $CHECKS checks"; exit "$rc"; fi
  ((rc == 77)) && exit 77
  echo "$TEST_NAME: all $CHECKS checks passed"
  exit 0
}
trap on_exit EXIT
trap 'exit 130' INT TERM
