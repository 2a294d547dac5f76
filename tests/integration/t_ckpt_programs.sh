#!/usr/bin/env bash
# Self-test of the checkpoint test programs (tests/ckpt/*.c, README.md there), without any
# checkpoint: each program, dynamic on the host and static chrooted into a copy of the busybox
# rootfs (with /proc), reaches READY, is SIGTERMed 0.3 s later and must print PASS and exit 0.
# Then every self-test hook (CKPT_SELFTEST_BREAK=N corrupts one piece of the state the program
# checks, right before it verifies) must turn the verdict into FAIL naming that piece, exit 1:
# a program that cannot fail proves nothing about a restore.
source "$(dirname "$0")/lib.sh"

BUILD=$(cd "$(dirname "$ENVRUN")/.." && pwd)
PROGS=$BUILD/tests/ckpt
NAMES=(counter threads forktree pipe fileoffset deletedfile signals altstack timer bigmem mprotect deadcwd sockets tcp seccomp anonfds)
for n in "${NAMES[@]}"; do
  [[ -x $PROGS/ckpt_$n && -x $PROGS/ckpt_${n}_static ]] ||
    { fail "ckpt_$n and ckpt_${n}_static are built in $PROGS"; exit 1; }
done

# args_of NAME DIR: the program's arguments (DIR: a scratch directory it may write in).
args_of() {
  case $1 in
    fileoffset) echo "$2/fileoffset.dat" ;;
    deletedfile | deadcwd) echo "$2" ;;
    bigmem) echo "${BIGMEM_MIB:-256}" ;;
  esac
}

# run_prog TAG BREAK CMD...: start CMD (CKPT_SELFTEST_BREAK=BREAK unless 0), wait for READY
# (20 s bound), sleep 0.3 s, SIGTERM, wait for the exit (20 s bound, then SIGKILL).
# Sets PROG_RC (124 when READY never came or it did not exit) and PROG_OUT (its stdout).
run_prog() {
  local tag=$1 brk=$2; shift 2
  local out=$T/$tag.out pid deadline
  if [[ $brk == 0 ]]; then
    env -u CKPT_SELFTEST_BREAK "$@" >"$out" 2>"$T/$tag.err" </dev/null &
  else
    CKPT_SELFTEST_BREAK=$brk "$@" >"$out" 2>"$T/$tag.err" </dev/null &
  fi
  pid=$!
  PIDS_TO_KILL+=("$pid")
  deadline=$((SECONDS + 20))
  until grep -qx READY "$out" 2>/dev/null || ! pid_alive "$pid" || ((SECONDS >= deadline)); do
    sleep 0.05
  done
  PROG_RC=124
  if grep -qx READY "$out"; then
    sleep 0.3
    kill -TERM "$pid" 2>/dev/null
    deadline=$((SECONDS + 20))
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
  fi
  if pid_alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  else
    wait "$pid"
    PROG_RC=$?
  fi
  PROG_OUT=$(cat "$out")
}

prog_details() { echo "rc $PROG_RC, stdout: $PROG_OUT"; echo "stderr: $(head -c 600 "$T/$1.err")"; }

# expect_pass TAG NAME CMD...
expect_pass() {
  local tag=$1 name=$2; shift 2
  run_prog "$tag" 0 "$@"
  if [[ $PROG_RC -eq 0 && $PROG_OUT == $'READY\nPASS '"$name" ]]; then
    pass "$tag: READY, then PASS $name after SIGTERM"
  else
    fail "$tag: READY, then PASS $name after SIGTERM" "$(prog_details "$tag")"
  fi
}

# break_case NAME BREAK "reason substring": the dynamic program with that hook must FAIL
# naming that reason. Cases are queued and run_break_cases runs them BATCH at a time.
BREAK_CASES=()
break_case() { BREAK_CASES+=("$1|$2|$3"); }
run_break_cases() {
  local batch=${BATCH:-6} i j name brk needle dir tag
  for ((i = 0; i < ${#BREAK_CASES[@]}; i += batch)); do
    for ((j = i; j < i + batch && j < ${#BREAK_CASES[@]}; j++)); do
      IFS='|' read -r name brk needle <<<"${BREAK_CASES[j]}"
      tag=$name.break$brk dir=$T/scratch/$tag
      mkdir -p "$dir"
      # shellcheck disable=SC2046
      ( run_prog "$tag" "$brk" "$PROGS/ckpt_$name" $(args_of "$name" "$dir")
        echo "$PROG_RC" >"$T/$tag.rc" ) &
    done
    wait
  done
  for ((j = 0; j < ${#BREAK_CASES[@]}; j++)); do
    IFS='|' read -r name brk needle <<<"${BREAK_CASES[j]}"
    tag=$name.break$brk
    PROG_RC=$(cat "$T/$tag.rc" 2>/dev/null) PROG_OUT=$(cat "$T/$tag.out" 2>/dev/null)
    local desc="$name, CKPT_SELFTEST_BREAK=$brk: FAIL naming \"$needle\", exit 1"
    if [[ $PROG_RC == 1 && $PROG_OUT == $'READY\nFAIL '"$name: "* && $PROG_OUT == *"$needle"* ]]; then
      pass "$desc"
    else
      fail "$desc" "$(prog_details "$tag")"
    fi
  done
}

# ---------------------------------------------------------------------------
section "static binaries are static"
for n in "${NAMES[@]}"; do
  if readelf -l "$PROGS/ckpt_${n}_static" 2>/dev/null | grep -q INTERP; then
    fail "ckpt_${n}_static has no program interpreter" "$(file "$PROGS/ckpt_${n}_static")"
  else
    pass "ckpt_${n}_static has no program interpreter"
  fi
done

# ---------------------------------------------------------------------------
section "dynamic programs on the host: READY, SIGTERM, PASS"
for n in "${NAMES[@]}"; do
  mkdir -p "$T/scratch/$n"
  # shellcheck disable=SC2046
  BIGMEM_MIB=1024 expect_pass "$n" "$n" "$PROGS/ckpt_$n" $(args_of "$n" "$T/scratch/$n")
done
assert_eq "deadcwd left no directory behind" "" "$(find "$T/scratch/deadcwd" -mindepth 1)"
assert_eq "deletedfile left no file behind" "" "$(find "$T/scratch/deletedfile" -mindepth 1)"

# ---------------------------------------------------------------------------
section "static programs chrooted into a busybox rootfs: READY, SIGTERM, PASS"
ROOT=$T/rootfs
cp -a "$FIXTURE_ROOTFS" "$ROOT"
mkdir -p "$ROOT/ckpt" "$ROOT/proc" "$ROOT/tmp"
cp "$PROGS"/ckpt_*_static "$ROOT/ckpt/"
if mount -t proc proc "$ROOT/proc"; then
  for n in "${NAMES[@]}"; do
    mkdir -p "$ROOT/tmp/$n"
    # shellcheck disable=SC2046
    expect_pass "$n.static" "$n" chroot "$ROOT" "/ckpt/ckpt_${n}_static" $(args_of "$n" "/tmp/$n")
  done
  umount "$ROOT/proc"
else
  fail "mount proc in the rootfs copy"
fi

# ---------------------------------------------------------------------------
section "every self-test hook makes its program FAIL"
break_case counter 1 "not above its READY value"
break_case counter 2 "heap"
break_case counter 3 "went backwards or jumped"
break_case threads 1 "thread 1 TLS value"
break_case threads 2 "thread 2 heartbeat stuck"
break_case threads 3 "shared counter stuck"
break_case threads 4 "thread 3 TLS string"
break_case forktree 1 "zombie child 1"
break_case forktree 2 "getpgid(child 3)"
break_case forktree 3 "child 2"
break_case pipe 1 "pipe A FIONREAD 4999"
break_case pipe 2 "pipe B read end flags"
break_case pipe 3 "pipe B byte"
break_case fileoffset 1 "fd1 offset 0"
break_case fileoffset 2 "fd2 flags"
break_case fileoffset 3 "offset not shared"
break_case fileoffset 4 "byte 100"
break_case deletedfile 1 "byte 777777"
break_case deletedfile 2 "offset 4096"
break_case deletedfile 3 "size 524288"
break_case deletedfile 4 "mode 0600"
break_case signals 1 "SIGUSR2 not pending"
break_case signals 2 "SIGRTMIN+1 delivered 2 times"
break_case signals 3 "SIGUSR1 flags"
break_case signals 4 "sa_mask: signal 3 is missing"
break_case altstack 1 "(disabled)"
break_case altstack 2 "sigaltstack reports"
break_case altstack 3 "SA_ONSTACK"
break_case timer 1 "ITIMER_REAL"
break_case timer 2 "timer lost"
break_case timer 3 "interval 0.040000000"
break_case bigmem 1 "big mapping: first bad page"
break_case bigmem 2 "zero mapping: first bad page 100 "
break_case bigmem 3 "holes mapping: first bad page 301 "
break_case mprotect 1 "read-write: permissions r--p"
break_case mprotect 2 "read-only: byte 4101"
break_case mprotect 3 "not shared"
break_case mprotect 4 "returned 43"
break_case deadcwd 1 "could be created"
break_case deadcwd 2 "getcwd() = "
break_case sockets 1 "pair end 1 has 2999 bytes queued"
break_case sockets 2 "eventfd read 0"
break_case sockets 3 "epoll at SIGTERM: 1 events, set 0x2"
break_case sockets 4 "listener on port"
break_case tcp 1 "server side has 2999 bytes queued"
break_case tcp 2 "client port"
break_case tcp 3 "client has 7 unexpected bytes"
break_case seccomp 1 "Seccomp_filters: 3"
break_case anonfds 1 "timer B has 0 s left"
break_case anonfds 2 "signalfd gave nothing"
break_case anonfds 3 "timer A interval 0.070000000"
run_break_cases
