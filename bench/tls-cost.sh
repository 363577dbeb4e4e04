#!/usr/bin/env bash
# What TLS and the SSH tunnels cost (issue 18): two pgconverge builds against one 4-host lab
# cluster (examples/lab/strict-sync), in one run, in two phases:
#   1. TLS on (the default): A against OTHER_TLS (e.g. the build before a change);
#   2. the same cluster turned to `ssl: {enabled: false}` by A: A against OTHER_PLAIN (e.g. a build
#      from before the tunnels and TLS, which knows no TLS).
# Each phase: `farm-bench` of a no-change `plan` taking turns (exit 0 checked by farm-bench), then
# MODE_CHANGES × (sync-all, strict-sync) mode changes per binary taking turns. Prints farm-bench's
# table and, per phase and binary, the median of the "pgconverge's own work" figure `apply`
# reports and the range of its patch-dcs step. Compare figures within a phase; across phases the
# machine may have changed (say so when you quote them).
#
#   PGC_LAB_ID=3 bench/tls-cost.sh A OTHER_TLS OTHER_PLAIN [MODE_CHANGES (default 4)]
# Needs root (the lab) and farm-bench. Tears its lab down at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB=$ROOT/tests/lab/lab
[ $# -ge 3 ] || { sed -n '2,15p' "$0"; exit 2; }
A=$1 OTHER_TLS=$2 OTHER_PLAIN=$3 ROUNDS=${4:-4}
for b in "$A" "$OTHER_TLS" "$OTHER_PLAIN"; do [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }; done
command -v farm-bench >/dev/null || { echo "farm-bench not found" >&2; exit 2; }
export PGC_LAB_ID=${PGC_LAB_ID:-3} PGC_LAB_DIR=${PGC_LAB_DIR:-/tmp/pgconverge-lab${PGC_LAB_ID:-3}}

work=$(mktemp -d)
cleanup() { "$LAB" down >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up 4 >/dev/null
# shellcheck disable=SC1091
source "$PGC_LAB_DIR/lab.env"
state=$work/state plain=$work/plain tls=$work/tls
mkdir -p "$state" "$tls"
cp -r "$ROOT"/examples/lab/* "$tls"/
sed -i "s#10.250.0.1/32#$LAB_CLIENT_ADDRESS/32#" "$tls"/*/sgcluster.yaml
cp -r "$tls" "$plain"
for f in "$plain"/*/sgcluster.yaml; do sed -i 's#^  postgres:$#  postgres:\n    ssl:\n      enabled: false#' "$f"; done
grep -q "enabled: false" "$plain/strict-sync/sgcluster.yaml"
common=(--ssh-identity "$LAB_SSH_KEY" --known-hosts "$LAB_KNOWN_HOSTS" --state-dir "$state" -s "$LAB_MANIFESTS")

median() { sort -n | awk '{v[NR]=$1} END {if (NR == 0) print "-"; else if (NR % 2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }

# $1 phase name, $2 manifests, $3 the other binary
phase() {
  local name=$1 manifests=$2 other=$3 bin target i log
  "$LAB" run "$A" apply "${common[@]}" -s "$manifests/strict-sync" --wait-timeout 240 >"$work/setup.log" 2>&1 ||
    { cat "$work/setup.log"; echo "$name: A's apply failed" >&2; exit 1; }
  for bin in "$A" "$other"; do
    "$LAB" run "$bin" plan "${common[@]}" -s "$manifests/strict-sync" >/dev/null ||
      { echo "$name: $bin plan is not a no-op" >&2; exit 1; }
  done
  echo "## $name: A = $A, B = $other"
  farm-bench -n 10 --timeout 300 --vs "$LAB run $other plan ${common[*]} -s $manifests/strict-sync" -- \
    "$LAB" run "$A" plan "${common[@]}" -s "$manifests/strict-sync"
  : >"$work/A.own"; : >"$work/B.own"; : >"$work/A.patch"; : >"$work/B.patch"
  for ((i = 1; i <= ROUNDS; i++)); do
    for bin in A B; do
      local exe=$A
      [ "$bin" = B ] && exe=$other
      for target in sync-all strict-sync; do
        log=$work/$name-$bin-$target-$i.log
        "$LAB" run "$exe" apply "${common[@]}" -s "$manifests/$target" --progress log >"$log" 2>&1 ||
          { cat "$log"; echo "$name: $bin apply $target failed" >&2; exit 1; }
        grep -o '[0-9.]* s pgconverge.s own work' "$log" | awk '{print $1}' >>"$work/$bin.own"
        grep -o 'step="patch-dcs[^=]*=[0-9.]*s' "$log" | grep -o '[0-9.]*s$' | tr -d s >>"$work/$bin.patch"
      done
    done
  done
  for bin in A B; do
    echo "$name $bin: mode change own work median $(median <"$work/$bin.own") s (n=$(wc -l <"$work/$bin.own")); patch-dcs $(sort -n "$work/$bin.patch" | head -1)–$(sort -n "$work/$bin.patch" | tail -1) s"
  done
}

phase "TLS on" "$tls" "$OTHER_TLS"
phase "TLS off" "$plain" "$OTHER_PLAIN"
