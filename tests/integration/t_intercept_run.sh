#!/usr/bin/env bash
# The isolation modes (envrun.isolation intercept | both) end to end through `envrun run`:
# the interception library preloaded, the bundle's intercept.yaml compiled into the
# instance's state, env rules, static/setuid entry points refused, a run without root,
# and interceptors switched off and on in a running container.
source "$(dirname "$0")/lib.sh"

DYNROOT=$T/dynroot
bash "$SRC_DIR/tests/fixtures/make-dynroot.sh" "$DYNROOT" >/dev/null || { fail "make-dynroot"; exit 1; }

# intercept_yaml BUNDLE: intercept.yaml from stdin (written verbatim: ${...} are envrun's).
intercept_yaml() { cat > "$1/intercept.yaml"; }
ISO_INTERCEPT='c["envrun"] = {"isolation": "intercept"}'
ISO_BOTH='c["envrun"] = {"isolation": "both"}'

section "intercept mode: the bundle's files through a rule, host programs"
make_bundle ic1 'args("/bin/cat", "/app/hello.txt")' "$ISO_INTERCEPT"
mkdir -p "$B/rootfs/app"
echo "hello from the bundle" > "$B/rootfs/app/hello.txt"
intercept_yaml "$B" <<'EOF'
version: 1
files:
  - inside: /app
    outside: ${ROOTFS}/app
    mode: override
EOF
capture er run -b "$B" ic1
assert_eq "cat /app/hello.txt reads the bundle's file" "hello from the bundle" "$OUT"
assert_eq "run exits 0" 0 "$RC"
assert_no_state ic1

section "intercept mode: cwd and relative paths are inside paths"
make_bundle ic2 'args("/bin/cat", "hello.txt")' 'c["process"]["cwd"] = "/app"' "$ISO_INTERCEPT"
mkdir -p "$B/rootfs/app"; echo "relative" > "$B/rootfs/app/hello.txt"
intercept_yaml "$B" <<'EOF'
version: 1
files:
  - {inside: /app, outside: "${ROOTFS}/app"}
EOF
capture er run -b "$B" ic2
assert_eq "process.cwd /app maps to the bundle's dir" "relative" "$OUT"

section "intercept mode: environment rules and the preload variables"
make_bundle ic3 'args("/usr/bin/env")' "$ISO_INTERCEPT" \
  'c["process"]["env"] = ["PATH=/usr/bin:/bin", "TERM=xterm", "DROPME=1"]'
intercept_yaml "$B" <<'EOF'
version: 1
env:
  - set: GREETING
    value: "hi ${ID}"
  - unset: DROPME
  - prepend: PATH
    value: /app/bin
  - append: PATH
    value: /opt/tail
EOF
capture er run -b "$B" ic3
assert_line_match "set GREETING with \${ID} expanded" "$OUT" '^GREETING=hi ic3$'
assert_not_contains "unset DROPME" "$OUT" "DROPME="
assert_line_match "prepend and append PATH" "$OUT" '^PATH=/app/bin:/usr/bin:/bin:/opt/tail$'
assert_line_match "LD_PRELOAD names the library" "$OUT" '^LD_PRELOAD=/.*/libenvrun-intercept\.so$'
assert_line_match "the DB path is in the instance's state" "$OUT" "^ENVRUN_INTERCEPT_DB=$STATE/ic3/intercept/intercept.db\$"

section "intercept mode: writecopy keeps the bundle's layer untouched"
make_bundle ic4 "$ISO_INTERCEPT" 'args("/bin/sh", "-c", "echo new >> /data/log.txt; cat /data/log.txt")'
mkdir -p "$B/rootfs/data"; echo "old" > "$B/rootfs/data/log.txt"
intercept_yaml "$B" <<'EOF'
version: 1
files:
  - inside: /data
    outside: ${ROOTFS}/data
    mode: writecopy
    upper: ${BUNDLE}/upper
EOF
capture er run -b "$B" ic4
assert_eq "the app sees old + new" "$(printf 'old\nnew')" "$OUT"
assert_eq "the lower file is unchanged" "old" "$(cat "$B/rootfs/data/log.txt")"
assert_eq "the upper copy has the write" "$(printf 'old\nnew')" "$(cat "$B/upper/log.txt" 2>&1)"

section "static and setuid entry points cannot load the library"
make_bundle ic5 'args("/sbx/busybox", "true")' "$ISO_INTERCEPT"
intercept_yaml "$B" <<'EOF'
version: 1
files:
  - {inside: /sbx, outside: "${ROOTFS}/bin", mode: readonly}
EOF
expect_fail 3 "is a statically linked binary" er run -b "$B" ic5
assert_no_state ic5
make_bundle ic6 'args("/sbx/busybox", "echo", "ran-unredirected")' \
  'c["envrun"] = {"isolation": "intercept", "interceptOptional": True}'
cp "$T/ic5/intercept.yaml" "$B/"
capture er run -b "$B" ic6
assert_eq "interceptOptional: it runs" "ran-unredirected" "$OUT"
assert_contains "interceptOptional: with a warning" "$ERR" "runs without interception"
cp /bin/true "$T/suidtrue"; chmod 4755 "$T/suidtrue"
make_bundle ic7 "args(\"$T/suidtrue\")" "$ISO_INTERCEPT"
expect_fail 3 "setuid/setgid binary" er run -b "$B" ic7
make_bundle ic8 'args("/nonexistent/prog")' "$ISO_INTERCEPT"
expect_fail 6 "executable file not found through the interception rules" er run -b "$B" ic8
assert_no_state ic8

section "bad intercept.yaml: create fails with file:line:col, nothing left"
make_bundle ic9 'args("/bin/true")' "$ISO_INTERCEPT"
intercept_yaml "$B" <<'EOF'
version: 1
files:
  - inside: /app
    outside: ${ROOTFS}/app
    mode: sideways
EOF
expect_fail 3 "intercept.yaml:5:" er create -b "$B" ic9
assert_contains "the message names the field" "$ERR" "mode"
assert_no_state ic9

section "intercept mode without root"
make_bundle icu 'args("/bin/cat", "/app/hello.txt")' "$ISO_INTERCEPT"
mkdir -p "$B/rootfs/app"; echo "as nobody" > "$B/rootfs/app/hello.txt"
cp "$T/ic1/intercept.yaml" "$B/"
chmod -R a+rX "$B"
USTATE=$T/userstate; mkdir -p "$USTATE"; chown 65534:65534 "$USTATE"
capture timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp XDG_RUNTIME_DIR= \
  "$ENVRUN" --root "$USTATE" run -b "$B" icu
assert_eq "an ordinary user runs the bundle redirected" "as nobody" "$OUT"
assert_eq "exit 0 as nobody" 0 "$RC"
assert_no_cgroup icu
[[ -z $(ls -A "$USTATE") ]] && pass "no state left as nobody" || fail "no state left as nobody" "$(ls -A "$USTATE")"
make_bundle icud 'args("/bin/sleep", "60")' "$ISO_INTERCEPT"
chmod -R a+rX "$B"
capture timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp XDG_RUNTIME_DIR= \
  "$ENVRUN" --root "$USTATE" run --detach -b "$B" icud
assert_eq "detached run as nobody" 0 "$RC"
asnobody() { timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp XDG_RUNTIME_DIR= "$ENVRUN" --root "$USTATE" "$@"; }
capture asnobody ps icud
assert_line_match "ps lists the session's processes without a cgroup" "$OUT" "sleep"
expect_fail 5 "need a cgroup" asnobody pause icud
check "kill as nobody" asnobody kill icud KILL
nobody_stopped() { asnobody state icud 2>/dev/null | grep -q '"stopped"'; }
wait_for 10 nobody_stopped && pass "icud stops after kill" || fail "icud stops after kill" "$(asnobody state icud 2>&1)"
check "delete as nobody" asnobody delete --force icud

section "both: namespaces plus the library inside the container"
make_bundle bo1 'args("/bin/bash", "-c", "cat /srv/x; cat /proc/sys/kernel/hostname; ls /.envrun")' "$ISO_BOTH"
rm -rf "$B/rootfs"; cp -a "$DYNROOT" "$B/rootfs"
echo "inside data" > "$B/rootfs/data/x"
intercept_yaml "$B" <<'EOF'
version: 1
files:
  - inside: /srv
    outside: ${ROOTFS}/data
EOF
capture er run -b "$B" bo1
assert_line_match "the rule maps /srv to /data inside the container" "$OUT" '^inside data$'
assert_line_match "it runs in its own uts namespace" "$OUT" '^envrun-test$'
assert_line_match "the library is mounted at /.envrun" "$OUT" '^libenvrun-intercept\.so$'
make_bundle bo2 'args("/bin/true")' "$ISO_BOTH"
expect_fail 3 "statically linked" er run -b "$B" bo2

section "interceptors switched off and on in a running container"
make_bundle live "args('/bin/bash', '-c', 'while :; do cat /app/hello.txt > $T/live.tmp 2>&1; mv $T/live.tmp $T/live.out; sleep 0.05; done')" "$ISO_INTERCEPT"
mkdir -p "$B/rootfs/app"; echo "redirected" > "$B/rootfs/app/hello.txt"
cp "$T/ic1/intercept.yaml" "$B/"
capture er run -d -b "$B" live
live_is() { [[ "$(cat "$T/live.out" 2>/dev/null)" == *"$1"* ]]; }
wait_for 10 live_is redirected && pass "live: redirected at first" || fail "live: redirected at first" "$(cat "$T/live.out" 2>&1)"
check "intercept live disable redirect" er intercept live disable redirect
wait_for 10 live_is "No such file" && pass "live: the app sees the host path once redirect is off" \
  || fail "live: redirect off" "$(cat "$T/live.out" 2>&1)"
capture er intercept live status
assert_line_match "status shows redirect off" "$OUT" 'redirect.*off'
check "intercept live enable redirect" er intercept live enable redirect
wait_for 10 live_is redirected && pass "live: redirected again" || fail "live: redirected again" "$(cat "$T/live.out" 2>&1)"
expect_fail 2 "no interceptor named nosuch" er intercept live disable nosuch
expect_fail 4 "" er intercept nosuchid status
check "delete the live container" er delete --force live

section "exec into an intercept container sees the same rules"
make_bundle ex1 'args("/bin/sleep", "60")' "$ISO_INTERCEPT"
mkdir -p "$B/rootfs/app"; echo "exec sees it" > "$B/rootfs/app/hello.txt"
cp "$T/ic1/intercept.yaml" "$B/"
check "run -d ex1" er run -d -b "$B" ex1
capture er exec ex1 /bin/cat /app/hello.txt
assert_eq "exec: cat /app/hello.txt through the rule" "exec sees it" "$OUT"
capture er exec ex1 /bin/sh -c 'echo $LD_PRELOAD'
assert_match "exec: the library is preloaded" "$OUT" 'libenvrun-intercept\.so$'
check "delete ex1" er delete --force ex1

section "options changed while the app runs (envrun intercept ID set)"
make_bundle opt "args('/bin/bash', '-c', 'while :; do if $FIXTURE_ROOTFS/bin/busybox true 2>/dev/null; then echo ran; else echo refused; fi > $T/opt.tmp; mv $T/opt.tmp $T/opt.out; sleep 0.05; done')" "$ISO_INTERCEPT"
cp "$T/ic1/intercept.yaml" "$B/"
mkdir -p "$B/rootfs/app"
check "run -d opt" er run -d -b "$B" opt
opt_is() { [[ "$(cat "$T/opt.out" 2>/dev/null)" == "$1" ]]; }
wait_for 10 opt_is ran && pass "exec of a static binary runs (exec_static: warn)" || fail "static exec runs" "$(cat "$T/opt.out" 2>&1)"
check "set redirect exec_static=deny" er intercept opt set redirect exec_static=deny
assert_line_match "status shows the live value" "$OUT" 'redirect.*exec_static=deny'
wait_for 10 opt_is refused && pass "the running app's next exec of it is refused" || fail "exec refused after set" "$(cat "$T/opt.out" 2>&1)"
check "set redirect exec_static=allow" er intercept opt set redirect exec_static=allow
wait_for 10 opt_is ran && pass "allowed again" || fail "allowed again" "$(cat "$T/opt.out" 2>&1)"
expect_fail 2 'is not one of' er intercept opt set redirect exec_static=maybe
expect_fail 2 'unknown option of redirect' er intercept opt set redirect colour=blue
expect_fail 2 'expected KEY=VALUE' er intercept opt set redirect exec_static
check "delete opt" er delete --force opt
