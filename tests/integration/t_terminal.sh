#!/usr/bin/env bash
# terminal: true with --console-socket: the runtime hands the pty master to a
# receiver (tests/integration/console_receiver.py), which reads the container's output.
source "$(dirname "$0")/lib.sh"

# start_receiver NAME [--send TEXT]: console socket $T/NAME.sock, output $T/NAME.out.
start_receiver() {
  local name=$1; shift
  rm -f "$T/$name.sock" "$T/$name.out"
  timeout -k 5 60 python3 "$LIB_DIR/console_receiver.py" "$T/$name.sock" "$T/$name.out" --timeout 40 "$@" \
    2>"$T/$name.rerr" &
  RECEIVER=$!
  PIDS_TO_KILL+=("$RECEIVER")
  wait_for 10 test -S "$T/$name.sock" || fail "console receiver $name listens"
}
# wait_receiver: bounded wait for the receiver; sets RRC to its exit status.
wait_receiver() {
  local deadline=$((SECONDS + 45))
  while kill -0 "$RECEIVER" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill "$RECEIVER" 2>/dev/null
  wait "$RECEIVER"; RRC=$?
}
tty_out() { cat "$T/$1.out" 2>/dev/null | tr -d '\r'; }

# ---------------------------------------------------------------------------
section "create + start with a console socket"
start_receiver c1 --send 'hello-input\n'
make_bundle tty 'c["process"]["terminal"]=True' \
  'script("echo tty-ok; tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-tty; read x; echo got:$x; stty size")' \
  'c["process"]["consoleSize"]={"height":30,"width":100}'
check "create --console-socket" er create --console-socket "$T/c1.sock" -b "$B" ttyc
check "start" er start ttyc
wait_receiver
out=$(tty_out c1)
assert_eq "receiver got the master and read to the end" 0 "$RRC" || sed 's/^/       /' "$T/c1.rerr"
assert_line_match "container output through the pty" "$out" '^tty-ok$'
assert_line_match "tty prints /dev/pts/N" "$out" '^/dev/pts/[0-9]+$'
assert_line_match "stdin and stdout are the terminal" "$out" '^stdio-is-tty$'
assert_line_match "input written to the master reaches the process" "$out" '^got:hello-input$'
assert_line_match "consoleSize 30x100 applied" "$out" '^30 100$'
wait_status ttyc stopped
check "delete" er delete ttyc
assert_no_state ttyc

# ---------------------------------------------------------------------------
section "run --detach with a console socket, then exec -d -t"
start_receiver c2
receiver_c2=$RECEIVER
make_bundle ttyd 'c["process"]["terminal"]=True' 'script("echo detached-tty-ok; exec sleep 300")'
check "run -d --console-socket" er run -d --console-socket "$T/c2.sock" -b "$B" ttyd
wait_status ttyd running
start_receiver c3
# runc semantics: a console socket implies --detach (in the foreground the runtime would use its own terminal).
check "exec -d -t --console-socket" er exec -d -t --console-socket "$T/c3.sock" --pid-file "$T/exec.pid" ttyd \
  sh -c 'echo exec-tty-ok; tty; exit 5'
assert_match "exec --pid-file written" "$(cat "$T/exec.pid" 2>/dev/null)" '^[1-9][0-9]*$'
wait_receiver
out=$(tty_out c3)
assert_line_match "exec -t: output through its own pty" "$out" '^exec-tty-ok$'
assert_line_match "exec -t: tty prints /dev/pts/N" "$out" '^/dev/pts/[0-9]+$'
check "delete --force ttyd" er delete --force ttyd
RECEIVER=$receiver_c2; wait_receiver
assert_line_match "run -d: init output through the pty" "$(tty_out c2)" '^detached-tty-ok$'
assert_no_state ttyd

# ---------------------------------------------------------------------------
section "terminal without a console socket"
make_bundle ttyno 'c["process"]["terminal"]=True' 'args("true")'
capture er create -b "$B" ttyno
[[ $RC -ne 0 ]] && pass "create of a terminal container without --console-socket fails (exit $RC)" ||
  fail "create of a terminal container without --console-socket fails"
assert_contains "the message names the console socket" "$ERR" "console"
assert_no_state ttyno
