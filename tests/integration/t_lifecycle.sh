#!/usr/bin/env bash
# Container lifecycle through the CLI: run, create/start/state/kill/delete, list,
# --pid-file, pause/resume, ps, exec, kill --all, delete --force, events --stats.
source "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------------------
section "run in the foreground"
make_bundle true 'args("/bin/true")'
check "run /bin/true exits 0" er run -b "$T/true" rt-true
assert_no_state rt-true
assert_no_cgroup true

make_bundle exit7 'script("exit 7")'
capture er run -b "$T/exit7" rt-exit7
assert_eq "run sh -c 'exit 7' exits 7" 7 "$RC"
assert_no_state rt-exit7

make_bundle hello 'script("echo hello from envrun; echo to-stderr >&2")'
capture er run -b "$T/hello" rt-hello
assert_eq "run: exit 0" 0 "$RC"
assert_eq "run: container stdout reaches the caller" "hello from envrun" "$OUT"
assert_eq "run: container stderr reaches the caller" "to-stderr" "$ERR"

# --no-pivot: the rootfs is moved onto / and chrooted into; the old root is not reachable.
make_bundle nopivot 'script("ls /; test -e /proc/1/root/bin/busybox && echo root-ok")'
capture er run --no-pivot -b "$T/nopivot" rt-nopivot
assert_eq "run --no-pivot: exit 0" 0 "$RC"
assert_contains "run --no-pivot: the container sees its rootfs" "$OUT" "root-ok"

make_bundle keep 'script("exit 3")'
capture er run --keep -b "$T/keep" rt-keep
assert_eq "run --keep: exit code 3" 3 "$RC"
assert_eq "run --keep: container kept, stopped" stopped "$(status rt-keep)"
check "delete of the kept container" er delete rt-keep
assert_no_state rt-keep

# ---------------------------------------------------------------------------
section "create / start / state / kill / delete"
make_bundle life 'script("trap \"echo got-term; exit 0\" TERM; echo started; while :; do sleep 0.1; done")'
capture er create -b "$T/life" --pid-file "$T/life.pid" life
assert_eq "create exits 0" 0 "$RC" || last_cmd_details
assert_eq "status after create" created "$(status life)"
pid=$(state_pid life)
assert_match "state has a pid" "$pid" '^[1-9][0-9]*$'
assert_eq "--pid-file holds the init pid" "$pid" "$(cat "$T/life.pid" 2>/dev/null)"
check "init process exists after create" pid_alive "$pid"
er state life >"$T/state.json" 2>&1 </dev/null
assert_eq "state: id" life "$(json_get 'd["id"]' <"$T/state.json")"
assert_eq "state: bundle is the absolute bundle path" "$T/life" "$(json_get 'd["bundle"]' <"$T/state.json")"
assert_match "state: ociVersion" "$(json_get 'd["ociVersion"]' <"$T/state.json")" '^1\.'
[[ -n $(cgroup_dirs_of life) ]] && pass "cgroup dirs exist while the container lives" ||
  fail "cgroup dirs exist while the container lives" "none of /sys/fs/cgroup/*/$CG_PREFIX/life"

check "start" er start life
wait_status life running
check "kill (SIGTERM by default)" er kill life
wait_status life stopped
check "delete" er delete life
assert_no_state life
assert_no_cgroup life
if pid_alive "$pid"; then fail "init process gone after delete" "pid $pid alive"; else pass "init process gone after delete"; fi

# ---------------------------------------------------------------------------
section "list, pause/resume, ps, exec, events"
make_bundle svc 'script("echo svc-up; while :; do sleep 0.1; done")' 'c["hostname"]="svc-host"'
check "run --detach" er run --detach -b "$T/svc" svc
wait_status svc running
svc_pid=$(state_pid svc)

capture er list
assert_eq "list exits 0" 0 "$RC"
assert_line_match "list (table) shows svc as running" "$OUT" "^svc +$svc_pid +running "
capture er list --format json
assert_eq "list --format json: svc entry" "running $svc_pid" \
  "$(json_get '" ".join(str(x) for e in d if e["id"] == "svc" for x in (e["status"], e["pid"]))' <"$T/last.out")"
capture er list -q
assert_eq "list -q prints the ids only" "svc" "$OUT"

check "pause" er pause svc
wait_status svc paused 5
check "resume" er resume svc
wait_status svc running 5

capture er ps --format json svc
assert_eq "ps --format json exits 0" 0 "$RC"
assert_eq "ps --format json lists the init pid" yes \
  "$(json_get '"yes" if '"${svc_pid:-0}"' in d else "no: %s" % d' <"$T/last.out" 2>&1)"
capture er ps svc
assert_match "ps (table) mentions the init pid" "$OUT" "(^|[^0-9])${svc_pid:-x}([^0-9]|$)"

capture er exec svc echo hello-exec
assert_eq "exec echo: exit 0" 0 "$RC"
assert_eq "exec echo: output" hello-exec "$OUT"
capture er exec svc sh -c 'exit 3'
assert_eq "exec returns the process's exit code" 3 "$RC"
capture er exec svc hostname
assert_eq "exec joins the container's uts namespace" svc-host "$OUT"
capture er exec svc sh -c 'cat /proc/1/cmdline | tr "\0" " "'
assert_contains "exec joins the container's pid namespace (pid 1 is the init)" "$OUT" "while :"
capture er exec --env FOO=bar --cwd /tmp svc sh -c 'echo "$FOO $(pwd)"'
assert_eq "exec --env --cwd" "bar /tmp" "$OUT"

capture er events --stats svc
assert_eq "events --stats exits 0" 0 "$RC"
assert_eq "events --stats prints JSON with pids" yes \
  "$(json_get '"yes" if d["type"] == "stats" and "pids" in d["data"] else d' <"$T/last.out" 2>&1)"

capture er update --pids-limit 50 --memory 134217728 svc
assert_eq "update exits 0" 0 "$RC" || last_cmd_details
assert_eq "update --pids-limit reaches pids.max" 50 "$(cat "$(cg_file pids pids.max svc)" 2>&1)"
if ((CGROUP_V2)); then mem_file=memory.max; else mem_file=memory.limit_in_bytes; fi
assert_eq "update --memory reaches $mem_file" 134217728 "$(cat "$(cg_file memory $mem_file svc)" 2>&1)"

# ---------------------------------------------------------------------------
section "spec, features, runc flags"
mkdir -p "$T/specdir"
check "spec -b DIR writes config.json" er spec -b "$T/specdir"
assert_eq "spec: default args" '["sh"]' "$(json_get 'd["process"]["args"]' <"$T/specdir/config.json" 2>&1)"
cp "$T/specdir/config.json" "$T/spec.before"
capture er spec -b "$T/specdir"
[[ $RC -ne 0 ]] && pass "spec refuses to overwrite (exit $RC)" || fail "spec refuses to overwrite"
cmp -s "$T/spec.before" "$T/specdir/config.json" && pass "spec left config.json unchanged" || fail "spec left config.json unchanged"
capture er features
assert_eq "features: linux.namespaces has pid" yes \
  "$(json_get '"yes" if "pid" in d["linux"]["namespaces"] else d' <"$T/last.out" 2>&1)"
make_bundle flags 'script("echo flags-ok")'
capture er run --no-new-keyring -b "$B" rt-keyring
assert_eq "run --no-new-keyring" flags-ok "$OUT"
capture er run --no-pivot -b "$B" rt-nopivot
assert_eq "run --no-pivot" flags-ok "$OUT"
capture er --log "$T/envrun.log" --log-format json --debug run -b "$B" rt-log
assert_eq "run with --log --log-format json --debug" flags-ok "$OUT"

# ---------------------------------------------------------------------------
section "kill --all"
make_bundle many 'script("echo spawned; sleep 300 | sleep 300")'
check "run -d a container with children" er run -d -b "$T/many" many
wait_status many running
wait_for 10 sh -c "[ \$(cat $(cg_file pids cgroup.procs many) 2>/dev/null | wc -l) -ge 3 ]"
check "kill --all KILL" er kill --all many KILL
wait_status many stopped
procs=$(cat "$(cg_file pids cgroup.procs many)" 2>/dev/null)
assert_eq "no process left in the cgroup after kill --all" "" "$procs"
check "delete after kill --all" er delete many
assert_no_state many
assert_no_cgroup many

# ---------------------------------------------------------------------------
section "delete of a created container (no --force needed, like runc)"
make_bundle created 'args("sleep", "300")'
check "create created" er create -b "$B" ct-created
created_pid=$(state_pid ct-created)
check "delete of a created container" er delete ct-created
assert_no_state ct-created
assert_no_cgroup created
if pid_alive "$created_pid"; then fail "created init gone after delete" "pid $created_pid alive"; else pass "created init gone after delete"; fi

section "delete --force of a running container"
check "delete --force svc" er delete --force svc
assert_no_state svc
assert_no_cgroup svc
if pid_alive "$svc_pid"; then fail "svc init gone after delete --force" "pid $svc_pid alive"; else pass "svc init gone after delete --force"; fi
capture er list -q
assert_eq "list is empty at the end" "" "$OUT"
