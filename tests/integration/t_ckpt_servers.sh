#!/usr/bin/env bash
# Real servers through checkpoint/restore: redis-server (Debian) with 100k keys and
# python3's http.server, each a container with its own network namespace (lo up) and
# the host's /usr read-only. The container is checkpointed (so killed and deleted),
# restored from the image into a new container, and the clients (run inside with
# `envrun exec`) must find the server answering with the state it had.
source "$(dirname "$0")/lib.sh"
REDIS=$(command -v redis-server) || { fail "redis-server is not installed (apt-get install redis-server)"; exit 1; }
command -v redis-cli >/dev/null || { fail "redis-cli is not installed (apt-get install redis-tools)"; exit 1; }

# server_bundle NAME ARGS_PYTHON_LIST [STATEMENT...]: busybox rootfs + the host's /usr
# (read-only), own network namespace.
server_bundle() {
  local name=$1 args=$2; shift 2
  make_bundle "$name" "args($args)" 'mount("/usr", "bind", "/usr", ["rbind", "ro"])' "$@" \
    'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE"] for k in ("bounding", "effective", "permitted")}' || return 1
  local d
  for d in lib lib64; do rm -rf "${B:?}/rootfs/$d"; ln -s "usr/$d" "$B/rootfs/$d"; done
  mkdir -p "$B/rootfs/tmp" "$B/rootfs/usr"
}
# inside ID CMD...: run CMD in the container (bounded)
inside() { local id=$1; shift; er exec "$id" "$@" </dev/null; }

# checkpoint_restore ID IMG: checkpoint (kills), then restore -d from IMG into a new container
checkpoint_restore() {
  local id=$1 img=$2
  capture er checkpoint --image-path "$img" "$id"
  assert_eq "$id: checkpoint exits 0" 0 "$RC" || { last_cmd_details; return 1; }
  check "$id: the checkpointed container is gone" test -z "$(er list -q | grep -x "$id")"
  capture er restore -d --image-path "$img" -b "$B" "$id"
  assert_eq "$id: restore exits 0" 0 "$RC" || { last_cmd_details; return 1; }
}

section "redis-server: 100k keys, checkpoint, kill, restore, read back"
server_bundle redis "'$REDIS', '--port', '6379', '--bind', '127.0.0.1', '-::1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no', '--dir', '/tmp'"
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "SET key:%d val:%d\r\n", i, i * 7 }' > "$B/rootfs/tmp/keys.txt"
LOG=$T/redis.out
er run -d -b "$B" redis >"$LOG" 2>&1 </dev/null || fail "redis: run" "$(cat "$LOG")"
wait_for 20 sh -c "'$ENVRUN' --root '$STATE' exec redis redis-cli ping 2>/dev/null | grep -q PONG" || fail "redis: answers PING" "$(cat "$LOG")"
capture inside redis sh -c 'redis-cli --pipe < /tmp/keys.txt'
assert_contains "redis: 100000 SETs through redis-cli --pipe" "$(cat "$T/last.out")" "errors: 0, replies: 100000" || last_cmd_details
assert_eq "redis: DBSIZE before the checkpoint" 100000 "$(inside redis redis-cli dbsize)"
assert_eq "redis: the IPv6 socket answers too" PONG "$(inside redis redis-cli -h ::1 ping)"
run_id() { inside redis redis-cli info server | tr -d '\r' | sed -n 's/^run_id://p'; }
RUN_ID=$(run_id)
if checkpoint_restore redis "$T/redis.img"; then
  assert_eq "redis: the restored container runs" running "$(er state redis | json_get "d['status']")"
  assert_eq "redis: DBSIZE after restore" 100000 "$(inside redis redis-cli dbsize)"
  assert_eq "redis: key:12345 read back" "val:86415" "$(inside redis redis-cli get key:12345)"
  assert_eq "redis: first and last keys read back" "$(printf 'val:0\nval:699993')" "$(inside redis redis-cli mget key:0 key:99999)"
  SUM=$(inside redis sh -c 'i=0; while [ $i -lt 100000 ]; do echo "GET key:$i"; i=$((i + 997)); done | redis-cli' | sed 's/val://' | awk '{s += $1} END {print s}')
  WANT=$(awk 'BEGIN { for (i = 0; i < 100000; i += 997) s += i * 7; print s }')
  assert_eq "redis: 101 keys spread over the keyspace read back (sum of values)" "$WANT" "$SUM"
  assert_eq "redis: writes after restore" OK "$(inside redis redis-cli set after restore)"
  assert_eq "redis: the IPv6 socket answers after restore" PONG "$(inside redis redis-cli -h ::1 ping)"
  assert_eq "redis: the same server instance (INFO run_id, random at start, unchanged)" "$RUN_ID" "$(run_id)"
  check "redis: its run_id is not empty" test -n "$RUN_ID"
fi
er delete -f redis >/dev/null 2>&1

section "python3 http.server: answers after restore"
mkdir -p "$T/www"; echo "served before and after" > "$T/www/index.txt"
server_bundle web "'/usr/bin/python3', '-u', '-m', 'http.server', '8000', '--bind', '127.0.0.1', '--directory', '/www'" \
  "mount('/www', 'bind', '$T/www', ['rbind', 'ro'])"
mkdir -p "$B/rootfs/www"
LOG=$T/web.out
er run -d -b "$B" web >"$LOG" 2>&1 </dev/null || fail "web: run" "$(cat "$LOG")"
fetch() { inside web /usr/bin/python3 -c 'import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:8000/index.txt", timeout=3).read().decode())' 2>/dev/null; }
wait_for 20 fetch >/dev/null || fail "web: answers before the checkpoint" "$(cat "$LOG")"
assert_eq "web: the page before the checkpoint" "served before and after" "$(fetch)"
N_BEFORE=$(grep -c '"GET /index.txt HTTP/1.1" 200' "$LOG")
if checkpoint_restore web "$T/web.img"; then
  assert_eq "web: the page after restore" "served before and after" "$(fetch)"
  echo "changed after restore" > "$T/www/index.txt"
  assert_eq "web: the restored server reads the file anew" "changed after restore" "$(fetch)"
  assert_eq "web: the server's log (its stdout, a file) holds every request, before and after" \
    "$((N_BEFORE + 2))" "$(grep -c '"GET /index.txt HTTP/1.1" 200' "$LOG")" || cat "$LOG"
fi
er delete -f web >/dev/null 2>&1
