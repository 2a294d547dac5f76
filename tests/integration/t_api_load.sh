#!/usr/bin/env bash
# Load on the management API's read endpoints: 50 concurrent clients (threads with
# keep-alive connections over the unix socket, tests/api/loadgen.py) for 30 s against
# GET /v1/instances, /v1/bundles and /v1/instances/{id} while three instances run. Zero
# errors are asserted; requests/s and the p50/p99 latencies are printed (not asserted:
# they depend on the machine). API_LOAD_SECONDS / API_LOAD_CLIENTS override the defaults.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/api_lib.sh"
SECONDS_LOAD=${API_LOAD_SECONDS:-30}
CLIENTS=${API_LOAD_CLIENTS:-50}

token admin admin
token ro read-only
start_api
api_bundle web
expect_code "add bundle web" 201 admin POST /v1/bundles "{\"name\": \"web\", \"dir\": \"$B\"}"
for i in 1 2 3; do
  expect_code "instance w$i" 201 admin POST /v1/instances "{\"id\": \"w$i\", \"bundle\": \"web\"}"
done

section "$CLIENTS clients for $SECONDS_LOAD s"
capture timeout $((SECONDS_LOAD + 60)) python3 "$SRC_DIR/tests/api/loadgen.py" --sock "$SOCK" --token-file "$T/tok.ro" \
  --clients "$CLIENTS" --seconds "$SECONDS_LOAD" /v1/instances /v1/bundles /v1/instances/w1 /v1/instances/w2 /v1/instances/w3
summary=$OUT
assert_eq "the load generator ran" 0 "$RC"
echo "load: $summary"
assert_eq "zero errors" 0 "$(json_get 'd["errors"]' <<<"$summary")"
assert_match "requests were made" "$(json_get 'd["requests"]' <<<"$summary")" '^[1-9][0-9]*$'
printf 'figures: %s clients, %s requests in %s s: %s req/s, p50 %s ms, p90 %s ms, p99 %s ms, max %s ms\n' \
  "$(json_get 'd["clients"]' <<<"$summary")" "$(json_get 'd["requests"]' <<<"$summary")" \
  "$(json_get 'd["seconds"]' <<<"$summary")" "$(json_get 'd["rps"]' <<<"$summary")" \
  "$(json_get 'd["p50_ms"]' <<<"$summary")" "$(json_get 'd["p90_ms"]' <<<"$summary")" \
  "$(json_get 'd["p99_ms"]' <<<"$summary")" "$(json_get 'd["max_ms"]' <<<"$summary")"

section "after the load"
api ro GET /v1/instances
assert_eq "the three instances still run" "running running running" "$(json_get '" ".join(i["status"] for i in sorted(d, key=lambda i: i["id"]))' <<<"$BODY")"
assert_eq "the agent is still up" 0 "$(kill -0 "$AGENT_PID" 2>/dev/null; echo $?)"
assert_eq "successful reads left no audit lines" 0 "$(grep -c '"method":"GET"' "$ADIR/api/audit.log")"
kill -TERM "$AGENT_PID"
if wait_for 10 sh -c "! kill -0 $AGENT_PID 2>/dev/null"; then pass "the agent exits on SIGTERM after the load"; else fail "the agent exits on SIGTERM after the load"; fi
