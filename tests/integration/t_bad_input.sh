#!/usr/bin/env bash
# Bad input: every case exits with its documented code, says what is wrong
# (file, field, reason) on stderr, and leaves no state behind.
#   2 usage, 3 bundle/config invalid, 4 not found, 5 exists / wrong state, 6 process not startable
source "$(dirname "$0")/lib.sh"

# bad_create CODE NEEDLE ID [ERE]: `create` of bundle $B must fail with CODE naming NEEDLE
# (and matching ERE when given), and leave neither a state dir nor cgroups.
bad_create() {
  local code=$1 needle=$2 id=$3 ere=${4:-}
  expect_fail "$code" "$needle" er create -b "$B" "$id"
  [[ -z $ere ]] || assert_match "message of $id matches /$ere/" "$ERR" "$ere"
  assert_eq "error is one line on stderr ($id)" 1 "$(grep -c . <<<"$ERR")"
  assert_no_state "$id"
  assert_no_cgroup "$(basename "$B")"
}

# ---------------------------------------------------------------------------
section "bundle and config errors (exit 3)"
B=$T/no-such-bundle
bad_create 3 "$T/no-such-bundle" b-missing

mkdir -p "$T/empty-bundle"; B=$T/empty-bundle
bad_create 3 "config.json" b-noconfig

make_bundle badjson
cat >"$B/config.json" <<'JSON'
{
  "ociVersion": "1.0.2",
  "process": {"args": ["sh"],, "cwd": "/"},
  "root": {"path": "rootfs"}
}
JSON
bad_create 3 "config.json:3" b-json 'config\.json:3'

make_bundle badyaml
rm -f "$B/config.json"
cat >"$B/config.yaml" <<'YAML'
ociVersion: 1.0.2
process:
  args: [sh]
  cwd: /
  - stray
root: {path: rootfs}
YAML
bad_create 3 "config.yaml:5:" b-yaml 'config\.yaml:5:[0-9]+'

make_bundle badtype 'c["process"]["user"]["uid"]="0"'
bad_create 3 "process.user.uid" b-type

make_bundle noargs 'c["process"]["args"]=[]'
bad_create 3 "process.args" b-noargs

make_bundle escape 'c["root"]["path"]="../../etc"'
bad_create 3 "root.path" b-escape

make_bundle norootfs 'c["root"]["path"]="missing-rootfs"'
bad_create 3 "missing-rootfs" b-norootfs

make_bundle bad_ns 'c["linux"]["namespaces"].append({"type":"bogus"})'
bad_create 3 "bogus" b-badns

# ---------------------------------------------------------------------------
section "process cannot be started (exit 6)"
make_bundle nocmd 'args("/bin/no-such-cmd", "x")'
expect_fail 6 "/bin/no-such-cmd" er run -b "$B" b-nocmd
assert_no_state b-nocmd
assert_no_cgroup nocmd
bad_create 6 "/bin/no-such-cmd" b-nocmd-create

make_bundle nocmdpath 'args("no-such-cmd2")'
expect_fail 6 "no-such-cmd2" er run -b "$B" b-nocmd2
assert_no_state b-nocmd2
assert_no_cgroup nocmdpath

# ---------------------------------------------------------------------------
section "usage errors (exit 2)"
expect_fail 2 "frobnicate" er frobnicate
expect_fail 2 "--no-such-flag" er create --no-such-flag -b "$T/x" b-flag
assert_no_state b-flag
expect_fail 2 "" er start            # missing the id
make_bundle escid 'args("true")'
capture er create -b "$B" ../escaped-id
[[ $RC -ne 0 ]] && pass "an id with a slash is refused (exit $RC)" || fail "an id with a slash is refused"
[[ ! -e $T/escaped-id ]] && pass "no state written outside the root" || fail "no state written outside the root" "$T/escaped-id exists"
er delete --force ../escaped-id >/dev/null 2>&1 </dev/null

# ---------------------------------------------------------------------------
section "unknown container (exit 4)"
expect_fail 4 "ghost" er state ghost
expect_fail 4 "ghost" er kill ghost KILL
expect_fail 4 "ghost" er delete ghost
expect_fail 4 "ghost" er start ghost
expect_fail 4 "ghost" er exec ghost true
assert_no_state ghost

# ---------------------------------------------------------------------------
section "existing container / wrong state (exit 5)"
make_bundle dup 'args("sleep", "300")'
check "create dup" er create -b "$B" dup
expect_fail 5 "dup" er create -b "$B" dup
assert_eq "the first dup is still created" created "$(status dup)"
check "start dup" er start dup
wait_status dup running
expect_fail 5 "dup" er start dup
expect_fail 5 "dup" er resume dup   # not paused
expect_fail 5 "dup" er delete dup
assert_eq "dup still running after a refused delete" running "$(status dup)"
dup_pid=$(state_pid dup)
pid_alive "$dup_pid" && pass "dup init alive after a refused delete" || fail "dup init alive after a refused delete"
check "delete --force dup" er delete --force dup
assert_no_state dup
assert_no_cgroup dup

# ---------------------------------------------------------------------------
section "a create killed half-way"
# What a create killed before it recorded the state leaves: a state dir without state.json.
mkdir -p "$STATE/half"
expect_fail 4 "half" er delete half
expect_fail 5 "half" er create -b "$B" half
check "delete --force clears a half-created container" er delete --force half
[[ ! -e $STATE/half ]] && pass "half: state dir removed" || fail "half: state dir removed" "$(ls -la "$STATE/half" 2>&1)"
check "the id can be used again" er create -b "$B" half
check "delete --force half" er delete --force half
assert_no_state half

# A real one: create blocked in a createRuntime hook, then SIGKILLed.
make_bundle killed 'args("sleep", "300")' 'hook("createRuntime", "/bin/sleep", ["sleep", "31.5"])'
"$ENVRUN" --root "$STATE" create -b "$B" killed </dev/null >/dev/null 2>&1 &
create_pid=$!
for _ in $(seq 100); do pgrep -f "sleep 31.5" >/dev/null && break; sleep 0.05; done
kill -9 "$create_pid"; wait "$create_pid" 2>/dev/null
pkill -f "sleep 31.5"
assert_eq "killed create: state says creating" creating "$(status killed)"
[[ -n $(cgroup_dirs_of killed) ]] && pass "killed create: its cgroup is there" || fail "killed create: its cgroup is there"
expect_fail 5 "creating" er delete killed
check "delete --force after a killed create" er delete --force killed
assert_no_state killed
assert_no_cgroup killed
