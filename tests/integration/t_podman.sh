#!/usr/bin/env bash
# podman drives envrun as its OCI runtime (--runtime): import the fixture rootfs
# as an image and `podman run` it. Private storage under $T, nothing global touched.
source "$(dirname "$0")/lib.sh"

if ! command -v podman >/dev/null; then
  echo "SKIP: podman not installed"
  exit 77
fi

PODMAN_DIR=$T/podman
mkdir -p "$PODMAN_DIR"/{root,runroot,tmp}
cat >"$PODMAN_DIR/containers.conf" <<CONF
[engine]
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
cgroup_manager = "cgroupfs"
[containers]
netns = "none"
log_driver = "k8s-file"
CONF
export CONTAINERS_CONF=$PODMAN_DIR/containers.conf
cat >"$PODMAN_DIR/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$PODMAN_DIR/root"
runroot = "$PODMAN_DIR/runroot"
CONF
export CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf
export XDG_RUNTIME_DIR=$PODMAN_DIR/tmp
pm() {
  timeout -k 5 120 podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/runroot" --tmpdir "$PODMAN_DIR/tmp" \
    --storage-driver vfs --cgroup-manager cgroupfs --events-backend file \
    --runtime "$ENVRUN" "$@"
}
# podman also writes a few things outside its --root: remove them when this test made them.
had_var_lib_containers=no; [[ -e /var/lib/containers ]] && had_var_lib_containers=yes
had_libpod_parent=no; compgen -G "/sys/fs/cgroup/*/libpod_parent" >/dev/null && had_libpod_parent=yes
podman_cleanup() {
  pm rm --all --force >/dev/null 2>&1 </dev/null
  pm rmi --all --force >/dev/null 2>&1 </dev/null
  # vfs layers may keep read-only bits or mounts: unmount what is under our dir.
  awk -v t="$PODMAN_DIR" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  [[ $had_var_lib_containers == no ]] && rm -rf /var/lib/containers   # blob-info cache of `import`
  if [[ $had_libpod_parent == no ]]; then                              # conmon's cgroupfs parent
    local d
    for d in /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/libpod_parent; do
      [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
  fi
  return 0
}
trap 'rc=$?; podman_cleanup; (exit $rc); on_exit' EXIT

section "import the fixture rootfs"
tar -C "$FIXTURE_ROOTFS" -cf "$T/rootfs.tar" .
check "podman import" pm import "$T/rootfs.tar" localhost/envrun-busybox

section "podman run --runtime envrun"
capture pm run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  localhost/envrun-busybox echo hi
assert_eq "podman run exits 0" 0 "$RC" || last_cmd_details
assert_eq "podman run prints hi" hi "$OUT"

capture pm run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  localhost/envrun-busybox sh -c 'exit 3'
assert_eq "podman run returns the container's exit code" 3 "$RC"

capture pm run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  --hostname podbox -e FOO=bar localhost/envrun-busybox sh -c 'echo $(hostname) $FOO $$'
assert_eq "podman run: hostname, env, pid 1" "podbox bar 1" "$OUT"

section "podman detached lifecycle"
capture pm run -d --name envrun-it-sleep --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  localhost/envrun-busybox sleep 300
assert_eq "podman run -d" 0 "$RC" || last_cmd_details
capture pm exec envrun-it-sleep echo exec-hi
assert_eq "podman exec through envrun" exec-hi "$OUT"
capture pm stop -t 2 envrun-it-sleep
assert_eq "podman stop" 0 "$RC" || last_cmd_details
capture pm rm envrun-it-sleep
assert_eq "podman rm" 0 "$RC" || last_cmd_details
