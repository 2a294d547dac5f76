#!/usr/bin/env bash
# An established TCP connection survives a migration (migrate --tcp-established) between
# two hosts (network namespaces; set-up in migrate_l2.sh): tests/migrate/seq_server.py runs
# in a container on host A at the service address; tests/migrate/seq_client.py on host C
# holds ONE connection to it and exchanges numbered messages continuously, up to 8 of them
# unanswered (always some in flight or queued). Each answer names the server's host (the
# interfaces of its network namespace) and pid.
#   - a connection waiting in the listener's accept queue makes the migration refused
#     (it would be lost: its peer reset), naming the listener; the app runs on;
#   - without --tcp-established the migration is refused, naming the connection and the
#     option, and the server keeps running on A (the address comes back: --on-rollback);
#   - a --before-restore hook that fails rolls the migration back: the server is restored
#     on A from the local copy, the connection continues there;
#   - the migration to B: the container is gone from A and runs on B, the connection
#     continues with the same server process, now answering from B.
# At the end the client must have seen no reset and no lost, repeated or reordered message
# in either direction, its answers from A then from B, from one pid.
source "$(dirname "$0")/lib.sh"
source "$LIB_DIR/migrate_l2.sh"
PORT=5000

host_bundle seq "'/usr/bin/python3', '-u', '/seq_server.py', '$SVC', '$PORT'"
cp "$MIG_PROGS/seq_server.py" "$B/rootfs/seq_server.py"
er_a run -d -b "$B" seq >"$T/seq.out" 2>&1 </dev/null || fail "seq: run on A" "$(cat "$T/seq.out")"
wait_for 20 grep -q READY "$T/seq.out" || { fail "seq: the server listens on A" "$(cat "$T/seq.out")"; exit 1; }

section "a connection not accepted yet: refused (its peer would be reset), the app runs on"
# hold PATH: a client on C that connects, waits for PATH, sends message 1 and prints the answer.
hold() {
  in_c python3 -c 'import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
while not os.path.exists(sys.argv[3]): time.sleep(0.05)
s.settimeout(10); s.sendall(b"1 held\n"); print(s.makefile("rb").readline().decode().strip())' "$SVC" "$PORT" "$1" </dev/null
}
hold "$T/x.go" >"$T/x.out" 2>&1 &   # accepted: the server serves it (one connection at a time)
PIDS_TO_KILL+=($!)
wait_for 10 grep -q "connection from $IP_C" "$T/seq.out" || fail "the first held connection is accepted" "$(cat "$T/seq.out")"
hold "$T/y.go" >"$T/y.out" 2>&1 &   # waits in the listener's accept queue
PIDS_TO_KILL+=($!)
queued() { in_a ss -Htln "sport = :$PORT" | awk '{print $2}' | grep -qx 1; }
wait_for 10 queued || fail "the second connection waits in the accept queue" "$(in_a ss -tln 2>&1)"
PID0=$(state_pid seq)
capture migrate seq --to "$TARGET" --psk-file "$T/psk" --tcp-established "${HOOKS[@]}"
MERR=$ERR
echo "       error: $MERR"
check "migrate fails" test "$RC" -ne 0
assert_contains "... naming the listener and the connection not accepted yet" "$MERR" "$SVC:$PORT: listening, with 1 connection(s) not accepted yet"
assert_eq "the same server process runs on A" "$PID0" "$(state_pid seq)"
check "the service address is back on A" svc_on "$NS_A"
touch "$T/x.go"
wait_for 10 grep -q . "$T/x.out"
touch "$T/y.go"
wait_for 10 grep -q . "$T/y.out"
assert_eq "the queued connection is answered once accepted, from A" "1 $IF_A" "$(cut -d' ' -f1,2 "$T/y.out")"

section "one connection held open with messages in flight"
in_c python3 "$MIG_PROGS/seq_client.py" --host "$SVC" --port "$PORT" --status "$T/client.status" \
  --stop-file "$T/client.stop" --max-seconds 100 >"$T/client.json" 2>"$T/client.err" </dev/null &
CLIENT=$!
PIDS_TO_KILL+=("$CLIENT")
received() { awk '{print $2}' "$T/client.status" 2>/dev/null || echo 0; }
client_host() { awk '{print $4}' "$T/client.status" 2>/dev/null; }
client_errors() { awk '{print $6}' "$T/client.status" 2>/dev/null; }
# progresses HOST DESC: 100 more answers, the last from HOST, no error so far.
progresses() {
  local from; from=$(received)
  moved() { (($(received) > from + 100)) && [[ $(client_host) == "$1" ]]; }
  if wait_for 20 moved "$1"; then pass "$2 ($from -> $(received) answers)"; else
    fail "$2" "client: $(cat "$T/client.status" 2>&1)" "$(cat "$T/client.err" "$T/client.json" 2>&1)"; fi
  assert_eq "$2: no error seen by the client" 0 "$(client_errors)"
}
progresses "$IF_A" "the client exchanges messages with the server on A"

section "without --tcp-established: refused, naming the connection; the app runs on, on A"
PID0=$(state_pid seq)
capture migrate seq --to "$TARGET" --psk-file "$T/psk" "${HOOKS[@]}"
MERR=$ERR
echo "       error: $MERR"
check "migrate fails" test "$RC" -ne 0
assert_contains "... naming the connection" "$MERR" "connected to $IP_C:"
assert_contains "... and the option" "$MERR" "--tcp-established"
assert_eq "the same server process runs on A" "$PID0" "$(state_pid seq)"
check "--on-rollback put the service address back on A" svc_on "$NS_A"
check "... and it is not on B" bash -c "! ip -n $NS_B -4 -o addr show | grep -q ' $SVC/'"
check "nothing of seq on B" test ! -e "$AROOT/state/seq"
progresses "$IF_A" "the connection continues on A"

section "a failing --before-restore rolls back: the server is restored on A, the connection continues"
capture migrate seq --to "$TARGET" --psk-file "$T/psk" --tcp-established --before-stop "$HOOK_STOP" \
  --before-restore "echo 'no way to B today' >&2; exit 3" --on-rollback "$HOOK_ROLLBACK"
MERR=$ERR
echo "       error: $MERR"
check "migrate fails" test "$RC" -ne 0
assert_contains "... with the hook's reason" "$MERR" "no way to B today"
assert_contains "... rolled back" "$MERR" "rolled back: seq runs on this host again"
assert_eq "seq runs on A" running "$(status seq)"
check "the service address is on A" svc_on "$NS_A"
check "nothing of seq on B" test ! -e "$AROOT/state/seq"
progresses "$IF_A" "the connection continues with the restored server on A"

section "migrate --tcp-established: the connection continues with the server on B"
capture migrate seq --to "$TARGET" --psk-file "$T/psk" --tcp-established "${HOOKS[@]}" --json
assert_eq "migrate exits 0" 0 "$RC" || last_cmd_details
echo "       report: $OUT"
renew_neighbour
check "seq is gone from A" test -z "$(er list -q | grep -x seq)"
assert_eq "seq runs on B" running "$(eb state seq 2>/dev/null | json_get "d['status']")"
check "the service address is on B" svc_on "$NS_B"
check "... and not on A" bash -c "! ip -n $NS_A -4 -o addr show | grep -q ' $SVC/'"
progresses "$IF_B" "the connection continues with the server on B"

section "the client's verdict over the whole run"
touch "$T/client.stop"
wait_for 30 bash -c "! kill -0 $CLIENT 2>/dev/null"
wait "$CLIENT"
assert_eq "the client exits 0" 0 "$?"
SUMMARY=$(cat "$T/client.json")
echo "       client: $SUMMARY"
assert_eq "no error: no reset, no message lost, repeated or out of order" "[]" "$(json_get "d['errors']" <<<"$SUMMARY")" ||
  cat "$T/client.err"
assert_eq "every message answered" "$(json_get "d['sent']" <<<"$SUMMARY")" "$(json_get "d['received']" <<<"$SUMMARY")"
assert_eq "the server never saw a number out of sequence" 0 "$(json_get "d['bad']" <<<"$SUMMARY")"
assert_eq "answers came from A, then from B" "$IF_A $IF_B" "$(json_get "' '.join(h[0] for h in d['hosts'])" <<<"$SUMMARY")"
assert_eq "from one server process (one pid)" 1 "$(json_get "len(d['pids'])" <<<"$SUMMARY")"
ANSWER=$(in_c python3 -c 'import socket,sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); s.settimeout(5)
s.sendall(b"1 new\n"); print(s.makefile("rb").readline().decode().split()[1])' "$SVC" "$PORT" 2>&1)
assert_eq "a new connection is answered from B (the listener moved too)" "$IF_B" "$ANSWER"
eb delete -f seq >/dev/null 2>&1
