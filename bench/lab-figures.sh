#!/usr/bin/env bash
# Figures quoted in the closing notes and docs/performance.md, measured on the local lab:
#   lab up 3 / up 8 time, memory per bare host (PSS), no-change `plan` on a converged 3-member
#   cluster, and a mode change from `apply` start to verified convergence, split into the wait for
#   Patroni and pgconverge's own work (the process's whole time minus that wait).
# Prints a table with median and min–max over RUNS repetitions (default 5). Needs root.
#   bench/lab-figures.sh [RUNS] [--convergence]     --convergence: only the cluster figures
#                                                   (no lab up / PSS repetitions)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-5}
PARTS=${2:-all}
[[ $PARTS == all || $PARTS == --convergence ]] || { echo "usage: bench/lab-figures.sh [RUNS] [--convergence]" >&2; exit 2; }
LAB=$ROOT/tests/lab/lab
PGC=${PGC_BINARY:-$ROOT/build/pgconverge}
[[ $(id -u) -eq 0 ]] || { echo "bench: needs root (the lab)" >&2; exit 77; }
[[ -x $PGC ]] || { echo "bench: build pgconverge first ($PGC)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/pgc-bench.XXXXXX)
trap '"$LAB" down >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; }
# stats "name" unit v1 v2 …: median and range
stats() {
  local name=$1 unit=$2; shift 2
  python3 - "$name" "$unit" "$@" <<'PY'
import statistics, sys
name, unit, values = sys.argv[1], sys.argv[2], [float(v) for v in sys.argv[3:]]
print(f"| {name} | {statistics.median(values):.2f} {unit} | {min(values):.2f}–{max(values):.2f} | {len(values)} |")
PY
}

echo "| figure | median | range | runs |"
echo "|---|---|---|---|"
if [[ $PARTS == all ]]; then
for n in 3 8; do
  times=()
  for _ in $(seq "$RUNS"); do
    "$LAB" down >/dev/null 2>&1 || true
    t0=$(now); "$LAB" up "$n" >/dev/null; t1=$(now)
    times+=("$(elapsed "$t0" "$t1")")
  done
  stats "lab up $n (bare hosts + etcd)" s "${times[@]}"
done
# Memory of one bare host: PSS of every process in its PID namespace (runsvdir, runsv, sshd).
pss=()
for i in $(seq 8); do
  pss+=("$("$LAB" exec "pg-$i" sh -c 'for p in /proc/[0-9]*; do awk "/^Pss:/{s+=\$2} END{print s+0}" $p/smaps_rollup 2>/dev/null; done' |
    awk '{s+=$1} END{print s/1024}')")
done
stats "memory per bare host (PSS)" MiB "${pss[@]}"
fi

"$LAB" down >/dev/null 2>&1 || true
"$LAB" up 3 >/dev/null
# shellcheck source=/dev/null
source "${PGC_LAB_DIR:-/tmp/pgconverge-lab$([[ ${PGC_LAB_ID:-0} == 0 ]] || echo "$PGC_LAB_ID")}/lab.env"
mkdir -p "$WORK/c"
cp "$ROOT"/examples/lab/strict-sync/*.yaml "$WORK/c/"
pgc() { "$LAB" run "$PGC" "$@" -s "$LAB_MANIFESTS" -s "$WORK/c" --ssh-identity "$LAB_SSH_KEY" \
  --known-hosts "$LAB_KNOWN_HOSTS" --state-dir "$WORK/state"; }
# The lab variant of the strict-sync seed wants 4 hosts; use 3 instances here.
sed -i 's/instances: 4/instances: 3/; s/syncInstances: 2/syncInstances: 1/' "$WORK/c/sgcluster.yaml"
# The example admits lab 0's client address; another lab's (PGC_LAB_ID) is 10.250.ID.1.
sed -i "s|10.250.0.1/32|10.250.${PGC_LAB_ID:-0}.1/32|" "$WORK/c/sgcluster.yaml"
t0=$(now); pgc apply --progress quiet >/dev/null 2>&1; t1=$(now)
stats "bootstrap 3 members (apply, nothing → converged)" s "$(elapsed "$t0" "$t1")"
plans=()
for _ in $(seq "$RUNS"); do
  t0=$(now); pgc plan >/dev/null 2>&1 || true; t1=$(now)
  plans+=("$(elapsed "$t0" "$t1")")
done
stats "no-change plan, 3 hosts" s "${plans[@]}"
changes=() waited=() own=()
modes=(sync strict-sync-all async strict-sync)
for i in $(seq "$RUNS"); do
  m=${modes[$((i % ${#modes[@]}))]}
  sed -i "s/mode: .*/mode: $m/" "$WORK/c/sgcluster.yaml"
  t0=$(now); pgc apply --progress quiet >/dev/null 2>&1 || echo "apply to $m did not converge" >&2; t1=$(now)
  wall=$(elapsed "$t0" "$t1")
  # The run's own account: how long it waited for Patroni to act (pauses between observations
  # and the observations that found the change not there yet).
  w=$("$LAB" run "$PGC" history -n 1 -o json --state-dir "$WORK/state" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["runs"][-1]["waitedSeconds"])')
  changes+=("$wall") waited+=("$w") own+=("$(awk -v a="$wall" -v b="$w" 'BEGIN{printf "%.0f", (a - b) * 1000}')")
done
stats "mode change, apply start → converged (loop_wait 1)" s "${changes[@]}"
stats "… of it waiting for Patroni to act" s "${waited[@]}"
stats "… pgconverge's own work (process start to exit, minus the wait), 3 hosts" ms "${own[@]}"
# Every run above goes through `lab run` (nsenter into the lab's client namespace): measured here
# on its own, in the same run, and taken off the median of the own work.
wrapper=()
for _ in $(seq "$RUNS"); do
  t0=$(now); "$LAB" run true; t1=$(now)
  wrapper+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", (b - a) * 1000}')")
done
stats "\`lab run true\` (the namespace wrapper of every run above)" ms "${wrapper[@]}"
python3 - "${own[@]}" -- "${wrapper[@]}" <<'PY'
import statistics, sys
args = sys.argv[1:]
cut = args.index("--")
own, wrap = [float(v) for v in args[:cut]], [float(v) for v in args[cut + 1:]]
print(f"| … pgconverge's own work net of the wrapper (medians) | {statistics.median(own) - statistics.median(wrap):.0f} ms | – | {len(own)} |")
PY
