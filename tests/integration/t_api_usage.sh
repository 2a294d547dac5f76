#!/usr/bin/env bash
# GET /v1/usage from a real billing ledger: an instance started through the API, metered by
# `envrun meterd --once` (the collector the cron job runs), is reported under its library
# bundle's name with its instance id and metrics; a token limited to another bundle sees
# nothing of it, and a time window before the instance ran is empty. GET /v1/billing prices
# the same window by the plan given to envrun serve --plan.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/api_lib.sh"

LEDGER=$T/ledger.db
cat >"$T/plan.yaml" <<'YAML'
version: 1
currency: EUR
rounding: {mode: half-up, digits: 2}
metrics:
  processes_peak: {unit_price: 7}
YAML
printf 'version: 1\ncurrency: EUR\nmetrics:\n  cpu_seconds: {unit_price: 1}\n' >"$T/bad-plan.yaml"
capture timeout 20 "$ENVRUN" --root "$T/bad-agent" serve --plan "$T/bad-plan.yaml"
assert_eq "a bad --plan: envrun serve refuses to start (exit 3)" 3 "$RC"
assert_contains "... naming the file, line, field and reason" "$ERR" "bad-plan.yaml:4:3: metrics.cpu_seconds: unknown metric"
check "... and leaves no API socket" test ! -e "$T/bad-agent/api.sock"
token admin admin
token bill billing
token other read-only --bundle zzz
start_api --ledger "$LEDGER" --plan "$T/plan.yaml"
api_bundle web
expect_code "add web" 201 admin POST /v1/bundles "{\"name\": \"web\", \"dir\": \"$B\"}"
before_ms=$(( $(date +%s) * 1000 - 60000 ))
expect_code "u1 on web" 201 admin POST /v1/instances '{"id": "u1", "bundle": "web"}'

section "the collector records the instance"
meter() { timeout 60 "$ENVRUN" --root "$ADIR/state" meterd --once --ledger "$LEDGER" >"$T/meterd.out" 2>&1 </dev/null; }
check "meterd --once (1)" meter || cat "$T/meterd.out"
sleep 1
check "meterd --once (2)" meter || cat "$T/meterd.out"

section "GET /v1/usage"
expect_code "the billing role reads usage of web" 200 bill GET "/v1/usage?bundle=web"
assert_eq "one bundle, named as in the library" web "$(json_get '",".join(b["bundle"] for b in d["bundles"])' <<<"$BODY")"
assert_contains "its instance" "$(json_get 'd["bundles"][0]["instances"]' <<<"$BODY")" "u1"
assert_line_match "memory is among its metrics, with a unit" \
  "$(json_get '"\n".join(k + " " + v["unit"] for k, v in d["bundles"][0]["metrics"].items())' <<<"$BODY")" '^memory[a-z_]* [A-Za-z-]+'
expect_code "all bundles" 200 bill GET /v1/usage
assert_contains "web among all bundles" "$(json_get '[b["bundle"] for b in d["bundles"]]' <<<"$BODY")" "web"
expect_code "a token of another bundle" 200 other GET /v1/usage
assert_eq "... sees no bundle" 0 "$(json_get 'len(d["bundles"])' <<<"$BODY")"
expect_code "a window that ends before u1 ran" 200 bill GET "/v1/usage?from=0&to=$before_ms"
assert_eq "... is empty" 0 "$(json_get 'len(d["bundles"])' <<<"$BODY")"
expect_code "to before from" 400 bill GET "/v1/usage?from=10&to=5"
expect_code "a bad bundle name" 400 bill GET "/v1/usage?bundle=../x"
expect_code "the billing role may not read instances" 403 bill GET /v1/instances

section "GET /v1/billing: the window priced by the agent's plan"
expect_code "the billing role reads billing of web" 200 bill GET "/v1/billing?bundle=web"
assert_eq "in the plan's currency" EUR "$(json_get 'd["currency"]' <<<"$BODY")"
assert_eq "processes_peak: 1 process x 7 = 7.00 EUR" "1 7.00" \
  "$(json_get '" ".join(str(r["ConsumedQuantity"]) + " " + "%.2f" % float(r["BilledCost"]) for r in d["rows"] if r["x_Metric"] == "processes_peak")' <<<"$BODY")"
assert_eq "every row is web's" web "$(json_get '",".join(sorted(set(r["ResourceName"] for r in d["rows"])))' <<<"$BODY")"
expect_code "a token of another bundle" 200 other GET /v1/billing
assert_eq "... gets no row" 0 "$(json_get 'len(d["rows"])' <<<"$BODY")"
expect_code "no token" 401 - GET /v1/billing
expect_code "bad window" 400 bill GET "/v1/billing?from=10&to=5"

kill -TERM "$AGENT_PID"
