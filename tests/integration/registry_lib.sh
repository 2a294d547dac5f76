# Registry helpers shared by t_pull.sh and t_push.sh (sourced after lib.sh).
# start_registry [STORAGE_EXTRA]: Debian's docker-registry on 127.0.0.1:<free port> with
# its config, storage and log under $T/registry; sets PORT and REG; the server is killed
# by lib.sh's exit trap. STORAGE_EXTRA is added to the storage map (e.g.
# "delete: {enabled: true}").
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() {
  local extra=${1:+, $1}
  PORT=$(free_port)
  REG=127.0.0.1:$PORT
  mkdir -p "$T/registry"
  cat >"$T/registry/config.yml" <<YAML
version: 0.1
log: {level: info, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $T/registry/data}$extra}
http: {addr: $REG}
YAML
  docker-registry serve "$T/registry/config.yml" >"$T/registry/log" 2>&1 &
  PIDS_TO_KILL+=($!)
  wait_for 15 curl -sf "http://$REG/v2/" || { echo "FATAL: docker-registry did not start: $(tail -5 "$T/registry/log")"; exit 1; }
}
