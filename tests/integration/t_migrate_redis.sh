#!/usr/bin/env bash
# redis-server under a steady write load moves from host A to host B (migrate
# --tcp-established; hosts and hooks in migrate_l2.sh) and no acknowledged write is lost.
# The load comes from host C (tests/migrate/redis_load.py: INCR counter + SET key:n n per
# write n, 8 writes pipelined, RESP over a plain socket; write n counts as acknowledged once
# both answers arrived) and goes on during the migration on the same connection. Then,
# on B: every acknowledged key:n holds n and the counter is at least the number of
# acknowledged writes; while a connection held, each INCR answer was the previous plus 1
# (nothing lost or applied twice). The client either did not notice or reconnected: its
# reconnects are counted and printed. Bounded: the load runs at most 40 s.
source "$(dirname "$0")/lib.sh"
source "$LIB_DIR/migrate_l2.sh"
REDIS=$(command -v redis-server) || { fail "redis-server is not installed (apt-get install redis-server)"; exit 1; }
command -v redis-cli >/dev/null || { fail "redis-cli is not installed (apt-get install redis-tools)"; exit 1; }
RPORT=6379

host_bundle redis "'$REDIS', '--port', '$RPORT', '--bind', '0.0.0.0', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no', '--dir', '/tmp'"
er_a run -d -b "$B" redis >"$T/redis.out" 2>&1 </dev/null || fail "redis: run on A" "$(cat "$T/redis.out")"
ping() { in_c python3 -c 'import socket,sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2); s.settimeout(2)
s.sendall(b"PING\r\n"); sys.exit(s.recv(64) != b"+PONG\r\n")' "$SVC" "$RPORT"; }
wait_for 20 ping || { fail "redis answers PING from C at $SVC" "$(cat "$T/redis.out")"; exit 1; }
run_id() { in_c redis-cli -h "$SVC" -p "$RPORT" info server </dev/null | tr -d '\r' | sed -n 's/^run_id://p'; }
RUN_ID=$(run_id)
check "redis: its run_id (random at start) is known" test -n "$RUN_ID"

in_c python3 "$MIG_PROGS/redis_load.py" load --host "$SVC" --port "$RPORT" --status "$T/load.status" \
  --stop-file "$T/load.stop" --acked "$T/acked" --max-seconds 40 >"$T/load.json" 2>"$T/load.err" </dev/null &
LOAD=$!
PIDS_TO_KILL+=("$LOAD")
acked() { awk '{print $2}' "$T/load.status" 2>/dev/null || echo 0; }
more_acked() { (($(acked) > $1)); }
wait_for 15 more_acked 500 || fail "the load's writes are acknowledged on A" "$(cat "$T/load.status" "$T/load.err" 2>&1)"

section "migrate --tcp-established under the load"
BEFORE=$(acked)
capture migrate redis --to "$TARGET" --psk-file "$T/psk" --tcp-established "${HOOKS[@]}" --json
assert_eq "migrate exits 0" 0 "$RC" || last_cmd_details
echo "       report: $OUT"
renew_neighbour
AFTER=$(acked)
check "redis is gone from A" test -z "$(er list -q | grep -x redis)"
assert_eq "redis runs on B" running "$(eb state redis 2>/dev/null | json_get "d['status']")"
if wait_for 20 more_acked $((AFTER + 2000)); then
  pass "writes go on being acknowledged from B ($BEFORE before, $AFTER at the end of the migration, $(acked) now)"
else
  fail "writes go on being acknowledged from B" "$(cat "$T/load.status" "$T/load.err" 2>&1)"
fi
assert_eq "the same server instance on B (INFO run_id)" "$RUN_ID" "$(run_id)"

section "every acknowledged write is on B"
touch "$T/load.stop"
wait_for 30 bash -c "! kill -0 $LOAD 2>/dev/null"
wait "$LOAD"
assert_eq "the load exits 0 (no INCR jumped while a connection held)" 0 "$?" || cat "$T/load.err"
LOADSUM=$(cat "$T/load.json")
echo "       load: $LOADSUM"
echo "       the client reconnected $(json_get "d['reconnects']" <<<"$LOADSUM") times"
assert_eq "no INCR answer jumped (no write lost or applied twice on a connection)" 0 "$(json_get "d['incr_jumps']" <<<"$LOADSUM")"
capture in_c python3 "$MIG_PROGS/redis_load.py" verify --host "$SVC" --port "$RPORT" --acked "$T/acked"
echo "       verify: $OUT"
assert_eq "every acknowledged key holds its value on B, the counter covers them" 0 "$RC" || last_cmd_details
assert_eq "... checked as many writes as were acknowledged" "$(json_get "d['acked']" <<<"$LOADSUM")" "$(json_get "d['checked']" <<<"$OUT")"
eb delete -f redis >/dev/null 2>&1
