#!/usr/bin/env bash
# envrun serve's management API over its unix socket (envrun-serve(8)): tokens (roles,
# expiry, revocation, bundle limits), every endpoint refused without a valid token, reads
# and writes by role, path and id parameters that try to leave the data root, oversized
# and malformed bodies, the audit log, the instance lifecycle, token endpoints; the agent
# keeps answering after each bad request and stops cleanly on SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/api_lib.sh"

section "tokens"
token admin admin
token ro read-only
token bill billing
token op operator --bundle web
token other operator --bundle elsewhere
token exp read-only --expires 1s
token rev admin
check "token revoke" timeout 10 "$ENVRUN" --root "$ADIR" token revoke rev
assert_match "the secret is printed once" "$(cat "$T/tok.admin")" '^envrun_[0-9a-f]{64}$'
assert_eq "tokens.json is 0600" 600 "$(stat -c %a "$ADIR/api/tokens.json")"
assert_eq "the api dir is 0700" 700 "$(stat -c %a "$ADIR/api")"
if grep -q "$(cat "$T/tok.admin")" "$ADIR/api/tokens.json"; then fail "no secret in tokens.json"; else pass "no secret in tokens.json"; fi
capture timeout 10 "$ENVRUN" --root "$ADIR" token list
assert_line_match "token list: rev revoked" "$OUT" '^rev +admin .* revoked$'
assert_line_match "token list: op limited to web" "$OUT" '^op +operator +web '
expect_fail 2 "--role" timeout 10 "$ENVRUN" --root "$ADIR" token create x --role root
expect_fail 5 "exists" timeout 10 "$ENVRUN" --root "$ADIR" token create admin --role admin
sleep 1.1  # exp expires

section "serve"
start_api
assert_eq "the socket is 0660" 660 "$(stat -c %a "$SOCK")"

section "bundles and instances"
api_bundle web
expect_code "admin adds bundle web" 201 admin POST /v1/bundles "{\"name\": \"web\", \"dir\": \"$B\"}"
assert_eq "web is version 1" 1 "$(json_get 'd["version"]' <<<"$BODY")"
expect_code "admin creates w1" 201 admin POST /v1/instances '{"id": "w1", "bundle": "web"}'
assert_eq "w1 is running" running "$(json_get 'd["status"]' <<<"$BODY")"
assert_eq "w1 runs version 1 of web" "web 1" "$(json_get 'd["bundle"] + " " + str(d["version"])' <<<"$BODY")"
expect_code "operator of web creates w2" 201 op POST /v1/instances '{"id": "w2", "bundle": "web"}'
expect_code "read-only lists instances" 200 ro GET /v1/instances
assert_eq "two instances listed" "w1 w2" "$(json_get '" ".join(sorted(i["id"] for i in d))' <<<"$BODY")"
expect_code "read-only reads w1" 200 ro GET /v1/instances/w1
assert_match "w1 has a pid" "$(json_get 'd["pid"]' <<<"$BODY")" '^[1-9][0-9]*$'
assert_eq "local state agrees" running "$(timeout 10 "$ENVRUN" --root "$ADIR/state" state w1 | json_get 'd["status"]')"
expect_code "read-only lists bundles" 200 ro GET /v1/bundles
assert_eq "bundle list" web "$(json_get '" ".join(b["name"] for b in d)' <<<"$BODY")"
expect_code "read-only reads bundle web" 200 ro GET /v1/bundles/web

section "no valid token: 401 on every endpoint"
ROUTES=$(timeout 10 "$ENVRUN" --root "$ADIR" serve --list-routes)
assert_contains "the route list has the instances" "$ROUTES" "GET /v1/instances/{id}"
n=0
while read -r method pattern; do
  path=${pattern//\{id\}/w1}
  path=${path//\{name\}/web}
  for who in - exp rev; do
    expect_code "$method $path with token [$who]" 401 "$who" "$method" "$path" '{}'
  done
  api - "$method" "$path" '{}' --token "envrun_0000000000000000000000000000000000000000000000000000000000000000"
  [[ $CODE == 401 ]] && pass "$method $path with an unknown token (401)" || fail "$method $path with an unknown token: want 401" "got: $CODE $BODY"
  n=$((n + 1))
done <<<"$ROUTES"
((n >= 20)) && pass "$n routes tried" || fail "at least 20 routes tried" "only $n: $ROUTES"
expect_code "no Authorization header" 401 - GET /v1/instances
api ro GET /v1/instances
assert_eq "w1 still running after the 401s" running "$(json_get '[i["status"] for i in d if i["id"] == "w1"][0]' <<<"$BODY")"

section "roles: 403"
expect_code "read-only may not stop w1" 403 ro POST /v1/instances/w1/stop
expect_code "read-only may not create" 403 ro POST /v1/instances '{"id": "x1", "bundle": "web"}'
expect_code "read-only may not delete w1" 403 ro DELETE /v1/instances/w1
expect_code "read-only may not change a bundle" 403 ro PUT /v1/bundles/web/labels '{"labels": {"a": "b"}}'
expect_code "read-only may not list tokens" 403 ro GET /v1/tokens
expect_code "read-only may not read the audit log" 403 ro GET /v1/audit
expect_code "read-only reads usage" 200 ro GET /v1/usage
expect_code "billing may not list instances" 403 bill GET /v1/instances
expect_code "billing may not list bundles" 403 bill GET /v1/bundles
expect_code "billing reads usage" 200 bill GET "/v1/usage?bundle=web"
expect_code "operator may not add bundles" 403 op POST /v1/bundles "{\"name\": \"x\", \"dir\": \"$B\"}"
expect_code "operator may not make tokens" 403 op POST /v1/tokens '{"name": "y", "role": "admin"}'
expect_code "operator of elsewhere may not stop w1" 403 other POST /v1/instances/w1/stop
expect_code "operator of elsewhere may not read w1" 403 other GET /v1/instances/w1
api other GET /v1/instances
assert_eq "operator of elsewhere sees no instance" "[]" "$BODY"
assert_eq "w1 still running after the 403s" running "$(timeout 10 "$ENVRUN" --root "$ADIR/state" state w1 | json_get 'd["status"]')"

section "paths and ids that leave the data root"
echo canary >"$T/canary"
before=$(cd "$T" && ls -A | sort | tr '\n' ' ')
for p in "/v1/instances/.." "/v1/instances/%2e%2e" "/v1/instances/%2E%2E/stop" "/v1/bundles/.." "/v1/bundles/%2e%2e/versions"; do
  api admin GET "$p"
  [[ $CODE == 400 || $CODE == 404 || $CODE == 405 ]] && pass "GET $p refused ($CODE)" || fail "GET $p refused" "got: $CODE $BODY"
done
for p in "/v1/instances/%2e%2e/start" "/v1/instances/a%2Fb/stop" "/v1/instances/..%2F..%2Fcanary/kill"; do
  api admin POST "$p" '{}'
  [[ $CODE == 400 || $CODE == 404 ]] && pass "POST $p refused ($CODE)" || fail "POST $p refused" "got: $CODE $BODY"
done
expect_code "DELETE of instance .." 400 admin DELETE "/v1/instances/%2e%2e"
expect_code "DELETE of bundle .." 400 admin DELETE "/v1/bundles/%2e%2e"
expect_code "DELETE of token ../../canary" 404 admin DELETE "/v1/tokens/..%2F..%2Fcanary"
expect_code "create with id ../../canary" 400 admin POST /v1/instances '{"id": "../../canary", "bundle": "web"}'
assert_contains "the message names the field" "$BODY" 'field \"id\"'
expect_code "create with bundle ../web" 400 admin POST /v1/instances '{"id": "x2", "bundle": "../web"}'
expect_code "create with bundle ." 400 admin POST /v1/instances '{"id": "x2", "bundle": "."}'
expect_code "bundle name ../../x" 400 admin POST /v1/bundles "{\"name\": \"../../x\", \"dir\": \"$B\"}"
expect_code "token name with a slash" 400 admin POST /v1/tokens '{"name": "a/b", "role": "admin"}'
expect_code "an unknown instance" 404 admin GET /v1/instances/nosuch
expect_code "an unknown path" 404 admin GET /v1/nosuch
expect_code "a known path with another method" 405 admin PUT /v1/instances
assert_eq "the canary is untouched" canary "$(cat "$T/canary")"
assert_eq "nothing new next to the data root" "$before" "$(cd "$T" && ls -A | sort | tr '\n' ' ')"
alive "the traversal attempts"

section "bodies"
expect_code "a 2 MiB body" 413 admin POST /v1/instances --raw-body-size $((2 * 1024 * 1024))
assert_contains "413 says why" "$BODY" "larger than"
alive "the 2 MiB body"
head -c $((3 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$T/big.json"
capture curl -s -o "$T/big.out" -w '%{http_code}' --unix-socket "$SOCK" -H "Authorization: Bearer $(cat "$T/tok.admin")" \
  -H "Transfer-Encoding: chunked" -H "Content-Type: application/json" --data-binary @"$T/big.json" http://localhost/v1/instances
assert_eq "a chunked 3 MiB body is refused before it is read" 411 "$OUT"
alive "the chunked body"
expect_code "malformed JSON" 400 admin POST /v1/instances --raw-body '{"id": "x3", "bundle": '
assert_contains "400 names the problem" "$BODY" "malformed JSON"
alive "the malformed body"
expect_code "a body that is not an object" 400 admin POST /v1/instances --raw-body '[1, 2]'
assert_contains "it says what it wants" "$BODY" "want a JSON object"
expect_code "a field of the wrong type" 400 admin POST /v1/instances '{"id": 7, "bundle": "web"}'
assert_contains "the field is named" "$BODY" 'field \"id\": want a string'
expect_code "a missing field" 400 admin POST /v1/instances '{"id": "x4"}'
assert_contains "the missing field is named" "$BODY" 'field \"bundle\" is required'
expect_code "an unknown bundle" 404 admin POST /v1/instances '{"id": "x5", "bundle": "nosuch"}'
expect_code "an id in use" 409 admin POST /v1/instances '{"id": "w1", "bundle": "web"}'
alive "the bad bodies"

section "lifecycle"
expect_code "stop w1" 200 admin POST /v1/instances/w1/stop '{"timeout_s": 5}'
assert_eq "w1 stopped" stopped "$(json_get 'd["status"]' <<<"$BODY")"
expect_code "start w1 again" 200 admin POST /v1/instances/w1/start
assert_eq "w1 running again" running "$(json_get 'd["status"]' <<<"$BODY")"
expect_code "start a running w1" 409 admin POST /v1/instances/w1/start
expect_code "kill w2 with KILL" 200 op POST /v1/instances/w2/kill '{"signal": "KILL"}'
wait_for 10 sh -c "timeout 10 '$ENVRUN' --root '$ADIR/state' state w2 | grep -q '\"stopped\"'"
expect_code "a bad signal" 400 op POST /v1/instances/w2/kill '{"signal": "KILL; rm -rf /"}'
expect_code "delete w2" 200 op DELETE /v1/instances/w2
expect_code "w2 is gone" 404 admin GET /v1/instances/w2
expect_code "delete a running w1 without force" 409 admin DELETE /v1/instances/w1
expect_code "delete it with force" 200 admin DELETE "/v1/instances/w1?force=1"
assert_eq "no state dir left" "" "$(ls -A "$ADIR/state")"

section "token endpoints"
expect_code "admin makes a token" 201 admin POST /v1/tokens '{"name": "made", "role": "read-only", "expires": "1h"}'
json_get 'd["token"]' <<<"$BODY" >"$T/tok.made"
expect_code "the new token works" 200 made GET /v1/instances
expect_code "admin lists tokens" 200 admin GET /v1/tokens
assert_not_contains "no hash or secret in the listing" "$BODY" "sha256"
expect_code "admin revokes it" 200 admin DELETE /v1/tokens/made
expect_code "the revoked token fails" 401 made GET /v1/instances
expect_code "a bad role" 400 admin POST /v1/tokens '{"name": "z", "role": "root"}'
expect_code "a bad expiry" 400 admin POST /v1/tokens '{"name": "z", "role": "admin", "expires": "soon"}'

section "audit log"
assert_eq "audit.log is 0600" 600 "$(stat -c %a "$ADIR/api/audit.log")"
AUDIT=$(cat "$ADIR/api/audit.log")
assert_line_match "the creation of w1 is audited" "$AUDIT" '"method":"POST","path":"/v1/instances","status":201,"message":"created w1".*|"token":"admin".*"path":"/v1/instances".*"status":201'
assert_line_match "a 401 is audited" "$AUDIT" '"status":401'
assert_line_match "a 403 is audited with the token name" "$AUDIT" '"token":"ro".*"status":403'
assert_line_match "the 413 is audited" "$AUDIT" '"status":413'
assert_line_match "remote is the unix socket" "$AUDIT" '"remote":"unix"'
leak=0
for f in "$T"/tok.*; do [[ $f == *.err ]] && continue; s=$(cat "$f"); [[ -n $s ]] && grep -qF "$s" "$ADIR/api/audit.log" && leak=1; done
assert_eq "no secret in the audit log" 0 "$leak"
reads=$(python3 -c 'import json,sys
n = 0
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["method"] == "GET" and e["status"] not in (401, 403): n += 1
print(n)' "$ADIR/api/audit.log")
assert_eq "successful reads are not audited" 0 "$reads"
expect_code "admin reads the audit log" 200 admin GET "/v1/audit?limit=3"
assert_eq "three entries" 3 "$(json_get 'len(d)' <<<"$BODY")"

section "SIGTERM"
kill -TERM "$AGENT_PID"
if wait_for 10 sh -c "! kill -0 $AGENT_PID 2>/dev/null"; then pass "the agent exits on SIGTERM"; else fail "the agent exits on SIGTERM"; fi
assert_eq "the socket is removed" no "$([[ -e $SOCK ]] && echo yes || echo no)"
