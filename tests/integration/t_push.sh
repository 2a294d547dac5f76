#!/usr/bin/env bash
# envrun push / login / logout against a real registry: Debian's docker-registry on
# 127.0.0.1 (config and storage in $T). A bundle (busybox rootfs, config.json, an
# intercept.yaml) is pushed and pulled back: same rootfs tree and file contents, same
# config.json and intercept.yaml, and it runs. skopeo reads and copies what we pushed; a
# second push uploads no blob; credentials through a token front (auth_proxy.py).
source "$(dirname "$0")/lib.sh"
for tool in docker-registry skopeo; do
  command -v $tool >/dev/null || { echo "SKIP: $tool not installed (scripts/deps.sh)"; exit 77; }
done
source "$LIB_DIR/registry_lib.sh"
start_registry
export REGISTRY_AUTH_FILE="$T/auth.json"
push() { timeout -k 5 120 "$ENVRUN" push --insecure --store "$T/store" "$@"; }
pull() { timeout -k 5 120 "$ENVRUN" pull --insecure --store "$T/store-pull" "$@"; }
# tree DIR: one line per entry (path, type+mode, owner, size, link target; mtime of every
# entry but the top: files, directories and symlinks)
tree() { (cd "$1" && find . -printf '%p %M %U:%G %s %l\n' | sort; find . -mindepth 1 -printf '%p %T@\n' | sort); }
sums() { (cd "$1" && find . -type f -exec sha256sum {} + | sort -k2); }

# ---------------------------------------------------------------------------
section "push a bundle, pull it back: same rootfs, config.json, intercept.yaml; it runs"
make_bundle src 'args("/bin/sh", "-c", "echo pushed-ok $GREETING $(cat /data/note) $(pwd)")' \
  'c["process"]["cwd"] = "/data"' 'c["envrun"] = {"isolation": "both", "interceptOptional": True}'
mkdir -p "$B/rootfs/data" && echo note-1 >"$B/rootfs/data/note"
ln "$B/rootfs/data/note" "$B/rootfs/data/hardlink"
chown 1234:567 "$B/rootfs/data/note"
cat >"$B/intercept.yaml" <<'EOF'
version: 1
# carried by push
env:
  - set: GREETING
    value: "hi ${ID}"
EOF
capture push "$B" "$REG/team/app:1"
assert_eq "push exits 0" 0 "$RC" || last_cmd_details
assert_contains "push: 2 blobs uploaded (image config, rootfs layer)" "$OUT" "2 blobs uploaded"
manifest=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/team/app/manifests/1")
assert_eq "manifest: one layer, a plain image for other tools" '["application/vnd.oci.image.layer.v1.tar+gzip"]' \
  "$(json_get '[l["mediaType"] for l in d["layers"]]' <<<"$manifest")"
assert_eq "manifest annotations: the bundle files" "$(cat "$B/intercept.yaml")" \
  "$(json_get 'd["annotations"]["io.envrun.bundle.intercept.yaml"].rstrip()' <<<"$manifest")"
assert_eq "manifest annotations: config.json as is" "$(cat "$B/config.json")" \
  "$(json_get 'd["annotations"]["io.envrun.bundle.config.json"].rstrip()' <<<"$manifest")"
capture pull -b "$T/back" "$REG/team/app:1"
assert_eq "pull exits 0" 0 "$RC" || last_cmd_details
assert_contains "pull: 1 layer" "$OUT" "1 layers"
assert_eq "rootfs tree identical (paths, modes, owners, sizes, links, mtimes of files, dirs, symlinks)" "$(tree "$B/rootfs")" "$(tree "$T/back/rootfs")"
assert_eq "rootfs file contents identical (sha256)" "$(sums "$B/rootfs")" "$(sums "$T/back/rootfs")"
check "config.json identical" cmp "$B/config.json" "$T/back/config.json"
check "intercept.yaml identical" cmp "$B/intercept.yaml" "$T/back/intercept.yaml"
assert_eq "hard link kept" "$(stat -c %i "$T/back/rootfs/data/note")" "$(stat -c %i "$T/back/rootfs/data/hardlink" 2>&1)"
capture er run -b "$T/back" pushed1
assert_eq "run the pulled bundle: exit 0" 0 "$RC" || last_cmd_details
assert_eq "run: args, cwd from config.json, GREETING from intercept.yaml" "pushed-ok hi pushed1 note-1 /data" "$OUT"

# ---------------------------------------------------------------------------
section "skopeo reads what envrun pushed"
capture timeout 60 skopeo inspect --tls-verify=false "docker://$REG/team/app:1"
assert_eq "skopeo inspect exits 0" 0 "$RC" || last_cmd_details
assert_eq "skopeo: the image config's Env" '["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]' "$(json_get 'd["Env"]' <<<"$OUT")"
capture timeout 60 skopeo inspect --config --tls-verify=false "docker://$REG/team/app:1"
assert_eq "skopeo: Cmd = process.args" '["/bin/sh", "-c", "echo pushed-ok $GREETING $(cat /data/note) $(pwd)"]' "$(json_get 'd["config"]["Cmd"]' <<<"$OUT")"
assert_eq "skopeo: WorkingDir = process.cwd" /data "$(json_get 'd["config"]["WorkingDir"]' <<<"$OUT")"
check "skopeo copy to oci:" timeout 60 skopeo copy -q --src-tls-verify=false "docker://$REG/team/app:1" "oci:$T/oci:t"
layer=$(json_get 'd["layers"][0]["digest"][7:]' <<<"$manifest")
mkdir -p "$T/untar"
check "the copied layer is a plain tar.gz (tar -xzf)" tar -xzf "$T/oci/blobs/sha256/$layer" -C "$T/untar"
check "tar's view: busybox in it" cmp "$B/rootfs/bin/busybox" "$T/untar/bin/busybox"
if command -v umoci >/dev/null; then
  capture timeout 60 umoci unpack --image "$T/oci:t" "$T/umoci-bundle"
  assert_eq "umoci unpacks what envrun pushed (no envrun-only layers)" 0 "$RC" || last_cmd_details
  assert_eq "umoci's rootfs has the bundle's files" "$(sums "$B/rootfs")" "$(sums "$T/umoci-bundle/rootfs")"
else
  echo "note: umoci not installed, its unpack of the pushed image is not checked"
fi

# ---------------------------------------------------------------------------
section "a second push of the same bundle uploads no blob"
uploads=$(grep -c '"PUT /v2/team/app/blobs/uploads/' "$T/registry/log")
assert_eq "first push: 2 blob uploads in the registry log" 2 "$uploads"
capture push "$B" "$REG/team/app:2"
assert_eq "second push exits 0" 0 "$RC" || last_cmd_details
assert_contains "second push: 0 uploaded, 2 already there" "$OUT" "0 blobs uploaded (0 bytes), 2 already there"
assert_eq "registry log: no new upload" "$uploads" "$(grep -c '"PUT /v2/team/app/blobs/uploads/' "$T/registry/log")"
assert_eq "registry log: no new POST" 2 "$(grep -c '"POST /v2/team/app/blobs/uploads/' "$T/registry/log")"
assert_eq "same manifest digest for the same bundle" \
  "$(curl -sI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/team/app/manifests/1" | grep -i docker-content-digest)" \
  "$(curl -sI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/team/app/manifests/2" | grep -i docker-content-digest)"
printf 'version: 1\n' >"$B/intercept.yaml"
capture push "$B" "$REG/team/app:3"
assert_contains "a changed intercept.yaml: no blob uploaded" "$OUT" "0 blobs uploaded"
capture pull -b "$T/back3" "$REG/team/app:3"
assert_eq "pull of the changed bundle exits 0" 0 "$RC" || last_cmd_details
check "the changed intercept.yaml came back" cmp "$B/intercept.yaml" "$T/back3/intercept.yaml"

# ---------------------------------------------------------------------------
section "progress: step lines on a terminal, nothing with --quiet or without a terminal"
capture push "$B" "$REG/team/app:4"
assert_eq "not a terminal: push exits 0" 0 "$RC" || last_cmd_details
assert_eq "not a terminal: nothing on stderr" "" "$ERR"
timeout -k 5 90 script -qec "'$ENVRUN' push --insecure --store '$T/store-tty' '$B' '$REG/team/app:tty'" /dev/null </dev/null >"$T/tty.out" 2>&1
assert_eq "tty: push exits 0" 0 "$?"
tty_out=$(tr -d '\r' <"$T/tty.out")
assert_line_match "tty: packing step" "$tty_out" "^packing $B/rootfs$"
assert_line_match "tty: packed with size and time" "$tty_out" '^packed sha256:[0-9a-f]{12}: [0-9.]+ [KM]iB gzip in [0-9.]+ s$'
assert_line_match "tty: each blob, already there" "$tty_out" '^sha256:[0-9a-f]{12} already in the registry$'
assert_line_match "tty: the manifest" "$tty_out" '^writing the manifest tty$'
assert_line_match "tty: the summary" "$tty_out" '^pushed .* 0 blobs uploaded \(0 bytes\), 2 already there$'
timeout -k 5 90 script -qec "'$ENVRUN' push -q --insecure --store '$T/store-tty' '$B' '$REG/team/app:tty'" /dev/null </dev/null >"$T/tty.out" 2>&1
assert_eq "tty --quiet: nothing written" "" "$(cat "$T/tty.out")"

# ---------------------------------------------------------------------------
section "a bundle with config.yaml is pushed with its config as config.json"
SRC_B=$B
make_bundle ysrc 'args("/bin/echo", "from-yaml")'
python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))
def y(v, ind=0):
    p=" "*ind
    if isinstance(v, dict): return "".join(f"{p}{k}:\n{y(x, ind+2)}" if isinstance(x,(dict,list)) and x else f"{p}{k}: {json.dumps(x)}\n" for k,x in v.items())
    return "".join(f"{p}- {json.dumps(x)}\n" if not isinstance(x,(dict,list)) else f"{p}-\n{y(x, ind+2)}" for x in v)
open(sys.argv[2],"w").write(y(c))' "$B/config.json" "$B/config.yaml"
rm "$B/config.json"
capture push "$B" "$REG/team/yaml:1"
assert_eq "push of a config.yaml bundle exits 0" 0 "$RC" || last_cmd_details
capture pull -b "$T/back-yaml" "$REG/team/yaml:1"
assert_eq "pull of it exits 0" 0 "$RC" || last_cmd_details
assert_eq "its config.json is the YAML's content" '["/bin/echo", "from-yaml"]' "$(json_get 'd["process"]["args"]' <"$T/back-yaml/config.json")"
capture er run -b "$T/back-yaml" yaml1
assert_eq "it runs" "from-yaml" "$OUT"
printf 'process: {args: []}\n' >"$B/config.yaml"
expect_fail 3 "config.yaml: ociVersion: missing" push "$B" "$REG/team/yaml:2"
B=$SRC_B

# ---------------------------------------------------------------------------
section "login, token flow with credentials, logout"
PPORT=$(free_port)
PROXY=127.0.0.1:$PPORT
python3 "$LIB_DIR/auth_proxy.py" "$PPORT" "http://$REG" "$T/proxy.log" alice:s3cret &
PIDS_TO_KILL+=($!)
wait_for 10 curl -s -o /dev/null "http://$PROXY/token"
expect_fail 1 "refused an anonymous token (HTTP 401); credentials are needed" push "$B" "$PROXY/tok/app:1"
assert_eq "401: one line on stderr" 1 "$(grep -c . <<<"$ERR")"
check "no auth file yet" test ! -e "$T/auth.json"
expect_fail 1 "refused the credentials (HTTP 401): wrong user name or password" \
  sh -c "echo wrong | timeout 30 '$ENVRUN' login --insecure -u alice --password-stdin $PROXY"
check "a refused login stores nothing" test ! -e "$T/auth.json"
capture sh -c "echo s3cret | timeout 30 '$ENVRUN' login --insecure -u alice --password-stdin $PROXY"
assert_eq "login exits 0" 0 "$RC" || last_cmd_details
assert_eq "auth.json is 0600" 600 "$(stat -c %a "$T/auth.json" 2>&1)"
assert_eq "auth.json: docker's format" "$(printf alice:s3cret | base64)" "$(json_get "d['auths']['$PROXY']['auth']" <"$T/auth.json")"
capture push "$B" "$PROXY/tok/app:1"
assert_eq "push with the stored credentials exits 0" 0 "$RC" || last_cmd_details
assert_line_match "token asked with Basic and the pull,push scope" "$(cat "$T/proxy.log")" '^GET /token\?service=envrun-push-test&scope=repository%3Atok%2Fapp%3Apull%2Cpush Basic$'
assert_line_match "manifest PUT with the token" "$(cat "$T/proxy.log")" '^PUT /v2/tok/app/manifests/1 Bearer$'
assert_eq "no upload without the token" "" "$(grep -E '^(HEAD|POST|PUT) ' "$T/proxy.log" | grep -v ' Bearer$')"
capture pull -b "$T/back-tok" "$PROXY/tok/app:1"
assert_eq "pull through the token front with the stored credentials" 0 "$RC" || last_cmd_details
check "token pull: intercept.yaml came back" cmp "$B/intercept.yaml" "$T/back-tok/intercept.yaml"
mkdir -p "$T/docker-pull"
cp "$T/auth.json" "$T/docker-pull/auth.json"
capture env REGISTRY_AUTH_FILE=/nonexistent timeout 60 "$ENVRUN" pull --insecure --store "$T/store-pull2" --authfile "$T/docker-pull/auth.json" -b "$T/back-tok2" "$PROXY/tok/app:1"
assert_eq "pull --authfile exits 0" 0 "$RC" || last_cmd_details
capture env REGISTRY_AUTH_FILE=/nonexistent timeout 60 "$ENVRUN" pull --insecure --store "$T/store-pull3" -b "$T/back-tok3" "$PROXY/tok/app:1"
assert_eq "pull without credentials: exit 1" 1 "$RC"
# A docker-style file named with --authfile (REGISTRY_AUTH_FILE points elsewhere).
mkdir -p "$T/docker"
printf '{"auths":{"http://%s/":{"auth":"%s"}}}\n' "$PROXY" "$(printf alice:s3cret | base64)" >"$T/docker/config.json"
capture env REGISTRY_AUTH_FILE=/nonexistent timeout 60 "$ENVRUN" push --insecure --store "$T/store" --authfile "$T/docker/config.json" "$B" "$PROXY/tok/app:2"
assert_eq "push with --authfile (docker-style key) exits 0" 0 "$RC" || last_cmd_details
capture timeout 30 "$ENVRUN" logout "$PROXY"
assert_eq "logout exits 0" 0 "$RC" || last_cmd_details
assert_eq "logout removed the entry" '{}' "$(json_get 'd["auths"]' <"$T/auth.json" | tr -d ' ')"
expect_fail 4 "no credentials stored" timeout 30 "$ENVRUN" logout "$PROXY"
expect_fail 1 "credentials are needed" push "$B" "$PROXY/tok/app:3"

# ---------------------------------------------------------------------------
section "an ordinary user's auth file is \$XDG_CONFIG_HOME/envrun/auth.json"
mkdir -p "$T/nobody" && chmod 777 "$T/nobody"
capture setpriv --reuid=65534 --regid=65534 --clear-groups env -u REGISTRY_AUTH_FILE HOME="$T/nobody" XDG_CONFIG_HOME="$T/nobody/cfg" \
  sh -c "echo s3cret | timeout 30 '$ENVRUN' login --insecure -u alice --password-stdin $PROXY"
assert_eq "login as nobody exits 0" 0 "$RC" || last_cmd_details
assert_eq "nobody's auth.json: 0600, owned by nobody" "600 65534" "$(stat -c '%a %u' "$T/nobody/cfg/envrun/auth.json" 2>&1)"

# ---------------------------------------------------------------------------
section "errors"
expect_fail 4 "no config.json or config.yaml" push "$T/no-such-bundle" "$REG/x:1"
expect_fail 2 "give a tag, not a digest" push "$B" "$REG/x@sha256:$(printf '%064d' 0)"
DOWN=127.0.0.1:$(free_port)
expect_fail 7 "registry $DOWN: cannot connect" push "$B" "$DOWN/x:1"
capture "$ENVRUN" push --help
assert_contains "push --help lists --authfile" "$OUT" "--authfile"
