#!/usr/bin/env bash
# envrun intercept compile | check | explain on bundles written here: the summary, the
# binary file, variables (ROOTFS from the config, --id, --state), bad YAML (exit 3, file:
# line:col, nothing written), explain for every mode and operation, --help, usage errors.
source "$(dirname "$0")/lib.sh"

ei() { er intercept "$@"; }

# ---------------------------------------------------------------------------
section "a bundle with every kind of rule"
make_bundle app 'c["root"]["path"] = "rfs"'
mv "$B/rootfs" "$B/rfs"
mkdir -p "$B/rfs/opt/app/bin" "$B/conf" "$B/rfs/usr/share/doc" "$B/lower"
echo tool >"$B/rfs/opt/app/bin/tool"
echo lowerfile >"$B/lower/kept"
echo lowerfile >"$B/lower/gone"
cat >"$B/intercept.yaml" <<'YAML'
version: 1
files:
  - inside: /opt/app
    outside: ${ROOTFS}/opt/app
  - inside: /etc/app.conf
    outside: ${BUNDLE}/conf/app.conf
    mode: readonly
  - inside: /var/lib/app
    outside: ${BUNDLE}/lower
    mode: writecopy
  - inside: /etc/secret
    mode: hide
  - inside: /usr/share
    outside: ${ROOTFS}/usr/share
    mode: merge
env:
  - prepend: PATH
    value: /opt/app/bin
network:
  - inside: 8080
    outside: 18080
interceptors:
  - name: meter
  - name: redirect
    options: {exec_static: deny}
  - name: barrier
    enabled: false
YAML
APP=$B

capture ei check "$APP"
assert_eq "check: exit 0" 0 "$RC"
assert_eq "check: one summary line" \
  "ok: 5 file rules, 1 env rule, 1 network rule, chain: meter, redirect, barrier (off) (from $APP/intercept.yaml)" "$OUT"

capture ei compile "$APP" -o "$T/app.db"
assert_eq "compile: exit 0" 0 "$RC"
assert_match "compile: summary names rules, size and source" "$OUT" \
  "^$T/app.db: 5 file rules, 1 env rule, 1 network rule, chain: .*, ([0-9]+) bytes \\(from $APP/intercept.yaml\\)$"
size=$(sed -E 's/.* ([0-9]+) bytes .*/\1/' <<<"$OUT")
assert_eq "compile: the size printed is the file's size" "${size:-none}" "$(stat -c %s "$T/app.db" 2>/dev/null)"
assert_eq "compile: the file starts with the magic" "ENVRIDB" "$(head -c 7 "$T/app.db" 2>/dev/null)"
assert_eq "compile: mode 0644" 644 "$(stat -c %a "$T/app.db" 2>/dev/null)"
check "compile of the yaml file itself" ei compile "$APP/intercept.yaml" -o "$T/app2.db"
check "compile is deterministic (same yaml, same bytes)" cmp "$T/app.db" "$T/app2.db"
(cd "$T" && "$ENVRUN" --root "$STATE" intercept compile "$APP" >/dev/null 2>&1)
check "compile writes ./intercept.db by default" test -s "$T/intercept.db"
check "compile with another --state" ei compile "$APP" --state /elsewhere -o "$T/app3.db"
if [[ ! -s $T/app3.db ]] || cmp -s "$T/app.db" "$T/app3.db"; then fail "--state changes the database (writecopy upper)"; else pass "--state changes the database (writecopy upper)"; fi

# ---------------------------------------------------------------------------
section "variables"
capture ei explain "$APP" /opt/app/bin/tool
assert_contains "ROOTFS is the config's root.path" "$OUT" "outside: $APP/rfs/opt/app/bin/tool (exists)"
capture ei explain "$APP" /var/lib/app/x
assert_contains "default STATE: <root>/compile/intercept, upper/<index>" "$OUT" "upper: $STATE/compile/intercept/upper/2/x"
capture ei explain --id web7 "$APP" /var/lib/app/x
assert_contains "--id sets ID (and the default STATE)" "$OUT" "upper: $STATE/web7/intercept/upper/2/x"
make_bundle vars
cat >"$B/intercept.yaml" <<'YAML'
version: 1
files:
  - {inside: /h, outside: "${HOME}/x", mode: override}
  - {inside: /i, outside: "/ids/${ID}/$$", mode: override}
YAML
capture env HOME=/home/someone "$ENVRUN" --root "$STATE" intercept explain "$B" /h/f
assert_contains "HOME comes from \$HOME" "$OUT" "outside: /home/someone/x/f"
capture ei explain --id c9 "$B" /i
assert_contains "ID and \$\$" "$OUT" 'outside: /ids/c9/$ '
printf 'version: 1\nfiles:\n  - inside: /a\n    outside: ${NOPE}/a\n' >"$B/intercept.yaml"
expect_fail 3 "intercept.yaml:4:14: files[0].outside: unknown variable \${NOPE}" ei check "$B"

# ---------------------------------------------------------------------------
section "a bundle without intercept.yaml: the default database"
make_bundle plain
capture ei check "$B"
assert_eq "check: exit 0" 0 "$RC"
assert_contains "check: default database" "$OUT" "ok: 0 file rules, 0 env rules, 0 network rules, chain: meter, redirect, net, barrier (no intercept.yaml"
capture ei explain "$B" /etc/passwd
assert_contains "explain: no rule" "$OUT" "no rule: /etc/passwd is not redirected"

# ---------------------------------------------------------------------------
section "bad YAML: exit 3, file:line:col: field: reason, nothing written"
make_bundle bad
printf 'version: 1\nfiles:\n  - inside: /a\n    outside: /b\n  - inside: /c\n    outside: /d\n  - inside: /opt/app\n    outside: /x\n    mode: copy\n' >"$B/intercept.yaml"
want="$B/intercept.yaml:9:11: files[2].mode: unknown mode \"copy\" (merge, override, writecopy, readonly, hide)"
expect_fail 3 "$want" ei check "$B"
assert_eq "check: the error is one line" 1 "$(grep -c . <<<"$ERR")"
expect_fail 3 "$want" ei compile "$B" -o "$T/bad.db"
check "compile: no output file after a failure" test ! -e "$T/bad.db"
check "compile: no temporary file either" test ! -e "$T/bad.db.tmp"
expect_fail 3 "$want" ei explain "$B" /opt/app
printf 'version: 2\n' >"$B/intercept.yaml"
expect_fail 3 "intercept.yaml:1:10: version: unsupported version 2 (this envrun reads 1)" ei check "$B"
printf 'version: 1\nfiles: [\n' >"$B/intercept.yaml"
expect_fail 3 "intercept.yaml:3:1: " ei check "$B"
printf 'version: 1\nnetwork:\n  - inside: 70000\n    outside: 1\n' >"$B/intercept.yaml"
expect_fail 3 "intercept.yaml:3:13: network[0].inside: port 70000 out of range" ei check "$B"
printf 'version: 1\nfiles:\n  - inside: /a\n    outside: /b\n    extra: 1\n' >"$B/intercept.yaml"
expect_fail 3 "intercept.yaml:5:5: files[0].extra: unknown key" ei check "$B"
printf 'version: 1\nfiles:\n  - inside: /a\n    outside: /b\n' >"$B/intercept.yaml"
expect_fail 7 "$T/no-dir/x.db" ei compile "$B" -o "$T/no-dir/x.db"
expect_fail 2 "no such bundle directory or intercept.yaml" ei check "$T/nothing-here"

# ---------------------------------------------------------------------------
section "explain: every mode"
capture ei explain "$APP" /opt/app/bin/tool
assert_contains "override: the rule" "$OUT" "rule: files[0] ($APP/intercept.yaml line 3): inside /opt/app, mode override"
assert_contains "override: read goes outside" "$OUT" "read: $APP/rfs/opt/app/bin/tool"
assert_contains "explain says it is lexical" "$OUT" "resolved lexically"
capture ei explain "$APP" /opt/app/../app/bin/tool
assert_contains "explain normalizes the path" "$OUT" "path: /opt/app/bin/tool (normalized from /opt/app/../app/bin/tool)"
capture ei explain "$APP" /opt/application/x
assert_contains "a prefix must end at a component boundary" "$OUT" "no rule: /opt/application/x is not redirected"
capture ei explain "$APP" /opt/app/missing
assert_contains "explain says when the path does not exist" "$OUT" "$APP/rfs/opt/app/missing does not exist"

capture ei explain "$APP" /etc/app.conf
assert_contains "readonly: reads go outside" "$OUT" "read: $APP/conf/app.conf"
capture ei explain "$APP" /etc/app.conf --op write
assert_contains "readonly: writes fail with EROFS" "$OUT" "write: fails with EROFS"

capture ei explain "$APP" /etc/secret/key --op create
assert_contains "hide: ENOENT, creation included" "$OUT" "create: fails with ENOENT"
assert_not_contains "hide: no outside path" "$OUT" "outside:"

capture ei explain "$APP" /usr/share/doc
assert_contains "merge: found in outside" "$OUT" "read: $APP/rfs/usr/share/doc (found in outside)"
capture ei explain "$APP" /usr/share/zz-not-in-bundle-$$
assert_contains "merge: missing in both" "$OUT" "read: fails with ENOENT (in neither outside nor the host)"
capture ei explain "$APP" /usr/share/zz-new --op create
assert_contains "merge: new files go to outside" "$OUT" "create: $APP/rfs/usr/share/zz-new (new files are created in outside"
capture ei explain "$APP" /usr/share/doc --op list
assert_contains "merge: listings are the union" "$OUT" "list: the union of $APP/rfs/usr/share/doc and /usr/share/doc"
if [[ -e /usr/share/common-licenses ]]; then
  capture ei explain "$APP" /usr/share/common-licenses
  assert_contains "merge: not in outside, the host path" "$OUT" "read: /usr/share/common-licenses (not in outside: the host path)"
fi

U=$T/st/upper/2
mkdir -p "$U"
echo upperfile >"$U/kept"
: >"$U/.wh.gone"
capture ei explain --state "$T/st" "$APP" /var/lib/app/kept
assert_contains "writecopy: upper first" "$OUT" "read: $U/kept (found in upper)"
capture ei explain --state "$T/st" "$APP" /var/lib/app/gone
assert_contains "writecopy: a whiteout hides the lower name" "$OUT" "read: fails with ENOENT (whiteout $U/.wh.gone)"
rm "$U/kept"
capture ei explain --state "$T/st" "$APP" /var/lib/app/kept
assert_contains "writecopy: else the lower path" "$OUT" "read: $APP/lower/kept (not copied up: the lower path)"
capture ei explain --state "$T/st" "$APP" /var/lib/app/kept --op write
assert_contains "writecopy: writes copy up first" "$OUT" "write: $APP/lower/kept is copied up to $U/kept"
capture ei explain --state "$T/st" "$APP" /var/lib/app/kept --op remove
assert_contains "writecopy: removing a lower name leaves a whiteout" "$OUT" "remove: a whiteout is created in upper"
capture ei explain --state "$T/st" "$APP" /var/lib/app/new --op create
assert_contains "writecopy: creation in upper" "$OUT" "create: $U/new (created in upper"

# ---------------------------------------------------------------------------
section "explain and status of a live container (isolation: intercept)"
make_bundle live 'args("/bin/sleep", "60")' 'c["envrun"] = {"isolation": "intercept"}'
mkdir -p "$B/rootfs/app"; echo hi >"$B/rootfs/app/f"
cat >"$B/intercept.yaml" <<'YAML'
version: 1
files:
  - {inside: /app, outside: "${ROOTFS}/app"}
  - {inside: /data, mode: writecopy}
interceptors:
  - name: redirect
    options: {exec_static: warn}
  - name: meter
    enabled: false
YAML
if check "create a container with interception" er create -b "$B" icli-live; then
  capture ei explain icli-live /app/f
  assert_contains "explain ID reads the container's database" "$OUT" "database: container icli-live ($STATE/icli-live/intercept/intercept.db)"
  assert_contains "explain ID: the rule" "$OUT" "read: $B/rootfs/app/f"
  capture ei explain icli-live /data/x --op create
  assert_contains "explain ID: the instance's upper directory" "$OUT" "create: $STATE/icli-live/intercept/upper/1/x (created in upper"
  capture ei icli-live status
  assert_eq "status: the chain with options and initial states" "1 redirect   on  exec_static=warn
2 meter      off" "$OUT"
  check "delete" er delete --force icli-live
fi
expect_fail 4 "no such container" ei explain icli-live /app/f

# ---------------------------------------------------------------------------
section "usage errors and --help"
expect_fail 4 "no such container" ei explain no-such-thing-$$ /x
expect_fail 2 "give the absolute path" ei explain "$APP" relative/path
expect_fail 2 "" ei explain "$APP" /x --op chmod
expect_fail 2 "give a subcommand" ei
expect_fail 2 "unknown action \"frob\"" ei someid frob
expect_fail 2 "needs interceptor names" ei someid enable
expect_fail 4 "does not exist" ei no-such-ctr-$$ status
for sub in compile check explain; do
  capture ei "$sub" --help
  assert_eq "$sub --help: exit 0" 0 "$RC"
  assert_contains "$sub --help: usage line" "$OUT" "Usage: envrun intercept $sub"
done
capture ei --help
assert_contains "intercept --help lists the subcommands" "$OUT" "explain"
assert_contains "intercept --help shows ID enable|disable|status" "$OUT" "envrun intercept ID status"
