# Shared by the t_api*.sh tests (sourced after lib.sh): an agent serving the management
# API on a unix socket in $ADIR (its data root; its containers in $ADIR/state), tokens,
# and `api` (tests/api/apiclient.py) to call it.
ADIR=$T/agent
SOCK=$ADIR/api.sock
APICLIENT="$SRC_DIR/tests/api/apiclient.py"
mkdir -p "$ADIR"

cleanup_agent() {
  local d
  for d in "$ADIR"/state/*/; do
    [[ -d $d ]] && timeout -k 2 20 "$ENVRUN" --root "$ADIR/state" delete -f "$(basename "$d")" >/dev/null 2>&1 </dev/null
  done
  return 0
}
trap 'rc=$?; cleanup_agent; (exit $rc); on_exit' EXIT

# token NAME ROLE [ARGS]: a token in $T/tok.NAME (the secret, as printed once).
token() {
  local name=$1 role=$2; shift 2
  timeout 10 "$ENVRUN" --root "$ADIR" token create "$name" --role "$role" "$@" >"$T/tok.$name" 2>"$T/tok.$name.err" ||
    fail "token create $name" "$(cat "$T/tok.$name.err")"
}

# start_api [ARGS]: envrun serve with the API alone; sets AGENT_PID, waits for the socket.
start_api() {
  "$ENVRUN" --root "$ADIR" serve --api "unix:$SOCK" "$@" >"$T/serve.log" 2>&1 </dev/null &
  AGENT_PID=$!
  PIDS_TO_KILL+=("$AGENT_PID")
  wait_for 10 test -S "$SOCK" || fail "the API socket appears" "$(cat "$T/serve.log")"
}

# api TOKEN_NAME|- METHOD PATH [BODY] [apiclient options]: sets CODE and BODY.
api() {
  local tok=$1; shift
  local a=(--sock "$SOCK")
  [[ $tok != - ]] && a+=(--token-file "$T/tok.$tok")
  capture timeout 60 python3 "$APICLIENT" "${a[@]}" "$@"
  CODE=$(head -n1 <<<"$OUT")
  BODY=$(tail -n +2 <<<"$OUT")
}

# expect_code DESC CODE TOKEN METHOD PATH [BODY...]
expect_code() {
  local desc=$1 want=$2; shift 2
  api "$@"
  if [[ $CODE == "$want" ]]; then pass "$desc ($want)"; else fail "$desc: want $want" "got: $CODE $BODY" "stderr: $ERR"; fi
}

# The agent still answers a read with the admin token.
alive() {
  api admin GET /v1/instances
  if [[ $CODE == 200 ]]; then pass "agent still answers after: $1"; else fail "agent still answers after: $1" "got: $CODE $BODY $ERR"; fi
}

# A library bundle NAME whose app sleeps (no cgroupsPath: each instance gets its own cgroup).
api_bundle() {
  make_bundle "$1" "args('/bin/sleep', '100000')" 'c["linux"].pop("cgroupsPath", None)'
}
