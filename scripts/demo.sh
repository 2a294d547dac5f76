#!/usr/bin/env bash
# The envrun demo: install dependencies, build, run the example bundle in the
# foreground, then walk a detached container through its whole lifecycle
# (create, start, state, list, ps, exec, kill, delete), printing each step.
# Exits non-zero as soon as a step fails.
#
#   bash scripts/demo.sh            (as root, on Debian 12)
#   BUILD_DIR=build DEMO_DIR=/tmp/envrun-demo ENVRUN_ROOT=/run/envrun bash scripts/demo.sh
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/build}
DEMO_DIR=${DEMO_DIR:-/tmp/envrun-demo}
ENVRUN_ROOT=${ENVRUN_ROOT:-/run/envrun}
TIMEOUT=30

bold() { if [[ -t 1 ]]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
say() { echo; bold "==> $*"; }
die() { echo "demo: FAILED: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (containers need namespaces, cgroups and mounts)"

# er ARGS...: show the command (on the demo's stdout, fd 3, even when the command's
# own output is redirected), then run it, bounded in time.
exec 3>&1
quote() {  # shell-quote one word for display, readably
  if [[ $1 =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then printf '%s' "$1"
  else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
er() {
  { printf '$ envrun'; for a in "$@"; do printf ' '; quote "$a"; done; printf '\n'; } >&3
  timeout -k 5 "$TIMEOUT" "$ENVRUN" --root "$ENVRUN_ROOT" "$@" 3>&-
}
status_of() {
  timeout 10 "$ENVRUN" --root "$ENVRUN_ROOT" state "$1" 2>/dev/null |
    grep -o '"status": *"[a-z]*"' | sed 's/.*"\([a-z]*\)"$/\1/'
}
wait_status() {  # wait_status ID STATUS: at most 15 s
  local i
  for ((i = 0; i < 150; i++)); do
    [[ $(status_of "$1") == "$2" ]] && { echo "   (status is now $2)"; return 0; }
    sleep 0.1
  done
  die "$1 did not reach status $2 (status: $(status_of "$1"))"
}

say "1. dependencies (scripts/deps.sh)"
bash "$SRC/scripts/deps.sh"

say "2. build ($BUILD_DIR)"
if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
  cmake -S "$SRC" -B "$BUILD_DIR"
fi
cmake --build "$BUILD_DIR" --target envrun envrun-intercept -j"$(nproc)"
ENVRUN=$BUILD_DIR/cli/envrun
[[ -x $ENVRUN ]] || die "no envrun binary at $ENVRUN"
"$ENVRUN" --version

say "3. bundles in $DEMO_DIR (examples/ + a busybox rootfs built by tests/fixtures/make-rootfs.sh)"
for ex in busybox busybox-service; do
  mkdir -p "$DEMO_DIR/$ex"
  cp "$SRC/examples/$ex/config.yaml" "$DEMO_DIR/$ex/config.yaml"
  bash "$SRC/tests/fixtures/make-rootfs.sh" "$DEMO_DIR/$ex/rootfs"
done
# Remove the demo's containers: leftovers of an earlier run now, and ours on any exit.
remove_demo_containers() {
  local id
  for id in demo-hello demo-service; do
    timeout 20 "$ENVRUN" --root "$ENVRUN_ROOT" delete --force "$id" >/dev/null 2>&1 </dev/null || true
  done
}
remove_demo_containers
trap remove_demo_containers EXIT

say "4. run the example in the foreground: its output is ours, its exit code too"
out=$(er run --bundle "$DEMO_DIR/busybox" demo-hello) || die "envrun run exited $?"
echo "$out" | sed 's/^/   | /'
grep -q "hello from envrun" <<<"$out" || die "the container did not greet"
[[ -z $(status_of demo-hello) ]] || die "run left the container behind"
echo "   run exited 0 and removed the container"

say "5. a detached container: create (its stdout goes to $DEMO_DIR/service.log)"
er create --bundle "$DEMO_DIR/busybox-service" --pid-file "$DEMO_DIR/service.pid" demo-service \
  >"$DEMO_DIR/service.log" 2>&1 </dev/null
echo "   init pid $(cat "$DEMO_DIR/service.pid") waits for start"
er state demo-service
[[ $(status_of demo-service) == created ]] || die "status after create is not created"

say "6. start, state, list"
er start demo-service
wait_status demo-service running
er state demo-service
er list

say "7. ps (host pids of the container's processes) and exec (a second process inside)"
er ps demo-service
er exec demo-service sh -c 'echo "exec: I am pid $$ next to: $(ps -o pid,comm | tr "\n" " ")"'

say "8. pause and resume (cgroup freezer)"
er pause demo-service
wait_status demo-service paused
er resume demo-service
wait_status demo-service running

say "9. kill (SIGTERM: the service handles it and exits)"
er kill demo-service TERM
wait_status demo-service stopped
echo "   service.log:"
sed 's/^/   | /' "$DEMO_DIR/service.log"
grep -q "got SIGTERM" "$DEMO_DIR/service.log" || die "the service did not see SIGTERM"

say "10. delete"
er delete demo-service
[[ -z $(status_of demo-service) ]] || die "delete left the container behind"
er list

say "11. isolation by interception, no root: examples/intercept-app as user nobody"
# The host's python3 runs the bundle's /app/app.py; intercept.yaml maps /app (readonly),
# /etc/app (override), /var/lib/app (writecopy into the bundle's data/) and port 8080 -> 18080.
IA=$DEMO_DIR/intercept-app
rm -rf "$IA"
cp -a "$SRC/examples/intercept-app" "$IA"
rm -rf "$IA/data"
chmod -R a+rX "$IA"
mkdir -p "$IA/data" && chown nobody "$IA/data"
USER_ROOT=$DEMO_DIR/nobody-state
mkdir -p "$USER_ROOT" && chown nobody "$USER_ROOT"
as_nobody() {
  { printf '$ (as nobody) envrun'; for a in "$@"; do printf ' '; quote "$a"; done; printf '\n'; } >&3
  timeout -k 5 "$TIMEOUT" setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp XDG_RUNTIME_DIR= \
    "$ENVRUN" --root "$USER_ROOT" "$@" 3>&-
}
as_nobody intercept explain "$IA" /var/lib/app/visits.log --op write | sed 's/^/   | /'
for run in 1 2; do
  out=$(as_nobody run --bundle "$IA" demo-intercept) || die "intercept run $run exited $?"
  echo "$out" | sed 's/^/   | /'
  grep -q "hello from the intercept-app bundle (run $run" <<<"$out" || die "run $run did not see its files"
done
echo "   the bundle's own visits.log is untouched ($(wc -l <"$IA/rootfs/var/lib/app/visits.log") lines);"
echo "   the writes went to its upper layer $IA/data/visits.log ($(wc -l <"$IA/data/visits.log") lines)"
[[ $(wc -l <"$IA/data/visits.log") -eq 2 ]] || die "the writecopy layer does not hold the two runs"
# The same rootfs, serving: a second bundle whose config adds the "serve" argument.
IW=$DEMO_DIR/intercept-web
rm -rf "$IW" && mkdir -p "$IW/data"
sed -e "s|args: \[/usr/bin/python3, /app/app.py\]|args: [/usr/bin/python3, /app/app.py, serve]|" \
    -e "s|path: rootfs|path: $IA/rootfs|" "$IA/config.yaml" > "$IW/config.yaml"
cp "$IA/intercept.yaml" "$IW/"
chmod -R a+rX "$IW" && chown nobody "$IW/data"
as_nobody run --detach --bundle "$IW" demo-intercept-web </dev/null >"$DEMO_DIR/intercept-web.log" 2>&1
ok=0
for ((i = 0; i < 100; i++)); do
  if body=$(curl -sf --max-time 2 http://127.0.0.1:18080/ 2>/dev/null); then ok=1; break; fi
  sleep 0.1
done
as_nobody delete --force demo-intercept-web
((ok)) || die "nothing answered on 127.0.0.1:18080 (the app binds 8080; see $DEMO_DIR/intercept-web.log)"
echo "   curl http://127.0.0.1:18080/ -> $body   (the app bound 8080 and sees 8080)"

say "12. metering: a host command as a metered instance, then its bill"
export ENVRUN_LEDGER=$DEMO_DIR/ledger.db
rm -f "$ENVRUN_LEDGER"*
"$ENVRUN" --root "$DEMO_DIR/state-meter" exec --meter --name demo-meter --bundle-name demo-job -- \
  sh -c 'for f in /etc/hostname /etc/os-release /etc/passwd; do cat "$f" >/dev/null; done; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done' \
  || die "exec --meter exited $?"
"$ENVRUN" billing usage demo-meter | sed 's/^/   | /'
opened=$("$ENVRUN" billing usage demo-meter | awk '$5 == "files_opened" {print $6}')
# three files read by cat, and /dev/null opened three times by the shell's redirections
[[ $opened -eq 6 ]] || die "files_opened is [$opened], the command opened 6 files"
printf 'version: 1\ncurrency: EUR\nmetrics:\n  cpu_user_seconds: {unit_price: 0.01}\n  files_opened: {unit_price: 0.001}\n' >"$DEMO_DIR/plan.yaml"
"$ENVRUN" billing export --from 2000-01-01T00:00:00Z --to 2100-01-01T00:00:00Z --plan "$DEMO_DIR/plan.yaml" --format csv |
  cut -d, -f1-3,6-13 | sed 's/^/   | /'
unset ENVRUN_LEDGER

say "demo finished: every step succeeded"
