# shellcheck shell=bash
# Shared helpers for the lab's own tests (sourced). Each test brings up what it needs and tears it
# down on exit, also on failure. Exit 77 (CTest "skipped") when a prerequisite is missing: these
# tests never pass without having run.
set -euo pipefail

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$LAB_ROOT/lab
# Which lab: PGC_LAB_ID (0, the default, for most of these tests; CTest gives a test its own).
export PGC_LAB_ID=${PGC_LAB_ID:-0}
if [[ $PGC_LAB_ID == 0 ]]; then
  export PGC_LAB_DIR=${PGC_LAB_DIR:-/tmp/pgconverge-lab}
  LAB_PREFIX=pgclab
else
  export PGC_LAB_DIR=${PGC_LAB_DIR:-/tmp/pgconverge-lab$PGC_LAB_ID}
  LAB_PREFIX=pgclab$PGC_LAB_ID
fi
SUBNET=10.250.$PGC_LAB_ID

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
step() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }

[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, mounts)"
for tool in ip unshare nsenter runsvdir runsv sv chpst ssh ssh-keygen /usr/sbin/sshd etcd etcdctl curl flock setsid \
  /usr/bin/python3 /usr/lib/postgresql/15/bin/initdb psql patroni; do
  command -v "$tool" >/dev/null 2>&1 || skip "missing $tool (run scripts/install-deps)"
done
grep -qw overlay /proc/filesystems || skip "the kernel has no overlayfs"
unshare --net --mount --pid --fork --mount-proc true 2>/dev/null || skip "cannot create namespaces here"

# Lab 0: one lab command at a time for the whole test (the lab's own commands then skip their
# lock). Another lab id is the test's alone (CTest RESOURCE_LOCK); its lab commands lock one by one.
if [[ $PGC_LAB_ID == 0 ]]; then
  exec 9<"$LAB"
  flock -w 900 9 || fail "another lab user holds the lock"
  export PGC_LAB_LOCK_HELD=1
fi

WORK=$(mktemp -d /tmp/pgclab-test.XXXXXX)
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 && $rc -ne 77 ]]; then
    echo "--- lab status at failure (exit $rc)"
    "$LAB" status || true
    for f in "$PGC_LAB_DIR"/logs/*.log; do
      [[ -f $f ]] && { echo "--- $f"; tail -n 15 "$f"; }
    done
  fi
  "$LAB" down >/dev/null 2>&1 || "$LAB" down || true
  rm -rf "$WORK"
  # Leave nothing behind, also on failure: say so if down did not manage.
  local left
  left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$LAB_PREFIX-" || true)
  left+=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep "^$LAB_PREFIX-" || true)
  left+=$(ip route show 2>/dev/null | grep "^unreachable $SUBNET.0/24" || true)
  if [[ -n $left || -e $PGC_LAB_DIR ]]; then
    echo "FAIL: lab down left: ${left:-$PGC_LAB_DIR}" >&2
    [[ $rc -ne 0 ]] || rc=1
  fi
  exit $rc
}
trap cleanup EXIT

lab_up() { # lab_up ARGS... (down first: every test starts from nothing)
  "$LAB" down >/dev/null 2>&1 || true
  "$LAB" up "$@"
  # shellcheck source=/dev/null
  source "$PGC_LAB_DIR/lab.env"
}

# live_procs HOST REGEX: command names on HOST matching REGEX, zombies left out (the host's PID 1,
# runsvdir, reaps orphans only on its next one-second wakeup).
live_procs() {
  "$LAB" ssh "$1" "ps -eo stat=,comm= | awk '\$1 !~ /^Z/ {print \$2}' | grep -E '$2' || true"
}

host_ip() { echo "$SUBNET.$((10 + $1))"; }

# The exact SSH a user (or pgconverge) makes: strict host key checking against the lab's file.
lab_raw_ssh() { # KNOWN_HOSTS IP CMD...
  local kh=$1 ip=$2; shift 2
  ip netns exec "$LAB_PREFIX-client" ssh -F /dev/null -o BatchMode=yes -o ConnectTimeout="${SSH_TIMEOUT:-5}" \
    -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$kh" -o IdentitiesOnly=yes \
    -i "$PGC_LAB_DIR/id_ed25519" "root@$ip" -- "$@"
}

# expect_rc CODE CMD...: runs CMD (output kept in $WORK/out, $WORK/err), fails unless it exits CODE.
expect_rc() {
  local want=$1; shift
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  if [[ $rc -ne $want ]]; then
    echo "stdout: $(cat "$WORK/out")" >&2
    echo "stderr: $(cat "$WORK/err")" >&2
    fail "expected exit $want, got $rc from: $*"
  fi
}

# proc_alive PID STARTTIME: the same process (not a recycled PID), not a zombie
proc_alive() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  set -- "$2" $stat
  [[ $2 != Z && ${21} == "$1" ]]
}

# assert_clean: nothing of the lab is left on this machine.
assert_clean() {
  local left
  left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$LAB_PREFIX-" || true)
  [[ -z $left ]] || fail "network namespaces left: $left"
  ip link show "$LAB_PREFIX-br0" >/dev/null 2>&1 && fail "bridge $LAB_PREFIX-br0 left"
  left=$(ip -o link show | awk -F': ' '{print $2}' | grep "^$LAB_PREFIX-" || true)
  [[ -z $left ]] || fail "links left: $left"
  left=$(ip route show table all 2>/dev/null | grep "$SUBNET\." || true)
  [[ -z $left ]] || fail "routes left: $left"
  left=$(awk -v s="$PGC_LAB_DIR" 'index($5, s) == 1 || index($4, s) == 1' /proc/self/mountinfo)
  [[ -z $left ]] || fail "mounts left under $PGC_LAB_DIR: $left"
  # No mount namespace anywhere still holds a lab host's file systems.
  left=$(grep -l "$LAB_PREFIX-pg-" /proc/[0-9]*/mountinfo 2>/dev/null || true)
  [[ -z $left ]] || fail "lab mounts still held by: $left"
  [[ ! -e $PGC_LAB_DIR ]] || fail "state dir $PGC_LAB_DIR left"
}

# recorded_pids → "PID STARTTIME" lines: the lab's records, plus every process in the hosts' and
# etcd's namespaces (sshd, runsv…) as seen from here.
recorded_pids() {
  local f pid ns
  for f in "$PGC_LAB_DIR"/pids/*; do
    [[ -f $f ]] && cat "$f"
  done
  for ns in $(ip netns list | awk '{print $1}' | grep "^$LAB_PREFIX-"); do
    for pid in $(ip netns pids "$ns"); do
      local stat
      { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || continue
      stat=${stat##*) }
      set -- $stat
      echo "$pid ${20}"
    done
  done
}

assert_dead() { # FILE of "PID STARTTIME"
  local pid st n=0
  while read -r pid st; do
    n=$((n + 1))
    if proc_alive "$pid" "$st"; then fail "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline")) is still alive"; fi
  done <"$1"
  ok "none of the $n lab processes is alive"
}
