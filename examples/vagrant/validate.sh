#!/usr/bin/env bash
# CTest vagrant_validate: the Vagrantfile parses and validates (providers ignored: none can run in
# CI), and the manifests of examples/vagrant validate with pgconverge. Vagrant's state goes to a
# temp dir, never into the source tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
pgc=${PGC_BINARY:?PGC_BINARY must point at the pgconverge binary}
command -v vagrant >/dev/null || { echo "SKIPPED: vagrant is not installed (scripts/install-deps)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && VAGRANT_HOME=$tmp/home VAGRANT_DOTFILE_PATH=$tmp/dot VAGRANT_CHECKPOINT_DISABLE=1 \
  vagrant validate --ignore-provider)
"$pgc" validate -s "$root/examples/vagrant"
# Four Hosts, the seed's four members with syncInstances 2, Patroni on the 3 etcd members pgconverge runs.
"$pgc" render -s "$root/examples/vagrant" -o json >"$tmp/render.json"
jq -e '.clusters[0].members | length == 4' "$tmp/render.json" >/dev/null || { echo "render: not 4 members"; exit 1; }
jq -e '.clusters[0].members[0].patroniConfig.etcd3.hosts == ["192.168.56.11:2379", "192.168.56.12:2379", "192.168.56.13:2379"]' \
  "$tmp/render.json" >/dev/null || { echo "render: Patroni not on the etcd pgconverge runs"; exit 1; }
echo PASS
