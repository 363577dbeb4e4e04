#!/usr/bin/env bash
# check_layering.sh against a small tree made here: the allowed includes of every layer pass,
# then each rule is broken once, by one planted line, and must be reported with its file:line and
# rule name (and nothing else), with exit code 1. So a rule that stops firing fails this test.
#
#   check_layering_test.sh    (exit 0: every case as expected)
set -euo pipefail

check=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/check_layering.sh
tree=$(mktemp -d "${TMPDIR:-/tmp}/pgc-layering.XXXXXX")
trap 'rm -rf "$tree"' EXIT

# file, then its lines: what each layer may include.
add() {
  local file=$1
  shift
  mkdir -p "$tree/$(dirname "$file")"
  printf '%s\n' "$@" >"$tree/$file"
}
add util/strings.cpp '#include "util/strings.hpp"' '#include <string>' '#include <nlohmann/json.hpp>'
add util/strings.hpp '#pragma once' '#include <string_view>'
add util/run_lock.cpp '#include "util/run_lock.hpp"' '#include <fcntl.h>' '#include <sys/file.h>' '#include <unistd.h>'
add manifests/loader.cpp '#include "manifests/loader.hpp"' '#include "util/strings.hpp"' '#include <yaml-cpp/yaml.h>'
add reconciler/plan.cpp '#include "reconciler/plan.hpp"' '#include "manifests/loader.hpp"' \
  '#include "providers/ssh/remote_host.hpp"' '#include "providers/patroni/patroni_client.hpp"' '#include <csignal>'
add reconciler/source.cpp '#include "providers/git/git_source.hpp"' '#include "providers/crypto/crypto.hpp"'
add reconciler/serve.cpp '#include "providers/http/http_server.hpp"' '#include "util/host_identity.hpp"'
add reconciler/cli/command.cpp '#include <CLI/CLI.hpp>' '#include "reconciler/plan.hpp"' '#include "providers/git/git_source.hpp"'
add reconciler/main.cpp '#include "reconciler/cli/cli.hpp"'
add providers/ssh/ssh_host.cpp '#include "providers/ssh/remote_host.hpp"' '#include <libssh/libssh.h>' '#include <pwd.h>' \
  '#include "util/known_hosts.hpp"'
add providers/ssh/remote_host.hpp '#pragma once' '#include <memory>'
add providers/git/git_source.cpp '#include <git2.h>' '#include "providers/crypto/crypto.hpp"'
add providers/patroni/patroni_client.cpp '#include "providers/http/http_client.hpp"' '#include <nlohmann/json.hpp>'
add providers/http/http_client.cpp '#include <boost/beast/http.hpp>'

failures=0
out=$(bash "$check" "$tree" 2>&1) || { echo "FAIL: the allowed includes were refused:"; echo "$out"; failures=1; }

# file | planted line | the rule it breaks
cases='
util/strings.cpp|#include <unistd.h>|no-c-header
util/strings.hpp|#include <sys/stat.h>|no-c-header
util/run_lock.cpp|#include <openssl/evp.h>|no-c-header
util/strings.cpp|#include "reconciler/plan.hpp"|util-depends-on-nothing
util/strings.cpp|#include "manifests/loader.hpp"|util-depends-on-nothing
util/strings.cpp|#include "providers/ssh/remote_host.hpp"|util-depends-on-nothing
manifests/loader.cpp|#include <boost/asio.hpp>|no-c-header
manifests/loader.cpp|#include "reconciler/plan.hpp"|manifests-below-core
manifests/loader.cpp|#include "providers/crypto/crypto.hpp"|manifests-below-core
reconciler/plan.cpp|#include <sys/stat.h>|no-c-header
reconciler/plan.cpp|#include <unistd.h>|no-c-header
reconciler/plan.cpp|#include <libssh/libssh.h>|no-c-header
reconciler/plan.cpp|#include <libpq-fe.h>|no-c-header
reconciler/plan.cpp|#include <git2.h>|no-c-header
reconciler/plan.cpp|#include <openssl/hmac.h>|no-c-header
reconciler/plan.cpp|#include <boost/process.hpp>|no-c-header
reconciler/plan.cpp|#  include "signal.h"|no-c-header
reconciler/cli/command.cpp|#include <poll.h>|no-c-header
reconciler/main.cpp|#include <unistd.h>|no-c-header
reconciler/plan.cpp|#include "reconciler/cli/command.hpp"|core-below-cli
reconciler/plan.cpp|#include "providers/http/http_client.hpp"|provider-implementation
reconciler/serve.cpp|#include "providers/ssh/command_line.hpp"|provider-implementation
reconciler/plan.cpp|#include "providers/git/git_source.hpp"|provider-interface
reconciler/plan.cpp|#include "providers/http/http_server.hpp"|provider-interface
reconciler/serve.cpp|#include "providers/process/process.hpp"|provider-interface
providers/ssh/ssh_host.cpp|#include "manifests/loader.hpp"|providers-know-no-manifests
providers/ssh/ssh_host.cpp|#include "reconciler/plan.hpp"|providers-know-no-manifests
providers/ssh/remote_host.hpp|#include <libssh/libssh.h>|provider-header-clean
providers/ssh/remote_host.hpp|#include <unistd.h>|provider-header-clean
providers/patroni/patroni_client.cpp|#include <boost/asio.hpp>|one-library
providers/git/git_source.cpp|#include <openssl/sha.h>|one-library
providers/ssh/ssh_host.cpp|#include <libpq-fe.h>|one-library
'
while IFS='|' read -r file planted rule; do
  [[ -n $file ]] || continue
  cp "$tree/$file" "$tree/$file.kept"
  echo "$planted" >>"$tree/$file"
  line=$(wc -l <"$tree/$file")
  set +e
  out=$(bash "$check" "$tree" 2>/dev/null)
  rc=$?
  set -e
  mv "$tree/$file.kept" "$tree/$file"
  want="$file:$line: [$rule] "
  if [[ $rc -ne 1 || $(wc -l <<<"$out") -ne 1 || $out != "$want"* ]]; then
    echo "FAIL: $file + '$planted': expected exit 1 and one line starting '$want', got exit $rc:"
    echo "$out"
    failures=$((failures + 1))
  fi
done <<<"$cases"

if ((failures > 0)); then
  echo "check_layering_test: $failures case(s) failed"
  exit 1
fi
echo "check_layering_test: $(grep -c '|' <<<"$cases") planted violations reported, the allowed includes pass"
