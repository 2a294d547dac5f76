#!/usr/bin/env bash
# envrun pull against a real registry: Debian's docker-registry on 127.0.0.1 (config and
# storage in $T), images built here (tests/integration/oci_image.py) and pushed by skopeo.
# Rootfs contents, config.json, the content store (no second download), OCI whiteouts,
# zstd/uncompressed/Docker v2 layers, index platform selection, hostile layers refused
# with nothing left, a corrupted blob, unknown tag, registry down; then `envrun run`.
source "$(dirname "$0")/lib.sh"
for tool in docker-registry skopeo zstd; do
  command -v $tool >/dev/null || { echo "SKIP: $tool not installed (scripts/deps.sh)"; exit 77; }
done
OCI="python3 $LIB_DIR/oci_image.py"
source "$LIB_DIR/registry_lib.sh"
start_registry "delete: {enabled: true}"
# push NAME:TAG OCI_ARGS...: build an OCI layout and copy it into the registry.
push() {
  local ref=$1; shift
  rm -rf "$T/oci"
  $OCI "$T/oci" t "$@" >"$T/oci.digest" || return 1
  timeout 60 skopeo copy -q ${SKOPEO_FORMAT:-} --dest-tls-verify=false "oci:$T/oci:t" "docker://$REG/$ref" >/dev/null
}
pull() { timeout -k 5 120 "$ENVRUN" pull --insecure --store "$T/store" "$@"; }
leftovers() { ls -A "$T" | grep -E '\.pull-' ; }

# ---------------------------------------------------------------------------
section "pull a busybox image (two layers, whiteouts) and run it"
mkdir -p "$T/l2/etc" "$T/l2/data"
echo layer-two >"$T/l2/etc/motd"
echo keep >"$T/l2/data/kept"
check "push app:1" push app:1 --config '{"Entrypoint":["/bin/sh","-c"],"Cmd":["echo pulled-ok $GREETING $(pwd) $(cat /etc/motd); ls /bin/ls /etc/group 2>&1 | sort"],"Env":["GREETING=hello","PATH=/bin:/usr/bin"],"WorkingDir":"/data","ExposedPorts":{"8080/tcp":{}},"Labels":{"org.example":"yes"}}' \
  --layer-dir "$FIXTURE_ROOTFS" --layer-dir "$T/l2" \
  --layer-spec '[{"name":"bin/.wh.ls"},{"name":"etc/.wh.group"}]'
capture pull -b "$T/app" "$REG/app:1"
assert_eq "pull app:1 exits 0" 0 "$RC" || last_cmd_details
assert_contains "summary counts 4 blobs downloaded" "$OUT" "3 layers, 4 blobs downloaded"
check "rootfs has busybox" test -x "$T/app/rootfs/bin/busybox"
assert_eq "rootfs: second layer's file" layer-two "$(cat "$T/app/rootfs/etc/motd" 2>&1)"
check "whiteout .wh.ls removed bin/ls" test ! -e "$T/app/rootfs/bin/ls" -a ! -L "$T/app/rootfs/bin/ls"
check "whiteout .wh.group removed etc/group" test ! -e "$T/app/rootfs/etc/group"
check "no .wh. files in the rootfs" test -z "$(find "$T/app/rootfs" -name '.wh.*')"
cfg=$(cat "$T/app/config.json")
assert_eq "config: args = Entrypoint + Cmd" '["/bin/sh", "-c", "echo pulled-ok $GREETING $(pwd) $(cat /etc/motd); ls /bin/ls /etc/group 2>&1 | sort"]' "$(json_get 'd["process"]["args"]' <<<"$cfg")"
assert_eq "config: cwd = WorkingDir" /data "$(json_get 'd["process"]["cwd"]' <<<"$cfg")"
assert_eq "config: Env replaces PATH, keeps TERM" '["TERM=xterm", "GREETING=hello", "PATH=/bin:/usr/bin"]' "$(json_get 'd["process"]["env"]' <<<"$cfg")"
assert_eq "config: ExposedPorts annotation" 8080/tcp "$(json_get 'd["annotations"]["org.opencontainers.image.exposedPorts"]' <<<"$cfg")"
assert_eq "config: labels become annotations" yes "$(json_get 'd["annotations"]["org.example"]' <<<"$cfg")"
assert_line_match "intercept.yaml: version 1" "$(cat "$T/app/intercept.yaml" 2>&1)" '^version: 1$'
capture er run -b "$T/app" pulled-app
assert_eq "run the pulled bundle: exit 0" 0 "$RC" || last_cmd_details
assert_line_match "run: args, env, cwd from the image" "$OUT" '^pulled-ok hello /data layer-two$'
assert_line_match "run: whited-out files are gone inside" "$OUT" 'ls: /bin/ls: No such file'
assert_eq "no temp dirs left" "" "$(leftovers)"

# ---------------------------------------------------------------------------
section "content store: a second pull transfers no blob"
nblobs=$(ls "$T/store/blobs/sha256" | wc -l)
assert_eq "store holds config + 3 layers" 4 "$nblobs"
gets_before=$(grep -c 'GET /v2/app/blobs/' "$T/registry/log")
capture pull --debug -b "$T/app2" "$REG/app:1"
assert_eq "second pull exits 0" 0 "$RC" || last_cmd_details
assert_line_match "second pull: 0 downloaded, 4 stored" "$OUT" "0 blobs downloaded \\(0 bytes, [^)]*\\), 4 already stored"
assert_not_contains "second pull: no 'downloading blob' line" "$ERR" "downloading blob"
assert_eq "registry saw no blob GET" "$gets_before" "$(grep -c 'GET /v2/app/blobs/' "$T/registry/log")"
check "second bundle unpacked from the store" cmp "$T/app/rootfs/bin/busybox" "$T/app2/rootfs/bin/busybox"
expect_fail 5 "already exists" pull -b "$T/app" "$REG/app:1"

# ---------------------------------------------------------------------------
section "an ordinary user pulls into \$XDG_DATA_HOME/envrun"
mkdir -p "$T/nobody" && chmod 777 "$T/nobody"
capture setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$T/nobody" XDG_DATA_HOME="$T/nobody/data" \
  timeout 60 "$ENVRUN" pull --insecure -b "$T/nobody/app" "$REG/app:1"
assert_eq "pull as nobody exits 0" 0 "$RC" || last_cmd_details
assert_eq "nobody's store is \$XDG_DATA_HOME/envrun" 4 "$(ls "$T/nobody/data/envrun/blobs/sha256" 2>/dev/null | wc -l)"
assert_eq "nobody's rootfs file owned by nobody" 65534 "$(stat -c %u "$T/nobody/app/rootfs/etc/motd" 2>&1)"
assert_eq "nobody's config.json maps the caller to root (rootless spec)" 65534 \
  "$(json_get 'd["linux"]["uidMappings"][0]["hostID"]' <"$T/nobody/app/config.json" 2>&1)"

# ---------------------------------------------------------------------------
section "bearer token flow (a token front on the registry)"
start_proxy() {  # start_proxy LOG [deny] -> sets PROXY
  local port; port=$(free_port)
  python3 "$LIB_DIR/token_proxy.py" "$port" "http://$REG" "$1" ${2:-} &
  PIDS_TO_KILL+=($!)
  PROXY=127.0.0.1:$port
  wait_for 10 curl -s -o /dev/null "http://$PROXY/token"
}
start_proxy "$T/proxy.log"
capture timeout 60 "$ENVRUN" --debug pull --insecure --store "$T/store-tok" -b "$T/tok" "$PROXY/app:1"
assert_eq "pull through the token front exits 0" 0 "$RC" || last_cmd_details
assert_line_match "a token was asked for with the repository's pull scope" "$(cat "$T/proxy.log")" '^GET /token\?service=envrun-test&scope=repository%3Aapp%3Apull -$'
assert_line_match "the manifest was fetched with the token" "$(cat "$T/proxy.log")" '^GET /v2/app/manifests/1 Bearer tok-'
assert_eq "4 blobs fetched with the token" 4 "$(grep -c '^GET /v2/app/blobs/sha256:[0-9a-f]* Bearer tok-' "$T/proxy.log")"
assert_eq "no blob request without the token" "" "$(grep '/blobs/' "$T/proxy.log" | grep -v 'Bearer tok-')"
check "token pull: same rootfs" cmp "$T/app/rootfs/etc/motd" "$T/tok/rootfs/etc/motd"
start_proxy "$T/proxy-deny.log" deny
expect_fail 1 "unauthorized" pull -b "$T/denied" "$PROXY/app:1"
assert_contains "401 message says credentials are needed" "$ERR" "credentials are needed"
check "denied: no bundle" test ! -e "$T/denied"

# ---------------------------------------------------------------------------
section "an interrupted download resumes with Range"
big=$(ls -S "$T/store/blobs/sha256" | head -1)
bsize=$(stat -c %s "$T/store/blobs/sha256/$big")
mkdir -p "$T/store-r/blobs/sha256"
head -c $((bsize / 2)) "$T/store/blobs/sha256/$big" >"$T/store-r/blobs/sha256/.partial-$big"
capture timeout 60 "$ENVRUN" --debug pull --insecure --store "$T/store-r" -b "$T/resumed" "$REG/app:1"
assert_eq "resumed pull exits 0" 0 "$RC" || last_cmd_details
assert_contains "debug log: resuming at half the blob" "$ERR" "resuming blob sha256:$big at $((bsize / 2)) bytes"
assert_line_match "the registry answered 206 to the range request" "$(grep "/blobs/sha256:$big" "$T/registry/log")" '" 206 '
check "resumed blob is complete and verified" cmp "$T/store/blobs/sha256/$big" "$T/store-r/blobs/sha256/$big"
check "no partial file left" test ! -e "$T/store-r/blobs/sha256/.partial-$big"
check "resumed rootfs" cmp "$T/app/rootfs/bin/busybox" "$T/resumed/rootfs/bin/busybox"
# A partial file with wrong bytes: digest mismatch, the partial goes, the next pull succeeds.
rm -rf "$T/store-r"; mkdir -p "$T/store-r/blobs/sha256"
head -c $((bsize / 2)) /dev/zero >"$T/store-r/blobs/sha256/.partial-$big"
expect_fail 1 "digest mismatch" timeout 60 "$ENVRUN" pull --insecure --store "$T/store-r" -b "$T/resumed2" "$REG/app:1"
check "wrong partial discarded" test ! -e "$T/store-r/blobs/sha256/.partial-$big"
check "the next pull succeeds" timeout 60 "$ENVRUN" pull --insecure --store "$T/store-r" -b "$T/resumed2" "$REG/app:1"

# ---------------------------------------------------------------------------
section "temp dirs left by a killed pull go at the next pull into the same place; one in use stays"
mkdir -p "$T/killed/.app.pull-AAAAAA/rootfs/x" "$T/killed/.app.pull-BBBBBB" "$T/killed/.other.pull-CCCCCC"
flock -x "$T/killed/.app.pull-BBBBBB" sleep 60 &
PIDS_TO_KILL+=($!)
wait_for 5 sh -c "grep -q ' FLOCK .* WRITE .*' /proc/locks && ! flock -n -x '$T/killed/.app.pull-BBBBBB' true"
check "pull into the directory with leftovers" pull -b "$T/killed/app" "$REG/app:1"
check "the killed pull's temp dir (no lock) is gone" test ! -e "$T/killed/.app.pull-AAAAAA"
check "a temp dir that a running pull holds (flock) stays" test -d "$T/killed/.app.pull-BBBBBB"
check "another bundle's temp dir is not touched" test -d "$T/killed/.other.pull-CCCCCC"

# ---------------------------------------------------------------------------
section "layer formats: zstd, uncompressed, Docker v2 manifest, --jobs 1"
check "push fmt:zstd" push fmt:zstd --compress zstd --config '{"Cmd":["/bin/true"]}' --layer-dir "$T/l2"
check "pull zstd layer" pull -b "$T/zst" "$REG/fmt:zstd"
assert_eq "zstd layer content" layer-two "$(cat "$T/zst/rootfs/etc/motd" 2>&1)"
check "push fmt:tar" push fmt:tar --compress none --layer-dir "$T/l2"
check "pull uncompressed layer with --jobs 1" pull --jobs 1 -b "$T/tar" "$REG/fmt:tar"
assert_eq "tar layer content" keep "$(cat "$T/tar/data/kept" "$T/tar/rootfs/data/kept" 2>/dev/null)"
SKOPEO_FORMAT="--format v2s2" check "push fmt:v2s2 (skopeo converts to a Docker v2 manifest)" push fmt:v2s2 --layer-dir "$T/l2"
mt=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$REG/v2/fmt/manifests/v2s2" | json_get 'd["mediaType"]')
assert_eq "registry holds a Docker v2 manifest" application/vnd.docker.distribution.manifest.v2+json "$mt"
check "pull the Docker v2 image" pull -b "$T/v2s2" "$REG/fmt:v2s2"
assert_eq "Docker v2 layer content" layer-two "$(cat "$T/v2s2/rootfs/etc/motd" 2>&1)"

# ---------------------------------------------------------------------------
section "index: platform selection"
echo amd >"$T/l2/etc/arch"; push multi:amd64 --layer-dir "$T/l2"; amd=$(cat "$T/oci.digest")
echo arm >"$T/l2/etc/arch"; push multi:arm64 --layer-dir "$T/l2"; arm=$(cat "$T/oci.digest")
size_of() { curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/multi/manifests/$1" | wc -c; }
index=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"platform":{"os":"linux","architecture":"amd64"}}]}' \
  "$arm" "$(size_of "$arm")" "$amd" "$(size_of "$amd")")
check "put an index" curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary "$index" "http://$REG/v2/multi/manifests/all"
check "pull the index for linux/arm64" pull --platform linux/arm64 -b "$T/arm" "$REG/multi:all"
assert_eq "linux/arm64 entry chosen" arm "$(cat "$T/arm/rootfs/etc/arch" 2>&1)"
check "pull the index for linux/amd64" pull --platform linux/amd64 -b "$T/amd" "$REG/multi:all"
assert_eq "linux/amd64 entry chosen" amd "$(cat "$T/amd/rootfs/etc/arch" 2>&1)"
check "pull by digest" pull -b "$T/bydigest" "$REG/multi@$arm"
assert_eq "by digest: that manifest" arm "$(cat "$T/bydigest/rootfs/etc/arch" 2>&1)"
expect_fail 4 "no image for platform linux/s390x (the index has: linux/arm64/v8, linux/amd64)" pull --platform linux/s390x -b "$T/s390" "$REG/multi:all"
check "nothing left for the failed platform" test ! -e "$T/s390"

# ---------------------------------------------------------------------------
section "hostile layers are refused, nothing is left"
mkdir -p "$T/outside"
hostile() {  # hostile NAME SPEC MESSAGE
  check "push evil:$1" push "evil:$1" --layer-spec "$2"
  expect_fail 3 "$3" pull -b "$T/evil-$1" "$REG/evil:$1"
  check "evil:$1: no bundle left" test ! -e "$T/evil-$1"
  assert_eq "evil:$1: no temp dir left" "" "$(leftovers)"
  assert_eq "evil:$1: nothing written outside" "" "$(ls -A "$T/outside")"
}
hostile dotdot '[{"name":"../../outside/pwned","data":"x"}]' '".." component'
hostile abs '[{"name":"'"$T"'/outside/pwned","data":"x"}]' 'absolute path'
hostile abslink '[{"name":"esc","type":"symlink","target":"'"$T"'/outside"},{"name":"esc/pwned","data":"x"}]' 'leaves the rootfs'
hostile rellink '[{"name":"a","type":"dir"},{"name":"a/up","type":"symlink","target":"../../../outside"},{"name":"a/up/pwned","data":"x"}]' 'leaves the rootfs'
hostile hardlink '[{"name":"h","type":"hardlink","target":"../outside/x"}]' '".." component'

# ---------------------------------------------------------------------------
section "errors: corrupted blob, unknown tag/image, registry down, bad reference"
check "push bad:1" push bad:1 --layer-dir "$T/l2"
layer=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+sys.argv[2].split(":")[1])); print(m["layers"][0]["digest"][7:])' "$T/oci" "$(cat "$T/oci.digest")")
data="$T/registry/data/docker/registry/v2/blobs/sha256/${layer:0:2}/$layer/data"
if [[ -f $data ]]; then
  printf 'X' | dd of="$data" bs=1 seek=20 conv=notrunc status=none
  expect_fail 1 "digest mismatch" timeout 60 "$ENVRUN" pull --insecure --store "$T/store2" -b "$T/bad" "$REG/bad:1"
  check "corrupted: no bundle" test ! -e "$T/bad"
  check "corrupted: the blob is not in the store" test ! -e "$T/store2/blobs/sha256/$layer"
  assert_eq "corrupted: no temp file in the store" "" "$(ls -A "$T/store2/blobs/sha256" | grep tmp)"
else
  fail "registry blob file for the corruption test" "$data missing"
fi
expect_fail 4 "not found" pull -b "$T/nope" "$REG/app:no-such-tag"
expect_fail 4 "not found" pull -b "$T/nope" "$REG/no/such/image:1"
DOWN=127.0.0.1:$(free_port)
expect_fail 7 "registry $DOWN: cannot connect" pull -b "$T/down" "$DOWN/app:1"
expect_fail 7 "a registry without TLS needs --insecure" timeout 60 "$ENVRUN" pull --store "$T/store" -b "$T/x" "$REG/app:1"
expect_fail 2 "invalid name component" pull -b "$T/x" "$REG/Bad_Name:1"
expect_fail 2 "digest must be sha256" pull -b "$T/x" "$REG/app@sha256:1234"
check "no bundles left by the failures" test ! -e "$T/nope" -a ! -e "$T/down" -a ! -e "$T/x"
capture "$ENVRUN" pull --help
assert_contains "pull --help lists --platform" "$OUT" "--platform"

# ---------------------------------------------------------------------------
section "progress: nothing on stderr without a terminal, lines redrawn on one, --quiet"
mkdir -p "$T/lbig/data"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$T/lbig/data/random"   # gzip cannot shrink it
check "push big:1 (busybox layer + a 3 MiB layer)" push big:1 --layer-dir "$FIXTURE_ROOTFS" --layer-dir "$T/lbig"
manifest_of() { curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/$1/manifests/$2"; }
manifest_of big 1 >"$T/big.manifest"
capture timeout 60 "$ENVRUN" pull --insecure --store "$T/store-p" -b "$T/p-plain" "$REG/big:1"
assert_eq "not a tty: pull exits 0" 0 "$RC" || last_cmd_details
assert_eq "not a tty: nothing on stderr" "" "$ERR"
assert_contains "not a tty: the summary line on stdout" "$OUT" "2 layers, 3 blobs downloaded"
have_script=1; command -v script >/dev/null || have_script=0
if ((have_script)); then
  # script(1) gives the pull a pseudo-terminal as stdin, stdout and stderr; -e keeps its exit status.
  timeout -k 5 90 script -qec "'$ENVRUN' pull --insecure --store '$T/store-tty' -b '$T/p-tty' '$REG/big:1'" /dev/null \
    </dev/null >"$T/tty.out" 2>&1
  assert_eq "tty: pull exits 0" 0 "$?"
  tty_out=$(tr -d '\r' <"$T/tty.out")
  for d in $(json_get '" ".join(l["digest"] for l in d["layers"])' <"$T/big.manifest"); do
    assert_contains "tty: a line for layer ${d:0:19}" "$tty_out" "${d:0:19}  "
  done
  assert_contains "tty: lines redrawn in place (cursor up 2 lines)" "$tty_out" $'\x1b[2A'
  assert_contains "tty: lines cleared before redraw" "$tty_out" $'\x1b[2K'
  assert_line_match "tty: the 3 MiB layer reaches 'unpacked'" "$tty_out" "unpacked, [0-9]+ entries +3\.0 MiB"
  assert_line_match "tty: a summary line with bytes, rate and time" "$tty_out" '^pulled .*: 2 layers, 3 blobs downloaded \([0-9]+ bytes, [0-9.]+ [KMG]?i?B/s\), 0 already stored, [0-9]+ entries unpacked, in [0-9.]+ s$'
  assert_eq "tty: the summary once" 1 "$(grep -c 'layers' <<<"$tty_out")"
  timeout -k 5 90 script -qec "'$ENVRUN' pull --quiet --insecure --store '$T/store-tty' -b '$T/p-quiet' '$REG/big:1'" /dev/null \
    </dev/null >"$T/quiet.out" 2>&1
  assert_eq "tty --quiet: pull exits 0" 0 "$?"
  assert_eq "tty --quiet: nothing written" "" "$(cat "$T/quiet.out")"
  check "tty --quiet: bundle made" test -f "$T/p-quiet/rootfs/data/random"
else
  fail "script(1) for the tty checks" "not installed (bsdutils)"
fi

# ---------------------------------------------------------------------------
section "--json: one event per line, byte totals match the manifest"
# check_events FILE MANIFEST CACHED(0|1) BUNDLE: the stream parses line by line; start names the
# layer count; each layer's progress is monotonic and ends at its manifest size (or, cached,
# has none); each layer is done and unpacked once; complete comes last with the bundle.
check_events() {
  python3 - "$@" <<'PY'
import json, sys
path, manifest, cached, bundle = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
layers = {l["digest"]: l["size"] for l in json.load(open(manifest))["layers"]}
ev = []
for n, line in enumerate(open(path), 1):
    try: ev.append(json.loads(line))
    except ValueError as e: sys.exit(f"line {n} is not JSON: {line!r}: {e}")
def need(c, msg):
    if not c: sys.exit(msg)
need(ev and ev[0] == {**ev[0], "event": "start", "layers": len(layers)}, f"first event: {ev[:1]}")
need(ev[-1].get("event") == "complete" and ev[-1].get("bundle") == bundle, f"last event: {ev[-1]}")
for d, size in layers.items():
    prog = [e for e in ev if e["event"] == "progress" and e["digest"] == d]
    dones = [e for e in ev if e["event"] == "done" and e["digest"] == d]
    unp = [e for e in ev if e["event"] == "unpacked" and e["digest"] == d]
    need(len(dones) == 1 and dones[0]["cached"] is cached, f"{d}: done events {dones}")
    need(len(unp) == 1 and unp[0]["entries"] > 0, f"{d}: unpacked events {unp}")
    need(ev.index(dones[0]) < ev.index(unp[0]), f"{d}: unpacked before done")
    if cached:
        need(not prog, f"{d}: progress events for a cached layer: {prog[:2]}")
        continue
    need(prog, f"{d}: no progress events")
    need(all(e["total"] == size for e in prog), f"{d}: total differs from the manifest size {size}")
    need(all(a["done"] <= b["done"] for a, b in zip(prog, prog[1:])), f"{d}: done goes backwards")
    need(prog[-1]["done"] == size, f"{d}: last progress {prog[-1]['done']} != {size}")
    need(ev.index(prog[-1]) < ev.index(dones[0]), f"{d}: progress after done")
others = [e for e in ev if e.get("digest") and e["digest"] not in layers]
need(not others, f"events about non-layer blobs: {others[:2]}")
print(sum(p["done"] for p in ev if p["event"] == "progress" and p["done"] == p["total"]))
PY
}
capture timeout 60 "$ENVRUN" pull --json --insecure --store "$T/store-j" -b "$T/j1" "$REG/big:1"
assert_eq "--json pull exits 0" 0 "$RC" || last_cmd_details
cp "$T/last.out" "$T/j1.events"
total=$(json_get 'sum(l["size"] for l in d["layers"])' <"$T/big.manifest")
capture check_events "$T/j1.events" "$T/big.manifest" 0 "$T/j1"
assert_eq "--json: events check out, final progress bytes = sum of layer sizes" "$total" "$OUT" || cat "$T/j1.events" | head -20
assert_eq "--json: complete counts the transferred bytes" "$(json_get 'sum(l["size"] for l in d["layers"]) + d["config"]["size"]' <"$T/big.manifest")" \
  "$(tail -1 "$T/j1.events" | json_get 'd["bytes"]')"
capture timeout 60 "$ENVRUN" pull --json --insecure --store "$T/store-j" -b "$T/j2" "$REG/big:1"
assert_eq "--json second pull exits 0" 0 "$RC" || last_cmd_details
cp "$T/last.out" "$T/j2.events"
capture check_events "$T/j2.events" "$T/big.manifest" 1 "$T/j2"
assert_eq "--json second pull: every layer done cached, no progress" 0 "$OUT" || echo "$ERR"
capture timeout 60 "$ENVRUN" pull --json --insecure --store "$T/store-j" -b "$T/j3" "$REG/big:no-such-tag"
assert_eq "--json unknown tag: exit 4" 4 "$RC"
assert_eq "--json unknown tag: one error event on stdout" error "$(tail -1 <<<"$OUT" | json_get 'd["event"]' 2>&1)"
assert_contains "--json unknown tag: the event has the message" "$(tail -1 <<<"$OUT" | json_get 'd["message"]' 2>&1)" "not found"
assert_contains "--json unknown tag: the error line on stderr too" "$ERR" "envrun: pull $REG/big:no-such-tag: "

# ---------------------------------------------------------------------------
section "disk full: a 2 MiB tmpfs as the store, then as the bundle's parent"
mkdir -p "$T/small"
if mount -t tmpfs -o size=2m envrun-test-small "$T/small"; then   # lib.sh's EXIT trap unmounts too
  expect_fail 7 "No space left on device" timeout 60 "$ENVRUN" pull --insecure --store "$T/small/store" -b "$T/full1" "$REG/big:1"
  assert_contains "store full: the message names the store path" "$ERR" "$T/small/store/blobs/sha256/"
  assert_eq "store full: one line" 1 "$(wc -l <<<"$ERR")"
  check "store full: no bundle" test ! -e "$T/full1"
  assert_eq "store full: no temp dir beside the bundle" "" "$(leftovers)"
  assert_eq "store full: no temp files in the store (only .partial-*)" "" \
    "$(ls -A "$T/small/store/blobs/sha256" | grep '^\.' | grep -v '^\.partial-')"
  big_layer=$(python3 -c 'import json,sys; print(max(json.load(open(sys.argv[1]))["layers"], key=lambda l: l["size"])["digest"][7:])' "$T/big.manifest")
  check "store full: the big layer is not in the store" test ! -e "$T/small/store/blobs/sha256/$big_layer"
  umount "$T/small" && mount -t tmpfs -o size=2m envrun-test-small "$T/small"
  expect_fail 7 "No space left on device" timeout 60 "$ENVRUN" pull --insecure --store "$T/store-j" -b "$T/small/app" "$REG/big:1"
  assert_contains "bundle full: the message names the bundle's directory" "$ERR" "unpacking into $T/small: "
  assert_eq "bundle full: one line" 1 "$(wc -l <<<"$ERR")"
  assert_eq "bundle full: nothing left in the directory" "" "$(ls -A "$T/small")"
  capture timeout 60 "$ENVRUN" pull --json --insecure --store "$T/store-j" -b "$T/small/app" "$REG/big:1"
  assert_eq "bundle full --json: exit 7" 7 "$RC"
  assert_contains "bundle full --json: an error event" "$(tail -1 <<<"$OUT")" '"event":"error"'
  umount "$T/small"
else
  fail "mount a 2 MiB tmpfs on $T/small" "mount failed"
fi
