#!/usr/bin/env bash
# config.json fields seen from inside (and outside) the container: process
# settings, namespaces, mounts, paths, sysctl, devices, cgroup resources,
# seccomp, hooks, YAML configs, stdio, preserved fds.
source "$(dirname "$0")/lib.sh"

# run_ct NAME [STATEMENT...]: make bundle NAME and `run` it in the foreground.
run_ct() {
  local name=$1; shift
  make_bundle "$name" "$@" || return 1
  capture er run -b "$B" "c-$name"
  [[ $RC -eq 0 ]] || echo "note: run c-$name exited $RC; stderr: $ERR"
}
# val KEY: the value of the "KEY=..." line in $OUT.
val() { sed -n "s/^$1=//p" <<<"$OUT" | head -n1; }

# ---------------------------------------------------------------------------
section "process: hostname, env, cwd, args"
host_hostname=$(hostname)
run_ct basic 'c["hostname"]="box1"' 'c["process"]["env"]=["PATH=/bin","FOO=bar baz"]' \
  'c["process"]["cwd"]="/tmp"' \
  'args("sh", "-c", "echo host=$(hostname); echo foo=$FOO; echo cwd=$(pwd); echo arg=$0/$1", "zero", "one")'
assert_eq "run exits 0" 0 "$RC"
assert_eq "hostname" box1 "$(val host)"
assert_eq "env" "bar baz" "$(val foo)"
assert_eq "cwd" /tmp "$(val cwd)"
assert_eq "args passed verbatim" "zero/one" "$(val arg)"
assert_eq "host hostname unchanged" "$host_hostname" "$(hostname)"
basic_out=$OUT

# ---------------------------------------------------------------------------
section "process: user, umask, rlimits, noNewPrivileges, capabilities"
run_ct user 'c["process"]["user"]={"uid":1000,"gid":1000,"additionalGids":[10,100],"umask":23}' \
  'script("echo uid=$(id -u); echo gid=$(id -g); echo groups=$(id -G); echo umask=$(umask)")'
assert_eq "user uid" 1000 "$(val uid)"
assert_eq "user gid" 1000 "$(val gid)"
groups=" $(val groups) "
[[ $groups == *" 10 "* && $groups == *" 100 "* ]] && pass "additionalGids 10 and 100 present" ||
  fail "additionalGids 10 and 100 present" "id -G: [$groups]"
assert_eq "umask 0027" 0027 "$(val umask)"

run_ct rlimit 'c["process"]["rlimits"]=[{"type":"RLIMIT_NOFILE","hard":1000,"soft":512},{"type":"RLIMIT_NPROC","hard":2000,"soft":1500}]' \
  'script("echo soft=$(ulimit -n); echo hard=$(ulimit -H -n); echo nproc=$(ulimit -u)")'
assert_eq "RLIMIT_NOFILE soft" 512 "$(val soft)"
assert_eq "RLIMIT_NOFILE hard" 1000 "$(val hard)"
assert_eq "RLIMIT_NPROC soft" 1500 "$(val nproc)"

run_ct nnp 'c["process"]["noNewPrivileges"]=True' 'script("grep NoNewPrivs /proc/self/status")'
assert_line_match "noNewPrivileges true -> NoNewPrivs 1" "$OUT" '^NoNewPrivs:[[:space:]]+1$'
run_ct nonnp 'c["process"]["noNewPrivileges"]=False' 'script("grep NoNewPrivs /proc/self/status")'
assert_line_match "noNewPrivileges false -> NoNewPrivs 0" "$OUT" '^NoNewPrivs:[[:space:]]+0$'

run_ct caps 'caps(["CAP_KILL","CAP_NET_ADMIN"])' 'script("grep -E \"^Cap(Eff|Bnd|Prm)\" /proc/self/status")'
assert_line_match "CapEff is KILL|NET_ADMIN" "$OUT" '^CapEff:[[:space:]]+0000000000001020$'
assert_line_match "CapBnd is KILL|NET_ADMIN" "$OUT" '^CapBnd:[[:space:]]+0000000000001020$'
assert_line_match "CapPrm is KILL|NET_ADMIN" "$OUT" '^CapPrm:[[:space:]]+0000000000001020$'

# ---------------------------------------------------------------------------
section "namespaces"
run_ct ns 'c["hostname"]="ns-box"' 'script("echo pid=$$; echo host=$(hostname); echo ifaces=$(grep -c : /proc/net/dev); grep : /proc/net/dev | cut -d: -f1 | tr -d \" \"; for n in net ipc mnt uts pid; do echo ns_$n=$(readlink /proc/self/ns/$n); done")'
assert_eq "pid namespace: the process is pid 1" 1 "$(val pid)"
assert_eq "uts namespace: hostname" ns-box "$(val host)"
assert_eq "net namespace: one interface" 1 "$(val ifaces)"
assert_line_match "net namespace: it is lo" "$OUT" '^lo$'
for n in net ipc mnt uts pid; do
  inside=$(val "ns_$n")
  if [[ -n $inside && $inside != "$(readlink /proc/self/ns/$n)" ]]; then pass "$n namespace differs from the host's"
  else fail "$n namespace differs from the host's" "inside [$inside] host [$(readlink /proc/self/ns/$n)]"; fi
done

# time namespace with offsets: boottime +1 day, monotonic +1 hour, seen in /proc/uptime.
run_ct timens 'ns_set("time")' 'c["linux"]["timeOffsets"]={"boottime":{"secs":86400},"monotonic":{"secs":3600}}' \
  'script("echo up=$(cut -d. -f1 /proc/uptime); echo ns_time=$(readlink /proc/self/ns/time)")'
assert_eq "time namespace: run exits 0" 0 "$RC"
host_up=$(cut -d. -f1 /proc/uptime)
if [[ -n $(val up) ]] && (( $(val up) >= host_up + 86400 - 5 && $(val up) <= host_up + 86400 + 60 )); then
  pass "time namespace: boottime offset of one day applied"
else fail "time namespace: boottime offset of one day applied" "inside up=$(val up) host up=$host_up"; fi
[[ $(val ns_time) != "$(readlink /proc/self/ns/time)" ]] && pass "time namespace differs from the host's" \
  || fail "time namespace differs from the host's" "$OUT"

run_ct nopidns 'ns_remove("pid")' 'script("echo pid=$$; echo ns_pid=$(readlink /proc/self/ns/pid)")'
assert_eq "no pid namespace: shares the host's" "$(readlink /proc/self/ns/pid)" "$(val ns_pid)"
[[ $(val pid) != 1 ]] && pass "no pid namespace: pid is not 1" || fail "no pid namespace: pid is not 1" "$OUT"

run_ct userns 'ns_set("user")' \
  'c["linux"]["uidMappings"]=[{"containerID":0,"hostID":100000,"size":65536}]' \
  'c["linux"]["gidMappings"]=[{"containerID":0,"hostID":100000,"size":65536}]' \
  'mounts_remove("/sys/fs/cgroup")' \
  'script("echo uid=$(id -u); echo uidmap=$(cat /proc/self/uid_map); echo gidmap=$(cat /proc/self/gid_map); echo ns_user=$(readlink /proc/self/ns/user)")'
assert_eq "user namespace: run exits 0" 0 "$RC"
assert_eq "user namespace: uid 0 inside" 0 "$(val uid)"
assert_eq "user namespace: uid_map" "0 100000 65536" "$(val uidmap | xargs)"
assert_eq "user namespace: gid_map" "0 100000 65536" "$(val gidmap | xargs)"
[[ -n $(val ns_user) && $(val ns_user) != "$(readlink /proc/self/ns/user)" ]] &&
  pass "user namespace differs from the host's" || fail "user namespace differs from the host's" "$OUT"

netns="envrun-it-$$"
if ip netns add "$netns"; then
  NETNS_TO_DELETE+=("$netns")
  want="net:[$(stat -L -c %i "/run/netns/$netns")]"
  run_ct joinns "ns_set('network', '/run/netns/$netns')" 'script("echo ns_net=$(readlink /proc/self/ns/net)")'
  assert_eq "joins the netns given by path" "$want" "$(val ns_net)"
else
  fail "ip netns add $netns"
fi

# ---------------------------------------------------------------------------
section "mounts, readonly root, masked and readonly paths"
mkdir -p "$T/share" "$T/rw"
echo shared-content >"$T/share/hello.txt"
run_ct mounts "mount('/mnt/tmp', 'tmpfs', 'tmpfs', ['size=1m', 'mode=1777'])" \
  "mount('/share', 'bind', '$T/share', ['rbind', 'ro'])" \
  "mount('/rw', 'bind', '$T/rw', ['rbind', 'rw'])" \
  'script("echo tmpfs=$(awk \"\\$2==\\\"/mnt/tmp\\\" {print \\$3}\" /proc/mounts); echo share=$(cat /share/hello.txt); touch /share/x 2>/dev/null && echo share_rw=yes || echo share_rw=no; echo from-container >/rw/out && echo rw=yes; [ -e /proc/self/status ] && echo proc=yes")'
assert_eq "tmpfs mount" tmpfs "$(val tmpfs)"
assert_eq "bind mount content" shared-content "$(val share)"
assert_eq "ro bind mount refuses writes" no "$(val share_rw)"
assert_eq "rw bind mount accepts writes" yes "$(val rw)"
assert_eq "rw bind mount: the host sees the file" from-container "$(cat "$T/rw/out" 2>/dev/null)"
assert_eq "proc mounted" yes "$(val proc)"
[[ ! -e $T/share/x ]] && pass "ro bind: nothing written on the host" || fail "ro bind: nothing written on the host"

run_ct roroot 'c["root"]["readonly"]=True' 'script("touch /x 2>/dev/null && echo root_rw=yes || echo root_rw=no; touch /dev/shm/y && echo shm=yes")'
assert_eq "readonly root: touch / fails" no "$(val root_rw)"
assert_eq "readonly root: /dev/shm still writable" yes "$(val shm)"
[[ ! -e $T/roroot/rootfs/x ]] && pass "readonly root: nothing written" || fail "readonly root: nothing written"

# /proc/kcore is absent on kernels without CONFIG_PROC_KCORE: use the first masked /proc file the host has.
masked_proc=
for f in /proc/kcore /proc/timer_list /proc/keys; do
  if [[ -e $f ]]; then masked_proc=$f; break; fi
done
make_bundle paths 'c["linux"]["maskedPaths"]+= ["/etc/secret"]' 'c["linux"]["readonlyPaths"]+=["/data"]' \
  'script("echo masked_proc=$(head -c 100 '"${masked_proc:-/proc/kcore}"' | wc -c); echo secret=$(cat /etc/secret | wc -c); echo firmware=$(ls /sys/firmware | wc -l); touch /data/x 2>/dev/null && echo data_rw=yes || echo data_rw=no; cat /data/f; touch /tmp/ok && echo tmp_rw=yes; echo procsys=$(awk \"\\$2==\\\"/proc/sys\\\" {print substr(\\$4,1,2)}\" /proc/mounts)")'
echo top-secret >"$B/rootfs/etc/secret"
mkdir -p "$B/rootfs/data"; echo data=present >"$B/rootfs/data/f"
capture er run -b "$B" c-paths
assert_eq "maskedPaths: ${masked_proc:-/proc/kcore} reads empty" 0 "$(val masked_proc)"
assert_eq "maskedPaths: /etc/secret reads empty" 0 "$(val secret)"
assert_eq "maskedPaths: /sys/firmware is empty" 0 "$(val firmware)"
assert_eq "readonlyPaths: /data is readable" present "$(val data)"
assert_eq "readonlyPaths: /data refuses writes" no "$(val data_rw)"
assert_eq "readonlyPaths: /tmp still writable" yes "$(val tmp_rw)"
assert_eq "readonlyPaths: /proc/sys is mounted ro" ro "$(val procsys)"

# ---------------------------------------------------------------------------
section "sysctl and devices"
host_fwd=$(cat /proc/sys/net/ipv4/ip_forward)
run_ct sysctl 'c["linux"]["sysctl"]={"net.ipv4.ip_forward":"1"}' 'script("echo fwd=$(cat /proc/sys/net/ipv4/ip_forward)")'
assert_eq "sysctl net.ipv4.ip_forward=1 inside" 1 "$(val fwd)"
assert_eq "sysctl: host value unchanged" "$host_fwd" "$(cat /proc/sys/net/ipv4/ip_forward)"

run_ct devices \
  'c["linux"]["devices"]=[{"path":"/dev/testzero","type":"c","major":1,"minor":5,"fileMode":438,"uid":0,"gid":0},{"path":"/dev/blocked","type":"c","major":1,"minor":11,"fileMode":438}]' \
  'c["linux"]["resources"]["devices"].append({"allow":True,"type":"c","major":1,"minor":5,"access":"rwm"})' \
  'script("echo x >/dev/null && echo null=ok; echo zero=$(head -c 5 /dev/zero | wc -c); echo urandom=$(head -c 4 /dev/urandom | wc -c); for d in full random tty; do [ -c /dev/$d ] && echo $d=yes; done; echo testzero=$(head -c 3 /dev/testzero | wc -c); [ -c /dev/blocked ] && echo blocked_node=yes; head -c 1 /dev/blocked >/dev/null 2>&1 && echo blocked=readable || echo blocked=denied")'
assert_eq "/dev/null writable" ok "$(val null)"
assert_eq "/dev/zero readable" 5 "$(val zero)"
assert_eq "/dev/urandom readable" 4 "$(val urandom)"
for d in full random tty; do assert_eq "/dev/$d exists" yes "$(val $d)"; done
assert_eq "linux.devices: /dev/testzero created and allowed" 3 "$(val testzero)"
assert_eq "linux.devices: /dev/blocked created" yes "$(val blocked_node)"
assert_eq "device cgroup: /dev/blocked (1:11) denied" denied "$(val blocked)"

# ---------------------------------------------------------------------------
section "cgroup resources"
make_bundle res 'c["linux"]["resources"].update({"memory":{"limit":67108864},"pids":{"limit":20},"cpu":{"shares":512,"quota":50000,"period":100000}})' \
  'args("sleep","300")'
capture er create -b "$B" c-res
assert_eq "create c-res" 0 "$RC" || last_cmd_details
if ((CGROUP_V2)); then
  assert_eq "memory.max from the host" 67108864 "$(cat "$(cg_file memory memory.max res)" 2>&1)"
  assert_eq "cpu.max from the host" "50000 100000" "$(cat "$(cg_file cpu cpu.max res)" 2>&1)"
else
  assert_eq "memory.limit_in_bytes from the host" 67108864 "$(cat "$(cg_file memory memory.limit_in_bytes res)" 2>&1)"
  assert_eq "cpu.shares from the host" 512 "$(cat "$(cg_file cpu cpu.shares res)" 2>&1)"
  assert_eq "cpu.cfs_quota_us from the host" 50000 "$(cat "$(cg_file cpu cpu.cfs_quota_us res)" 2>&1)"
fi
assert_eq "pids.max from the host" 20 "$(cat "$(cg_file pids pids.max res)" 2>&1)"
res_pid=$(state_pid c-res)
assert_line_match "init is in the memory cgroup" "$(cat "$(cg_file memory cgroup.procs res)" 2>&1)" "^${res_pid:-none}\$"
if ((!CGROUP_V2)); then
  capture er exec c-res cat /sys/fs/cgroup/memory/memory.limit_in_bytes
  assert_eq "inside, /sys/fs/cgroup/memory is the container's cgroup" 67108864 "$OUT"
fi
check "delete --force c-res" er delete --force c-res
assert_no_cgroup res

# A 12-stage pipeline needs 12 processes at once (no `&`: busybox sh would open /dev/null).
run_ct pids 'c["linux"]["resources"]["pids"]={"limit":6}' \
  'script("echo start; " + " | ".join(["sleep 2"] * 12) + "; echo pipeline=done")'
assert_contains "pids limit 6: the 12-process pipeline cannot fork" "$ERR" "fork"
run_ct nopids 'script("echo start; " + " | ".join(["sleep 1"] * 12) + "; echo pipeline=done")'
assert_eq "without a pids limit the same pipeline runs" "done" "$(val pipeline)"

# ---------------------------------------------------------------------------
section "seccomp"
run_ct seccomp 'c["linux"]["seccomp"]={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}' \
  'script("mkdir /tmp/d 2>&1; echo mkdir_rc=$?; echo ls=$(ls /bin/busybox)")'
assert_contains "seccomp: mkdir fails with EPERM" "$OUT" "Operation not permitted"
assert_eq "seccomp: mkdir exit status" 1 "$(val mkdir_rc)"
assert_eq "seccomp: ls still works" /bin/busybox "$(val ls)"
[[ ! -d $T/seccomp/rootfs/tmp/d ]] && pass "seccomp: no directory made" || fail "seccomp: no directory made"

# ---------------------------------------------------------------------------
section "hooks"
mkdir -p "$T/hooks"
hook_stmts=()
for phase in prestart createRuntime createContainer startContainer poststart poststop; do
  hook_stmts+=("hook('$phase', '/bin/sh', ['sh', '-c', 'd=$T/hooks; [ -d \$d ] || d=/hooks; cat > \$d/$phase.json; echo \$HOOKVAR > \$d/$phase.env'], env=['PATH=/bin:/usr/bin', 'HOOKVAR=hv-$phase'])")
done
make_bundle hooks "${hook_stmts[@]}" "mount('/hooks', 'bind', '$T/hooks', ['rbind', 'rw'])" 'script("echo main >/hooks/main.ran")'
capture er create -b "$B" hk
assert_eq "create with hooks" 0 "$RC" || last_cmd_details
for phase in prestart createRuntime createContainer; do
  [[ -s $T/hooks/$phase.json ]] && pass "hook $phase ran at create" || fail "hook $phase ran at create"
done
for phase in startContainer poststart poststop; do
  [[ ! -e $T/hooks/$phase.json ]] && pass "hook $phase not run at create" || fail "hook $phase not run at create"
done
check "start with hooks" er start hk
wait_status hk stopped
for phase in startContainer poststart; do
  [[ -s $T/hooks/$phase.json ]] && pass "hook $phase ran at start" || fail "hook $phase ran at start"
done
assert_eq "process ran" main "$(cat "$T/hooks/main.ran" 2>/dev/null)"
check "delete with hooks" er delete hk
for phase in prestart createRuntime createContainer startContainer poststart poststop; do
  assert_eq "hook $phase: state on stdin has the id" hk \
    "$(json_get 'd["id"]' <"$T/hooks/$phase.json" 2>&1)"
  assert_eq "hook $phase: env passed" "hv-$phase" "$(cat "$T/hooks/$phase.env" 2>&1)"
done
assert_eq "hook createRuntime: state has the bundle" "$T/hooks" \
  "$(json_get 'd["bundle"]' <"$T/hooks/createRuntime.json" 2>&1)"

make_bundle badhook "hook('createRuntime', '/bin/sh', ['sh', '-c', 'echo hook-failed >&2; exit 3'])" 'args("true")'
capture er create -b "$B" badhk
[[ $RC -ne 0 ]] && pass "a failing createRuntime hook fails create (exit $RC)" || fail "a failing createRuntime hook fails create"
assert_no_state badhk
assert_no_cgroup badhook

# ---------------------------------------------------------------------------
section "config.yaml"
make_bundle yaml
rm -f "$B/config.json"
cat >"$B/config.yaml" <<YAML
# the same container as the "basic" one above, written in YAML
ociVersion: 1.0.2
process:
  terminal: false
  user: {uid: 0, gid: 0}
  args:
    - sh
    - -c
    - 'echo host=\$(hostname); echo foo=\$FOO; echo cwd=\$(pwd); echo arg=\$0/\$1'
    - zero
    - one
  env: [PATH=/bin, "FOO=bar baz"]
  cwd: /tmp
  noNewPrivileges: true
root:
  path: rootfs
hostname: box1
mounts:
  - destination: /proc
    type: proc
    source: proc
  - {destination: /dev, type: tmpfs, source: tmpfs, options: [nosuid, mode=755]}
linux:
  cgroupsPath: /$CG_PREFIX/yaml
  namespaces:
    - type: pid
    - type: mount
    - type: uts
    - type: ipc
    - type: network
YAML
capture er run -b "$B" c-yaml
assert_eq "config.yaml: run exits 0" 0 "$RC" || last_cmd_details
assert_eq "config.yaml gives the same result as config.json" "$basic_out" "$OUT"

# ---------------------------------------------------------------------------
section "stdio with terminal: false"
make_bundle stdio 'script("read line; echo \"out:$line\"; echo \"err:$line\" >&2; exit 4")'
printf 'from-stdin\n' >"$T/stdin.txt"
timeout -k 5 "$ER_TIMEOUT" "$ENVRUN" --root "$STATE" run -b "$B" c-stdio <"$T/stdin.txt" >"$T/stdio.out" 2>"$T/stdio.err"
rc=$?
assert_eq "stdio: exit code" 4 "$rc"
assert_eq "stdio: stdin is the caller's, stdout too" "out:from-stdin" "$(cat "$T/stdio.out")"
assert_eq "stdio: stderr is the caller's" "err:from-stdin" "$(cat "$T/stdio.err")"

# create must return although the container keeps the caller's stdout (a pipe) open.
make_bundle pipe 'script("echo piped-output; sleep 1")'
( timeout -k 5 20 "$ENVRUN" --root "$STATE" create -b "$B" c-pipe 2>"$T/pipe.err" </dev/null
  echo $? >"$T/pipe.rc" ) | timeout -k 5 40 cat >"$T/pipe.out" &
pipe_job=$!
PIDS_TO_KILL+=("$pipe_job")
if wait_for 20 test -s "$T/pipe.rc"; then
  assert_eq "create | cat: create returned 0" 0 "$(cat "$T/pipe.rc")"
  if kill -0 "$pipe_job" 2>/dev/null; then pass "create | cat: the container still holds the pipe"
  else fail "create | cat: the container still holds the pipe" "cat ended before start"; fi
  check "create | cat: start" er start c-pipe
  if wait_for 20 sh -c "! kill -0 $pipe_job 2>/dev/null"; then pass "create | cat: pipeline ends after the container exits"
  else fail "create | cat: pipeline ends after the container exits"; fi
  assert_eq "create | cat: container output went through the pipe" piped-output "$(cat "$T/pipe.out")"
else
  fail "create | cat: create returned while the container holds the pipe" "no exit status after 20 s: create hangs on the pipe" "stderr: $(cat "$T/pipe.err")"
fi
er delete --force c-pipe >/dev/null 2>&1 </dev/null

# ---------------------------------------------------------------------------
section "preserved fds and LISTEN_FDS"
echo fd3-content >"$T/fd3.txt"
make_bundle fds 'script("echo listen_fds=$LISTEN_FDS; if [ -e /proc/self/fd/3 ]; then echo fd3=$(cat <&3); else echo fd3=none; fi; if [ -e /proc/self/fd/4 ]; then echo fd4=$(cat <&4); else echo fd4=none; fi")'
capture er run --preserve-fds 1 -b "$B" c-fds1 3<"$T/fd3.txt"
assert_eq "--preserve-fds 1 passes fd 3" fd3-content "$(val fd3)"
capture er run -b "$B" c-fds0 3<"$T/fd3.txt"
assert_eq "without --preserve-fds fd 3 does not leak" none "$(val fd3)"

# LISTEN_PID must name the runtime itself: exec keeps bash's pid.
echo fd4-content >"$T/fd4.txt"
run_listen() {  # run_listen LISTEN_PID_VALUE ID [RUN FLAGS...]
  local lpid=$1 id=$2; shift 2
  capture timeout -k 5 "$ER_TIMEOUT" bash -c 'export LISTEN_FDS=1 LISTEN_PID=${1/self/$$}; shift; exec "$@"' \
    _ "$lpid" "$ENVRUN" --root "$STATE" run "$@" -b "$B" "$id" 3<"$T/fd3.txt" 4<"$T/fd4.txt"
}
run_listen self c-listen
assert_eq "LISTEN_FDS=1 (LISTEN_PID = runtime) passes fd 3" fd3-content "$(val fd3)"
assert_eq "LISTEN_FDS=1 is set inside" 1 "$(val listen_fds)"
assert_eq "LISTEN_FDS=1 alone does not pass fd 4" none "$(val fd4)"
run_listen self c-listen-plus --preserve-fds 1
assert_eq "LISTEN_FDS=1 plus --preserve-fds 1 passes fd 3" fd3-content "$(val fd3)"
assert_eq "LISTEN_FDS=1 plus --preserve-fds 1 passes fd 4 (stdio + LISTEN_FDS + N)" fd4-content "$(val fd4)"
run_listen 1 c-listen-other
assert_eq "LISTEN_PID of another process: fd 3 not passed" none "$(val fd3)"

# ---------------------------------------------------------------------------
section "fields envrun does not apply yet are named, not ignored silently"
run_ct unapplied 'c["linux"]["personality"]={"domain":"LINUX"}' 'args("/bin/true")'
assert_eq "unapplied field: run still succeeds" 0 "$RC"
assert_contains "unapplied field: a warning names linux.personality" "$ERR" "not applied by this envrun version: linux.personality"
