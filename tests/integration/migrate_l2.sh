# Shared set-up of the migration tests whose app keeps TCP connections open while it
# moves (t_migrate_tcp.sh, t_migrate_redis.sh); sourced after lib.sh.
#
# Three "hosts" as network namespaces on one L2 segment (a bridge in a fourth namespace,
# one veth to each): A 10.231.9.1 (the source), B 10.231.9.2 (the target, its agent on
# port 7070), C 10.231.9.3 (the clients). The service address 10.231.9.100 starts on A
# and moves with the app: the containers have no network namespace of their own, so
# their sockets live in their host's; the migration is given three hooks:
#   --before-stop     removes the address from A right before the final freeze: from then
#                     on C's packets reach A (C's neighbour entry still names A) and are
#                     dropped there, not answered with a reset: the connections are fenced
#                     while they are dumped and after the dump closed them silently;
#   --before-restore  adds it on B once the image is there (the restored sockets bind it);
#   --on-rollback     puts it back on A once the app is restored there (rollback).
# After a migration, C's neighbour entry is flushed (C asks again: B answers).
# AGENT_ENVRUN: another envrun binary for host B's agent (default: $ENVRUN).
command -v nsenter >/dev/null || { fail "nsenter is not installed (util-linux)"; exit 1; }
MIG_PROGS=$SRC_DIR/tests/migrate

NS_A=envrun-ml-a-$$ NS_B=envrun-ml-b-$$ NS_C=envrun-ml-c-$$ NS_L=envrun-ml-l-$$
IF_A=mla$$ IF_B=mlb$$ IF_C=mlc$$   # each host's veth: also what the test server reports as its host
IP_A=10.231.9.1 IP_B=10.231.9.2 IP_C=10.231.9.3 SVC=10.231.9.100 AGENT_PORT=7070
AROOT=$T/hostB   # the agent's --root; its containers: $AROOT/state

for ns in "$NS_A" "$NS_B" "$NS_C" "$NS_L"; do
  ip netns add "$ns" && NETNS_TO_DELETE+=("$ns") || { fail "network namespace $ns"; exit 1; }
done
ip -n "$NS_L" link add br0 type bridge && ip -n "$NS_L" link set br0 up
for h in A:"$NS_A":"$IF_A":"$IP_A" B:"$NS_B":"$IF_B":"$IP_B" C:"$NS_C":"$IF_C":"$IP_C"; do
  IFS=: read -r name ns ifname ip <<<"$h"
  ip link add "$ifname" netns "$ns" type veth peer name "port$name" netns "$NS_L" ||
    { fail "veth from host $name to the bridge"; exit 1; }
  ip -n "$NS_L" link set "port$name" master br0 up
  ip -n "$ns" addr add "$ip/24" dev "$ifname" && ip -n "$ns" link set "$ifname" up && ip -n "$ns" link set lo up
done
ip -n "$NS_A" addr add "$SVC/24" dev "$IF_A"

in_a() { nsenter --net="/run/netns/$NS_A" "$@"; }
in_b() { nsenter --net="/run/netns/$NS_B" "$@"; }
in_c() { nsenter --net="/run/netns/$NS_C" "$@"; }
er_a() { in_a timeout -k 5 "$ER_TIMEOUT" "$ENVRUN" --root "$STATE" "$@"; }   # host A's envrun
eb() { timeout -k 5 "$ER_TIMEOUT" "$ENVRUN" --root "$AROOT/state" "$@"; }    # host B's (the agent's)
migrate() { in_a timeout -k 5 120 "$ENVRUN" --root "$STATE" migrate "$@"; }
svc_on() { ip -n "$1" -4 -o addr show | grep -q " $SVC/"; }

HOOK_STOP="ip -n $NS_A addr del $SVC/24 dev $IF_A"
HOOK_RESTORE="ip -n $NS_B addr add $SVC/24 dev $IF_B"
HOOK_ROLLBACK="ip -n $NS_B addr del $SVC/24 dev $IF_B 2>/dev/null; ip -n $NS_A addr replace $SVC/24 dev $IF_A"
HOOKS=(--before-stop "$HOOK_STOP" --before-restore "$HOOK_RESTORE" --on-rollback "$HOOK_ROLLBACK")
# C asks for the service address's owner again (B, once the app runs there).
renew_neighbour() { ip -n "$NS_C" neigh flush dev "$IF_C"; }

STATE_ROOTS+=("$AROOT/state")  # the agent's containers go too

head -c 32 /dev/urandom >"$T/psk" && chmod 600 "$T/psk"
nsenter --net="/run/netns/$NS_B" "${AGENT_ENVRUN:-$ENVRUN}" --cgroup-root "/$CG_PREFIX/host-b" --root "$AROOT" serve --listen "$IP_B:$AGENT_PORT" --psk-file "$T/psk" >"$T/agent.log" 2>&1 </dev/null &
PIDS_TO_KILL+=($!)
wait_for 10 grep -q "listening on $IP_B:$AGENT_PORT" "$T/agent.log" || fail "the agent on B listens" "$(cat "$T/agent.log")"
TARGET=$IP_B:$AGENT_PORT

# host_bundle NAME ARGS_PYTHON_LIST [STATEMENT...]: busybox rootfs + the host's /usr
# (read-only), no network namespace of its own (the host's), $B set.
host_bundle() {
  local name=$1 args=$2; shift 2
  make_bundle "$name" "args($args)" 'mount("/usr", "bind", "/usr", ["rbind", "ro"])' 'ns_remove("network")' "$@" \
    'c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE"] for k in ("bounding", "effective", "permitted")}' || return 1
  local d
  for d in lib lib64; do rm -rf "${B:?}/rootfs/$d"; ln -s "usr/$d" "$B/rootfs/$d"; done
  mkdir -p "$B/rootfs/tmp" "$B/rootfs/usr"
}
