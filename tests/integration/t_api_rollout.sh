#!/usr/bin/env bash
# POST /v1/bundles/{name}/rollout: every running instance of a bundle upgraded in turn; the
# first that fails its health check is rolled back and stops the rollout (the rest stay on
# their version), unless "continue" is asked; roles and bad input.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/api_lib.sh"

token admin admin
token ro read-only
start_api
api_bundle web
expect_code "add web" 201 admin POST /v1/bundles "{\"name\": \"web\", \"dir\": \"$B\"}"
for i in r1 r2 r3; do expect_code "$i on version 1" 201 admin POST /v1/instances "{\"id\": \"$i\", \"bundle\": \"web\"}"; done
expect_code "stop r3" 200 admin POST /v1/instances/r3/stop '{"timeout_s": 2}'
expect_code "version 2 (labels)" 200 admin PUT /v1/bundles/web/labels '{"labels": {"v": "2"}}'
version_of() { api admin GET "/v1/instances/$1"; json_get 'd["version"]' <<<"$BODY"; }

section "a rollout to version 2"
expect_code "rollout" 200 admin POST /v1/bundles/web/rollout '{"mode": "restart"}'
assert_eq "the running instances were tried, in order" "r1 r2" "$(json_get '" ".join(e["id"] for e in d["instances"])' <<<"$BODY")"
assert_eq "all upgraded" true "$(json_get 'd["upgraded_all"]' <<<"$BODY")"
assert_eq "r1 on version 2" 2 "$(version_of r1)"
assert_eq "r2 on version 2" 2 "$(version_of r2)"
assert_eq "the stopped r3 was left alone" 1 "$(version_of r3)"

section "a version whose health check fails stops the rollout at the first instance"
expect_code "version 3" 200 admin PUT /v1/bundles/web/labels '{"labels": {"v": "3"}}'
expect_code "rollout with a failing check" 409 admin POST /v1/bundles/web/rollout '{"mode": "restart", "health": {"exec": ["false"], "timeout_s": 2}}'
assert_eq "r1 was tried and rolled back" "r1 True" "$(json_get 'd["instances"][0]["id"] + " " + str(d["instances"][0]["rolled_back"])' <<<"$BODY")"
assert_eq "r2 was skipped" '["r2"]' "$(json_get 'd["skipped"]' <<<"$BODY")"
assert_eq "r1 runs version 2 again" 2 "$(version_of r1)"
api admin GET /v1/instances/r1
assert_eq "... and is running" running "$(json_get 'd["status"]' <<<"$BODY")"
assert_eq "r2 still on version 2" 2 "$(version_of r2)"
expect_code "with continue" 409 admin POST /v1/bundles/web/rollout '{"mode": "restart", "continue": true, "health": {"exec": ["false"], "timeout_s": 2}}'
assert_eq "both were tried" "r1 r2" "$(json_get '" ".join(e["id"] for e in d["instances"])' <<<"$BODY")"
assert_eq "nothing skipped" "[]" "$(json_get 'd["skipped"]' <<<"$BODY")"

section "refusals"
expect_code "read-only may not roll out" 403 ro POST /v1/bundles/web/rollout '{}'
expect_code "no token" 401 - POST /v1/bundles/web/rollout '{}'
expect_code "an unknown bundle" 404 admin POST /v1/bundles/nosuch/rollout '{}'
expect_code "a bad mode" 400 admin POST /v1/bundles/web/rollout '{"mode": "sideways"}'
expect_code "continue not a boolean" 400 admin POST /v1/bundles/web/rollout '{"continue": "yes"}'
expect_code "a name that leaves the root" 400 admin POST /v1/bundles/%2e%2e/rollout '{}'
assert_line_match "the rollouts are audited" "$(cat "$ADIR/api/audit.log")" '"path":"/v1/bundles/web/rollout","status":409'
kill -TERM "$AGENT_PID"
