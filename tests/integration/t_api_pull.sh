#!/usr/bin/env bash
# Bundles from a registry through the API: Debian's docker-registry on 127.0.0.1, an image
# built here (oci_image.py: the busybox fixture, a sleeping entrypoint) pushed by skopeo;
# POST /v1/bundles {pull} adds version 1, POST /v1/bundles/{name}/versions {pull} publishes
# version 2 from another tag, an instance runs each; the layers land in the agent's own
# store (DIR/store) and no temporary directory is left; an unknown tag is a clean error.
source "$(dirname "$0")/lib.sh"
for tool in docker-registry skopeo; do
  command -v $tool >/dev/null || { echo "SKIP: $tool not installed (scripts/deps.sh)"; exit 77; }
done
source "$(dirname "$0")/api_lib.sh"
source "$LIB_DIR/registry_lib.sh"
start_registry
push() {  # push NAME:TAG ENV_VALUE
  rm -rf "$T/oci"
  python3 "$LIB_DIR/oci_image.py" "$T/oci" t --config "{\"Entrypoint\":[\"/bin/sleep\",\"100000\"],\"Env\":[\"PATH=/bin\",\"APP=$2\"]}" \
    --layer-dir "$FIXTURE_ROOTFS" >/dev/null || return 1
  timeout 60 skopeo copy -q --dest-tls-verify=false "oci:$T/oci:t" "docker://$REG/$1" >/dev/null
}
check "push app:1" push app:1 one
check "push app:2" push app:2 two

token admin admin
start_api
expect_code "add from the registry" 201 admin POST /v1/bundles "{\"name\": \"app\", \"pull\": \"$REG/app:1\", \"insecure\": true}"
assert_eq "version 1" 1 "$(json_get 'd["version"]' <<<"$BODY")"
expect_code "publish app:2" 201 admin POST /v1/bundles/app/versions "{\"pull\": \"$REG/app:2\", \"insecure\": true}"
assert_eq "version 2" 2 "$(json_get 'd["version"]' <<<"$BODY")"
expect_code "an unknown tag" 500 admin POST /v1/bundles/app/versions "{\"pull\": \"$REG/app:nosuch\", \"insecure\": true}"
assert_contains "the error names the image" "$BODY" "app:nosuch"
expect_code "a reference that looks like an option" 400 admin POST /v1/bundles/app/versions '{"pull": "--help"}'
expect_code "still version 2" 200 admin GET /v1/bundles/app
assert_eq "no version made by the failures" 2 "$(json_get 'd["version"]' <<<"$BODY")"
expect_code "v1 instance" 201 admin POST /v1/instances '{"id": "p1", "bundle": "app", "version": 1}'
expect_code "v2 instance" 201 admin POST /v1/instances '{"id": "p2", "bundle": "app"}'
for i in 1 2; do
  pid=$(timeout 10 "$ENVRUN" --root "$ADIR/state" state p$i | json_get 'd["pid"]')
  want=$([[ $i == 1 ]] && echo one || echo two)
  assert_contains "p$i runs the image of app:$i" "$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null)" "APP=$want"
done
check "the layers are in the agent's store" test -d "$ADIR/store"
assert_eq "no temporary pull directory left" "" "$(ls -A "$ADIR/incoming" 2>/dev/null)"
expect_code "delete p1" 200 admin DELETE "/v1/instances/p1?force=1"
expect_code "delete p2" 200 admin DELETE "/v1/instances/p2?force=1"
kill -TERM "$AGENT_PID"
