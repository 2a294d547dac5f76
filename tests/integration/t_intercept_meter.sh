#!/usr/bin/env bash
# The meter's counters against ground truth (intercept/README.md, "Counters"): a probe
# (tests/intercept/meter/meter_probe.c) that opens exactly N files, moves a known number of
# bytes through files, pipes, threads, fork children and an exec, accepts K concurrent
# connections from K clients (python3, outside the instance) and answers exactly T
# requests, connects twice, forks P children, execs E, spawns S. Run through `envrun run`
# in intercept mode; `envrun intercept ID status --json` must report every counter exactly
# as computed here from the parameters. Then, under LD_PRELOAD with a control page written
# here: the meter switched off counts nothing; a killed process loses at most one batch;
# distinct peers are counted once per instance (IPv4-mapped IPv6 included) until the table
# is full; a shell's fork+exec children are one process each.
source "$(dirname "$0")/lib.sh"

BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
LIB=${INTERCEPT_LIB:-$BUILD/intercept/libenvrun-intercept.so}
PROBE=$BUILD/tests/intercept/meter/meter_probe
PY=/usr/bin/python3
for f in "$LIB" "$PROBE"; do [[ -e $f ]] || { fail "build product missing: $f (build envrun-intercept, meter_probe)"; exit 1; }; done
ISO='c["envrun"] = {"isolation": "intercept"}'
FLUSH_EVERY=64   # intercept/meter.hpp kFlushEvery
PEER_SLOTS=128   # intercept/control.h kPeerSlots

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# counters_of JSON_FILE NAME...: the named counters of a status --json document, one line.
counters_of() { "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))["counters"]
print(" ".join(str(d[n]) for n in sys.argv[2:]))' "$@"; }
# ctl_write FILE MASK: a fresh control page with this enabled mask (intercept/control.h).
ctl_write() {
  "$PY" -c 'import struct, sys
head = struct.pack("<8sII", b"ENVRCTL\0", 1, 4096) + struct.pack("<QQ", int(sys.argv[1]), 0)
sys.stdout.buffer.write(head + bytes(4096 - len(head)))' "$2" > "$1"
}
# ctl_counters FILE INDEX...: counters of a control page file, one line.
ctl_counters() { "$PY" -c 'import struct, sys
d = open(sys.argv[1], "rb").read()
print(" ".join(str(struct.unpack_from("<Q", d, 80 + 8 * int(i))[0]) for i in sys.argv[2:]))' "$@"; }
K_BYTES_READ=9 K_BYTES_WRITTEN=10 K_PROCESSES=13 K_PEERS=17 K_PEERS_FULL=18 K_OPENS=0 K_EXECS=4
# The clients and the connect() target, outside the instance: K connections from D source
# addresses 127.0.0.11.., TURNS requests of Q bytes round-robin, responses RESP/TURNS (the remainder
# on the last); a listener on LPORT that drains two connections.
cat > "$T/clients.py" <<'EOF'
import socket, sys, threading, time
port, lport, k, d, t, q, b = map(int, sys.argv[1:8])
lsock = socket.socket()
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", lport))
lsock.listen(4)
drained = []
def drain_one(c):
    n = 0
    while (x := c.recv(65536)):
        n += len(x)
    drained.append(n)
def listener():
    ts = []
    for _ in range(2):
        c, _ = lsock.accept()
        ts.append(threading.Thread(target=drain_one, args=(c,)))
        ts[-1].start()
    for th in ts:
        th.join()
lt = threading.Thread(target=listener)
lt.start()
def connect(i):
    deadline = time.time() + 60
    while True:
        s = socket.socket()
        s.bind((f"127.0.0.{11 + i % d}", 0))
        try:
            s.connect(("127.0.0.1", port))
            return s
        except ConnectionRefusedError:
            s.close()
            if time.time() > deadline:
                raise
            time.sleep(0.05)
conns = [connect(i) for i in range(k)]
received = 0
for i in range(t):
    s = conns[i % k]
    s.sendall(b"q" * q)
    want = b // t + (b % t if i == t - 1 else 0)
    while want:
        x = s.recv(want)
        if not x:
            raise EOFError("the server closed early")
        received += len(x)
        want -= len(x)
for s in conns:
    if s.recv(1) != b"":
        raise RuntimeError("the server did not close")
lt.join()
print(f"clients sent {t * q} received {received} listener {sorted(drained)}")
EOF

# ---------------------------------------------------------------------------
section "ground truth: the probe in an intercept-mode container"
N=7 FB=1000 X=5000 TH=3000 K=5 D=3 TURNS=17 Q=13 RESP=100000 C=777 P=4 CB=100 E=2 S=2 TB=2222
PORT=$(free_port); LPORT=$(free_port)
while [[ $LPORT == "$PORT" ]]; do LPORT=$(free_port); done
mkdir -p "$T/files"
"$PY" "$T/clients.py" "$PORT" "$LPORT" $K $D $TURNS $Q $RESP > "$T/clients.out" 2>&1 &
CLIENTS=$!; PIDS_TO_KILL+=("$CLIENTS")
make_bundle mp "args(\"$PROBE\", \"run\", \"dir=$T/files\", \"port=$PORT\", \"lport=$LPORT\", \"n=$N\", \"fb=$FB\", \"x=$X\", \"th=$TH\", \"k=$K\", \"t=$TURNS\", \"q=$Q\", \"b=$RESP\", \"c=$C\", \"p=$P\", \"cb=$CB\", \"e=$E\", \"s=$S\", \"tb=$TB\")" "$ISO"
capture er run -d -b "$B" mp
assert_eq "run -d the probe" 0 "$RC"
wait_status mp stopped 60
wait "$CLIENTS"
assert_eq "the clients saw every response and the listener both connections" \
  "clients sent $((TURNS * Q)) received $RESP listener [$C, $((C + FB))]" "$(cat "$T/clients.out")"
capture er intercept mp status --json
assert_eq "intercept mp status --json" 0 "$RC"
echo "$OUT" > "$T/status.json"
assert_eq "status --json: the chain is there" "meter redirect net barrier" \
  "$("$PY" -c 'import json,sys; print(" ".join(c["name"] for c in json.load(open(sys.argv[1]))["chain"]))' "$T/status.json")"
got() { counters_of "$T/status.json" "$@"; }
assert_eq "opens: 2N written and read back + 1 for sendfile (open_failures 0)" "$((2 * N + 1)) 0" "$(got opens open_failures)"
assert_eq "bytes read: files, pipe, 2 threads, requests, sendfile's file, children, the exec'd tail" \
  "$((N * FB + X + 2 * TH + TURNS * Q + FB + P * CB + TB))" "$(got bytes_read)"
assert_eq "bytes written: files, pipe, 2 threads, responses, 2C + sendfile to sockets, children, tail" \
  "$((N * FB + X + 2 * TH + RESP + 2 * C + FB + P * CB + TB))" "$(got bytes_written)"
assert_eq "network bytes: received TURNS*Q, sent RESP + 2C + sendfile" "$((TURNS * Q)) $((RESP + 2 * C + FB))" \
  "$(got net_bytes_received net_bytes_sent)"
assert_eq "transactions: one per turn" "$TURNS" "$(got transactions)"
assert_eq "accepts K, peak K concurrent, none open at the end" "$K $K 0" "$(got accepts connections_peak connections_open)"
assert_eq "connects 2; distinct peers: D client addresses + the connect target" "2 $((D + 1)) 0" \
  "$(got connects distinct_peers peers_table_full)"
assert_eq "processes: the probe + P forks + E fork+exec + S spawns (the exec'd tail is no new process)" \
  "$((1 + P + E + S))" "$(got processes_started)"
assert_eq "execs: E + S + the tail" "$((E + S + 1))" "$(got execs)"
check "delete mp" er delete mp

# ---------------------------------------------------------------------------
section "the meter switched off counts nothing; on, the same probe counts the same"
printf 'version: 1\ninterceptors:\n  - name: meter\n  - name: redirect\n' > "$T/mr.yaml"
check "compile [meter, redirect]" "$ENVRUN" intercept compile "$T/mr.yaml" -o "$T/mr.db"
under() { local ctl=$1; shift; env ENVRUN_INTERCEPT_DB="$T/mr.db" ENVRUN_INTERCEPT_CTL="$ctl" LD_PRELOAD="$LIB" "$@"; }
probe_args() { echo "dir=$T/files port=$1 lport=$2 n=$N fb=$FB x=$X th=$TH k=$K t=$TURNS q=$Q b=$RESP c=$C p=$P cb=$CB e=$E s=$S tb=$TB"; }
for mask in 2 3; do
  PORT=$(free_port); LPORT=$(free_port)
  while [[ $LPORT == "$PORT" ]]; do LPORT=$(free_port); done
  "$PY" "$T/clients.py" "$PORT" "$LPORT" $K $D $TURNS $Q $RESP > "$T/clients-$mask.out" 2>&1 &
  CLIENTS=$!; PIDS_TO_KILL+=("$CLIENTS")
  ctl_write "$T/m$mask.ctl" $mask
  capture timeout 60 env ENVRUN_INTERCEPT_DB="$T/mr.db" ENVRUN_INTERCEPT_CTL="$T/m$mask.ctl" LD_PRELOAD="$LIB" \
    "$PROBE" run $(probe_args "$PORT" "$LPORT")
  assert_eq "probe under mask $mask" "0 done" "$RC $OUT"
  wait "$CLIENTS"
done
assert_eq "meter off: opens, bytes, processes, peers, transactions all 0" "0 0 0 0 0 0" \
  "$(ctl_counters "$T/m2.ctl" $K_OPENS $K_BYTES_READ $K_BYTES_WRITTEN $K_PROCESSES $K_PEERS 16)"
assert_eq "meter on: the same counts as in the container" \
  "$(got opens bytes_read bytes_written processes_started distinct_peers transactions)" \
  "$(ctl_counters "$T/m3.ctl" $K_OPENS $K_BYTES_READ $K_BYTES_WRITTEN $K_PROCESSES $K_PEERS 16)"

# ---------------------------------------------------------------------------
section "a killed process loses at most one batch"
W=1000
ctl_write "$T/kill.ctl" 3
(under "$T/kill.ctl" "$PROBE" killme $W) 2>/dev/null   # the shell's "Killed" line
read -r written procs <<<"$(ctl_counters "$T/kill.ctl" $K_BYTES_WRITTEN $K_PROCESSES)"
if [[ $written =~ ^[0-9]+$ ]] && ((written <= W && written > W - FLUSH_EVERY)); then
  pass "SIGKILL after $W 1-byte writes: $written counted (bound: more than $((W - FLUSH_EVERY)))"
else fail "SIGKILL after $W writes: at most one batch lost" "bytes_written [$written], want $((W - FLUSH_EVERY + 1))..$W"; fi
assert_eq "and the process was counted" 1 "$procs"

# ---------------------------------------------------------------------------
section "distinct peers: once per instance, IPv4-mapped IPv6 is the same host, a full table stops"
LP=$(free_port)
cat > "$T/peers.py" <<'EOF'
import socket, sys
port, first, last = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for rep in range(2):
    for i in range(first, last + 1):
        s = socket.create_connection((f"127.0.0.{i}", port))
        s.close()
s = socket.socket(socket.AF_INET6)
s.connect(("::ffff:127.0.0.1", port))
s.close()
print("ok")
EOF
"$PY" -c 'import socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", int(sys.argv[1]))); l.listen(512)
while True:
    c, _ = l.accept(); c.close()' "$LP" &
LISTENER=$!; PIDS_TO_KILL+=("$LISTENER")
wait_for 10 "$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()' "$LP"
ctl_write "$T/peers.ctl" 3
capture under "$T/peers.ctl" "$PY" "$T/peers.py" "$LP" 1 100
assert_eq "100 addresses twice + ::ffff:127.0.0.1: 100 peers, table not full" "ok 100 0" \
  "$OUT $(ctl_counters "$T/peers.ctl" $K_PEERS $K_PEERS_FULL)"
capture under "$T/peers.ctl" "$PY" "$T/peers.py" "$LP" 51 100
assert_eq "a second process with known peers adds none" "ok 100 0" "$OUT $(ctl_counters "$T/peers.ctl" $K_PEERS $K_PEERS_FULL)"
capture under "$T/peers.ctl" "$PY" "$T/peers.py" "$LP" 1 140
assert_eq "140 addresses: the table ($PEER_SLOTS slots) fills, the flag is raised" "ok $PEER_SLOTS 1" \
  "$OUT $(ctl_counters "$T/peers.ctl" $K_PEERS $K_PEERS_FULL)"
kill "$LISTENER"; wait "$LISTENER" 2>/dev/null

# ---------------------------------------------------------------------------
section "processes: a shell's fork+exec children are one process each"
ctl_write "$T/sh.ctl" 3
capture under "$T/sh.ctl" /bin/bash -c 'for i in 1 2 3; do /bin/true; done; (exit 0); /bin/true | /bin/cat'
assert_eq "bash ran" 0 "$RC"
# bash + 3 x (fork + exec true) + the subshell (fork) + the pipeline's 2 (fork + exec).
assert_eq "processes 1 + 3 + 1 + 2, execs 5" "7 5" "$(ctl_counters "$T/sh.ctl" $K_PROCESSES $K_EXECS)"

# ---------------------------------------------------------------------------
section "status --json of a container without interception"
make_bundle ns 'args("/bin/true")'
check "create ns" er create -b "$B" ns
expect_fail 5 "without the interception library" er intercept ns status --json
check "delete ns" er delete --force ns

