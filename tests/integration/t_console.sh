#!/usr/bin/env bash
# The web console (agent/console) in headless Chromium against a real `envrun serve`: the
# agent serves its API on TCP with TLS (a self-signed certificate made here) on 127.0.0.1 in
# a network namespace of this test; tests/console/test_console.py (selenium + chromedriver)
# logs in with a wrong token (error shown), as an admin adds a bundle (the fixture rootfs with
# a sleep loop), as an operator starts an instance and sees it running, is refused publishing
# (403 shown), as an admin publishes version 2, as the operator upgrades the instance, sees
# version 2, stops it and sees it stopped; the operator's token revoked (by the admin, through
# the API) sends the page back to its login form. Then the agent's own records are checked: the
# container's state, the version dir it runs from, and the audit log's lines for those calls.
# On a failure the page's screenshots are kept in /tmp/envrun-t_console-shots.PID.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3                 # Debian's python3-selenium lives there
for tool in chromium chromedriver openssl curl nsenter; do
  command -v "$tool" >/dev/null || { fail "$tool is not installed (scripts/deps.sh)"; exit 1; }
done
"$PY" -c 'import selenium' 2>/dev/null || { fail "python3-selenium is not installed (scripts/deps.sh)"; exit 1; }

NS=envrun-con-$$
PORT=8443
AROOT=$T/agent                      # the agent's --root; its containers: $AROOT/state
SHOTS=$T/shots
KEEP_SHOTS=/tmp/envrun-t_console-shots.$$
ip netns add "$NS" && NETNS_TO_DELETE+=("$NS") || { fail "network namespace $NS"; exit 1; }
ip -n "$NS" link set lo up
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
ea() { timeout -k 5 "$ER_TIMEOUT" "$ENVRUN" --root "$AROOT" "$@"; }
URL=https://127.0.0.1:$PORT

# The agent's containers go too when the test ends (lib.sh's cleanup knows only $STATE);
# the page's evidence is kept when something failed.
cleanup_console() {
  local d
  for d in "$AROOT"/state/*/; do
    [[ -d $d ]] && timeout -k 2 20 "$ENVRUN" --root "$AROOT/state" delete -f "$(basename "$d")" >/dev/null 2>&1
  done
  if ((FAILS > 0)) && [[ -d $SHOTS ]]; then
    rm -rf "$SHOTS/profile"
    cp -a "$SHOTS" "$KEEP_SHOTS" 2>/dev/null && cp "$T/serve.log" "$KEEP_SHOTS/" 2>/dev/null
    echo "t_console: the page's screenshots and the agent's log are in $KEEP_SHOTS"
  fi
  return 0
}
trap 'rc=$?; cleanup_console; (exit $rc); on_exit' EXIT

section "the agent: API on 127.0.0.1:$PORT (TLS, self-signed), tokens"
capture openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$T/key.pem" -out "$T/cert.pem"
[[ $RC -eq 0 ]] || { fail "a self-signed certificate" "$(last_cmd_details)"; exit 1; }
mkdir -p "$AROOT" && chmod 700 "$AROOT"
check "admin token" ea token create admin --role admin && ADMIN_TOKEN=$OUT
check "operator token" ea token create op --role operator && OP_TOKEN=$OUT
[[ -n ${ADMIN_TOKEN:-} && -n ${OP_TOKEN:-} ]] || exit 1

nsenter --net="/run/netns/$NS" "$ENVRUN" --root "$AROOT" serve --api-listen "127.0.0.1:$PORT" --tls-cert "$T/cert.pem" \
  --tls-key "$T/key.pem" >"$T/serve.log" 2>&1 </dev/null &
AGENT_PID=$!                        # nsenter execs envrun, which execs envrun-api: the agent
PIDS_TO_KILL+=("$AGENT_PID")
if ! wait_for 20 in_ns curl -sk -o /dev/null "$URL/"; then
  fail "envrun serve answers on $URL" "$(cat "$T/serve.log")"; exit 1
fi
pass "envrun serve answers on $URL"
page=$(in_ns curl -sk --max-time 10 "$URL/")
assert_contains "GET / is the console page (no token needed)" "$page" 'id="login-form"'
code=$(in_ns curl -sk --max-time 10 -o /dev/null -w '%{http_code}' "$URL/ui/app.js")
assert_eq "GET /ui/app.js" 200 "$code"
code=$(in_ns curl -sk --max-time 10 -o /dev/null -w '%{http_code}' "$URL/v1/bundles")
assert_eq "GET /v1/bundles without a token is refused" 401 "$code"

section "the bundle: versions 1 and 2 of a sleep loop"
LOOP='trap "exit 0" TERM; echo started version $APP_VERSION; while true; do sleep 1; done'
make_bundle app "args('/bin/sh', '-c', '''$LOOP''')" 'c["process"]["env"].append("APP_VERSION=1")'
make_bundle app-v2 "args('/bin/sh', '-c', '''$LOOP''')" 'c["process"]["env"].append("APP_VERSION=2")'

section "the console in headless Chromium"
mkdir -p "$SHOTS"
in_ns timeout -k 10 240 "$PY" "$SRC_DIR/tests/console/test_console.py" --url "$URL/" \
  --admin-token "$ADMIN_TOKEN" --op-token "$OP_TOKEN" --bundle-name app --bundle-v1 "$T/app" \
  --bundle-v2 "$T/app-v2" --id web1 --mode restart --shots "$SHOTS" 2>"$T/selenium.err" | tee "$T/selenium.out"
rc=${PIPESTATUS[0]}
if [[ $rc -eq 0 ]]; then
  pass "the browser session (login, add, start, publish, upgrade, stop)"
else
  fail "the browser session (login, add, start, publish, upgrade, stop): exit $rc" "$(tail -20 "$T/selenium.err")" \
    "agent log: $(tail -20 "$T/serve.log")"
fi

section "what the agent recorded"
st=$(timeout -k 2 20 "$ENVRUN" --root "$AROOT/state" state web1 2>&1)
assert_eq "web1 is stopped in the agent's state root" stopped "$(json_get 'd["status"]' <<<"$st" 2>/dev/null)"
assert_match "web1 runs from version 2 of the library" "$(json_get 'd["bundle"]' <<<"$st" 2>/dev/null)" \
  "/library/app/versions/2/?$"
# audit DESC TOKEN METHOD PATH STATUS: some audit line has exactly these fields.
audit() {
  local n
  n=$("$PY" -c 'import json, sys
tok, method, path, status = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    n += (e.get("token") == tok and e.get("method") == method and e.get("path") == path
          and e.get("status") == status)
print(n)' "$AROOT/api/audit.log" "$2" "$3" "$4" "$5" 2>&1)
  if [[ $n =~ ^[1-9][0-9]*$ ]]; then pass "audit: $1"; else
    fail "audit: $1" "no line {token: $2, method: $3, path: $4, status: $5} ($n)" "$(tail -30 "$AROOT/api/audit.log")"; fi
}
audit "the wrong token's 401" "" GET /v1/instances 401
audit "the admin's bundle add" admin POST /v1/bundles 201
audit "the operator's start of web1" op POST /v1/instances 201
audit "the operator's refused publish" op POST /v1/bundles/app/versions 403
audit "the admin's publish" admin POST /v1/bundles/app/versions 201
audit "the operator's upgrade" op POST /v1/instances/web1/upgrade 200
audit "the operator's stop" op POST /v1/instances/web1/stop 200
audit "the admin's revocation of op" admin DELETE /v1/tokens/op 200
assert_not_contains "the audit log holds no token secret" "$(cat "$AROOT/api/audit.log" 2>&1)" "$OP_TOKEN"

section "the agent stops on SIGTERM"
agent_gone() { ! kill -0 "$AGENT_PID" 2>/dev/null; }
kill -TERM "$AGENT_PID" 2>/dev/null
if wait_for 15 agent_gone; then pass "envrun serve exits on SIGTERM"; else
  fail "envrun serve exits on SIGTERM" "$(ps -o pid,stat,cmd -p "$AGENT_PID" 2>&1)"; fi
