#!/usr/bin/env bash
# The management API over TCP with TLS (a self-signed certificate made here with openssl)
# and the remote command line: `envrun --host unix:///SOCK|https://HOST:PORT --token-file F
# [--cacert F] list|state|start|kill|delete|run` prints what the local commands print and
# exits with their codes. Plain HTTP to the TLS port gets no answer; plain TCP without a
# certificate is refused at start; an unknown CA fails the remote CLI.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/api_lib.sh"
command -v openssl >/dev/null || { fail "openssl is not installed"; exit 1; }

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=envrun-test \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1 ||
  { fail "openssl makes a certificate"; exit 1; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$T/other.key" -out "$T/other.pem" >/dev/null 2>&1

section "TLS only"
expect_fail 2 "needs --tls-cert" timeout 10 "$ENVRUN" --root "$ADIR" serve --api-listen "127.0.0.1:$PORT"
token admin admin
token ro read-only
start_api --api-listen "127.0.0.1:$PORT" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
wait_for 10 grep -q "https://127.0.0.1:$PORT" "$T/serve.log" || fail "the TLS listener is up" "$(cat "$T/serve.log")"
capture timeout 20 python3 "$APICLIENT" --https "127.0.0.1:$PORT" --cacert "$T/cert.pem" --token-file "$T/tok.ro" GET /v1/instances
assert_eq "HTTPS with the right CA: 200" 200 "$(head -n1 <<<"$OUT")"
capture timeout 20 python3 "$APICLIENT" --https "127.0.0.1:$PORT" --cacert "$T/cert.pem" GET /v1/instances
assert_eq "HTTPS without a token: 401" 401 "$(head -n1 <<<"$OUT")"
cat >"$T/plain.py" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
try:
    c.request("GET", "/v1/instances")
    print("answered", c.getresponse().status)
except Exception as e:
    print("refused", type(e).__name__)
PY
capture timeout 20 python3 "$T/plain.py" "$PORT"
assert_match "plain HTTP to the TLS port gets no HTTP answer" "$OUT" '^refused'
expect_ok "the agent still answers over TLS" timeout 20 python3 "$APICLIENT" --https "127.0.0.1:$PORT" --cacert "$T/cert.pem" --token-file "$T/tok.ro" GET /v1/bundles

section "remote CLI over the unix socket"
api_bundle web
expect_code "add bundle web" 201 admin POST /v1/bundles "{\"name\": \"web\", \"dir\": \"$B\"}"
RU=(timeout 60 "$ENVRUN" --host "unix://$SOCK" --token-file "$T/tok.admin")
LOCAL=(timeout 30 "$ENVRUN" --root "$ADIR/state")
capture "${RU[@]}" run -d -b web r1
assert_eq "remote run: exit 0, no output" "0:" "$RC:$OUT"
capture "${RU[@]}" run -b web:1 r2
assert_eq "remote run of version 1" 0 "$RC"
capture "${RU[@]}" list; remote=$OUT
capture "${LOCAL[@]}" list; localout=$OUT
assert_eq "remote list = local list" "$localout" "$remote"
assert_line_match "the list shows r1 running" "$remote" '^r1 +[0-9]+ +running '
capture "${RU[@]}" list -f json; remote=$OUT
capture "${LOCAL[@]}" list -f json
assert_eq "remote list -f json = local" "$OUT" "$remote"
capture "${RU[@]}" list -q; remote=$OUT
capture "${LOCAL[@]}" list -q
assert_eq "remote list -q = local" "$OUT" "$remote"
capture "${RU[@]}" state r1; remote=$OUT
capture "${LOCAL[@]}" state r1
assert_eq "remote state = local state" "$OUT" "$remote"
capture "${RU[@]}" state nosuch; rrc=$RC
capture "${LOCAL[@]}" state nosuch
assert_eq "remote state of an unknown id exits like local" "$RC" "$rrc"
expect_fail 5 "" "${RU[@]}" run -b web r1
check "remote kill r2 KILL" "${RU[@]}" kill r2 KILL
wait_for 10 sh -c "timeout 10 '$ENVRUN' --root '$ADIR/state' state r2 | grep -q '\"stopped\"'"
assert_eq "r2 stopped" stopped "$("${LOCAL[@]}" state r2 | json_get 'd["status"]')"
check "remote start of the stopped r2" "${RU[@]}" start r2
assert_eq "r2 running again" running "$("${LOCAL[@]}" state r2 | json_get 'd["status"]')"
capture "${RU[@]}" delete r2; rrc=$RC
capture "${LOCAL[@]}" delete r2
assert_eq "remote delete of a running instance exits like local" "$RC" "$rrc"
check "remote delete -f r2" "${RU[@]}" delete -f r2
assert_eq "r2 is gone" "" "$(ls "$ADIR/state" | grep -x r2)"
expect_fail 1 "may not" timeout 30 "$ENVRUN" --host "unix://$SOCK" --token-file "$T/tok.ro" kill r1 KILL
expect_fail 2 "plain http is refused" timeout 30 "$ENVRUN" --host "http://127.0.0.1:$PORT" --token-file "$T/tok.ro" list
expect_fail 2 "token-file" timeout 30 "$ENVRUN" --host "unix://$SOCK" --token-file "$T/nosuch" list

section "remote CLI over HTTPS"
RH=(timeout 60 "$ENVRUN" --host "https://127.0.0.1:$PORT" --cacert "$T/cert.pem" --token-file "$T/tok.admin")
capture "${RH[@]}" list; remote=$OUT
capture "${LOCAL[@]}" list
assert_eq "remote list over HTTPS = local list" "$OUT" "$remote"
capture "${RH[@]}" state r1; remote=$OUT
capture "${LOCAL[@]}" state r1
assert_eq "remote state over HTTPS = local" "$OUT" "$remote"
capture timeout 30 "$ENVRUN" --host "https://127.0.0.1:$PORT" --cacert "$T/other.pem" --token-file "$T/tok.admin" list
assert_eq "an unknown CA fails" 1 "$RC"
assert_contains "it says why" "$ERR" "SSL"
check "remote delete -f r1 over HTTPS" "${RH[@]}" delete -f r1
assert_eq "no instance left" "" "$(ls -A "$ADIR/state")"
assert_line_match "a TLS client's address is audited" "$(cat "$ADIR/api/audit.log")" '"remote":"127\.0\.0\.1:[0-9]+"'
