#!/usr/bin/env bash
# The bundle library through the API (agent/library.hpp behind /v1/bundles) and an upgrade
# through POST /v1/instances/{id}/upgrade: each PUT makes a new version (labels, limits,
# config, intercept), a bad file is refused with no version made, a directory publishes
# the next version, an instance pins its version until it is upgraded (restart mode, exec
# health check), a failing health check rolls back (409), a bundle in use is not removed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/api_lib.sh"

token admin admin
token op operator --bundle web
start_api
api_bundle web
WEB=$B
expect_code "add web" 201 admin POST /v1/bundles "{\"name\": \"web\", \"dir\": \"$WEB\"}"
expect_code "add it again" 409 admin POST /v1/bundles "{\"name\": \"web\", \"dir\": \"$WEB\"}"
expect_code "add from a relative dir" 400 admin POST /v1/bundles '{"name": "w2", "dir": "rel/dir"}'
expect_code "add with both dir and pull" 400 admin POST /v1/bundles "{\"name\": \"w2\", \"dir\": \"$WEB\", \"pull\": \"x\"}"
expect_code "w1 on version 1" 201 admin POST /v1/instances '{"id": "w1", "bundle": "web"}'

section "a new version per change"
expect_code "labels" 200 admin PUT /v1/bundles/web/labels '{"labels": {"team": "shop", "tier": "gold"}}'
assert_eq "version 2 is current" 2 "$(json_get 'd["version"]' <<<"$BODY")"
assert_eq "its labels" '{"team": "shop", "tier": "gold"}' "$(json_get 'd["labels"]' <<<"$BODY")"
expect_code "limits" 200 admin PUT /v1/bundles/web/limits '{"resources": {"pids": {"limit": 64}}}'
assert_eq "version 3" 3 "$(json_get 'd["version"]' <<<"$BODY")"
expect_code "read web" 200 admin GET /v1/bundles/web
assert_eq "its limits" 64 "$(json_get 'd["limits"]["pids"]["limit"]' <<<"$BODY")"
assert_eq "its labels survive the limits change" shop "$(json_get 'd["labels"]["team"]' <<<"$BODY")"
assert_eq "three versions" "1 2 3" "$(json_get '" ".join(str(v["version"]) for v in d["versions"])' <<<"$BODY")"
expect_code "a broken intercept.yaml" 400 admin PUT /v1/bundles/web/intercept '{"text": "rules: [unclosed"}'
expect_code "a config without process.args" 400 admin PUT /v1/bundles/web/config '{"config": {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"args": [], "cwd": "/"}}}'
expect_code "read web again" 200 admin GET /v1/bundles/web
assert_eq "no version made by the refused changes" 3 "$(json_get 'd["version"]' <<<"$BODY")"
expect_code "operator may not change web" 403 op PUT /v1/bundles/web/labels '{"labels": {}}'
python3 - "$WEB/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["env"].append("WEB_VERSION=4")
json.dump(c, open(sys.argv[1], "w"))
PY
expect_code "publish a directory" 201 admin POST /v1/bundles/web/versions "{\"dir\": \"$WEB\"}"
assert_eq "version 4 is current" 4 "$(json_get 'd["version"]' <<<"$BODY")"
expect_code "w1 still on version 1" 200 admin GET /v1/instances/w1
assert_eq "pinned" 1 "$(json_get 'd["version"]' <<<"$BODY")"

section "upgrade"
expect_code "operator upgrades w1 (restart, exec health check)" 200 op POST /v1/instances/w1/upgrade \
  '{"mode": "restart", "health": {"exec": ["/bin/true"], "timeout_s": 10}}'
assert_eq "upgraded 1 -> 4" "True 1 4 restart" "$(json_get '" ".join(str(d[k]) for k in ("upgraded", "from_version", "to_version", "mode_used"))' <<<"$BODY")"
expect_code "w1 after the upgrade" 200 admin GET /v1/instances/w1
assert_eq "w1 runs version 4" "4 running" "$(json_get 'str(d["version"]) + " " + d["status"]' <<<"$BODY")"
pid=$(json_get 'd["pid"]' <<<"$BODY")
assert_contains "the new environment" "$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null)" "WEB_VERSION=4"
expect_code "upgrade to 2 with a failing health check" 409 admin POST /v1/instances/w1/upgrade \
  '{"version": 2, "mode": "restart", "health": {"exec": ["/bin/false"], "timeout_s": 2}}'
assert_eq "rolled back" "True False" "$(json_get 'str(d["rolled_back"]) + " " + str(d["upgraded"])' <<<"$BODY")"
expect_code "w1 after the rollback" 200 admin GET /v1/instances/w1
assert_eq "w1 back on version 4, running" "4 running" "$(json_get 'str(d["version"]) + " " + d["status"]' <<<"$BODY")"
expect_code "a bad mode" 400 admin POST /v1/instances/w1/upgrade '{"mode": "magic"}'
expect_code "a bad health timeout" 400 admin POST /v1/instances/w1/upgrade '{"health": {"timeout_s": 0}}'

section "remove"
expect_code "web is in use" 409 admin DELETE /v1/bundles/web
expect_code "delete w1" 200 admin DELETE "/v1/instances/w1?force=1"
expect_code "remove web" 200 admin DELETE /v1/bundles/web
expect_code "web is gone" 404 admin GET /v1/bundles/web
assert_eq "its directory is gone" no "$([[ -e $ADIR/library/web ]] && echo yes || echo no)"
assert_line_match "the changes are audited" "$(cat "$ADIR/api/audit.log")" '"token":"op".*"path":"/v1/instances/w1/upgrade","status":200'
kill -TERM "$AGENT_PID"
