#!/usr/bin/env bash
# The include rules of ARCHITECTURE.md ("What may depend on what"), checked over the source tree.
# CMake keeps each layer's libraries PRIVATE (cmake/Layering.cmake checks that at configure
# time), but Debian puts every C header in /usr/include, where any file can include it whatever it
# links; and one include root (the project's) serves every layer. So the rules on #include lines
# are checked here, by reading them: no build needed, a second or so.
#
#   check_layering.sh [SOURCE_DIR]    (default: the tree this script is in)
#
# Prints one line per violation, "file:line: [rule] what is wrong (#include ...)", and exits 1
# when there is any; exits 0 with a one-line summary otherwise. Unit tests (tests/) are not
# checked: a test may include what it needs to fake or to observe.
set -euo pipefail

root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$root"
for dir in util manifests reconciler providers; do
  [[ -d $dir ]] || { echo "check_layering: $root/$dir: no such directory" >&2; exit 2; }
done

# util's boundary with the local operating system: the only util files that may include a system
# header, and only these POSIX ones (fsync, O_EXCL, flock, isatty, gethostname have no C++ form).
# util's headers include none, so nothing above util sees them.
util_os_files="
util/atomic_file.cpp
util/known_hosts.cpp
util/run_lock.cpp
util/terminal.cpp
util/host_identity.cpp
"
util_os_headers="sys/file.h sys/stat.h unistd.h fcntl.h"

# The provider headers the core may include, and which core files may ('*': any of them).
# World's interfaces (reconciler/world.hpp) and ownership's etcd client are for every core file;
# the others are the documented exceptions that call a provider directly (the git source, the
# daemon's HTTP server, HMAC and SCRAM). A provider header not listed here is implementation-only
# (ssh_session, http_client, connection_table, command_line, git_credentials, commit_signature): no core file
# includes it.
provider_headers="
providers/ssh/remote_host.hpp              *
providers/patroni/patroni_client.hpp       *
providers/postgres/postgres_probe.hpp      *
providers/etcd/etcd_client.hpp             *
providers/ssh/file_programs.hpp            reconciler/observe.cpp
providers/ssh/tunnels.hpp                  reconciler/real_world.cpp
providers/crypto/crypto.hpp                reconciler/source.cpp reconciler/webhook.cpp reconciler/sidecars.cpp
providers/crypto/x509.hpp                  reconciler/postgres_ssl.cpp reconciler/cluster_ca.hpp reconciler/cluster_ca.cpp reconciler/member_tls.hpp reconciler/member_tls.cpp reconciler/etcd_tls.hpp reconciler/etcd_tls.cpp
providers/git/git_source.hpp               reconciler/source.cpp reconciler/git_fetch.hpp reconciler/git_fetch.cpp reconciler/cli/command.cpp
providers/process/process.hpp              reconciler/git_fetch.cpp
providers/process/commit_verification.hpp  reconciler/source.cpp
providers/http/http_server.hpp             reconciler/serve.cpp reconciler/serve_http.hpp reconciler/serve_http.cpp
"

# The one library each provider wraps: its headers may appear in that provider's .cpp files only.
# providers/http's client does TLS with Asio's ssl stream, which is OpenSSL's libssl underneath:
# it names OpenSSL's verification calls itself (http_client.cpp).
provider_libraries="
ssh       libssh/
postgres  libpq-fe.h
git       git2.h git2/
crypto    openssl/
http      boost/ openssl/
process   boost/
patroni
etcd
"

files=$(find util manifests reconciler providers -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) | LC_ALL=C sort)
[[ -n $files ]] || { echo "check_layering: no source file under $root" >&2; exit 2; }

# shellcheck disable=SC2086
grep -nHE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"][^>"]+[>"]' $files | awk \
  -v util_os_files="$util_os_files" -v util_os_headers="$util_os_headers" \
  -v provider_headers="$provider_headers" -v provider_libraries="$provider_libraries" \
  -v file_count="$(wc -w <<<"$files")" '
function starts(s, p) { return substr(s, 1, length(p)) == p }
function ends(s, p) { return length(s) >= length(p) && substr(s, length(s) - length(p) + 1) == p }
function report(rule, text) {
  print file ":" line ": [" rule "] " text " (#include " shown ")"
  violations++
}
# A header of a C library or of the system, as opposed to the C++ standard library (no dot, no
# slash: <string>, <csignal>) and the C++ libraries the core uses for data (nlohmann-json,
# yaml-cpp, CLI11). Boost counts as a provider library: it is what providers/http and
# providers/process wrap.
function c_header(h) {
  if (starts(h, "nlohmann/") || starts(h, "yaml-cpp/") || starts(h, "CLI/")) return 0
  return index(h, "/") > 0 || ends(h, ".h")
}
# The third-party C (and Boost) libraries the providers wrap; system headers are not among them.
function wrapped_library(h) {
  return starts(h, "libssh/") || h == "libpq-fe.h" || h == "git2.h" || starts(h, "git2/") ||
         starts(h, "openssl/") || starts(h, "boost/")
}
BEGIN {
  n = split(util_os_files, list, /[ \n]+/)
  for (i = 1; i <= n; i++) if (list[i] != "") util_os[list[i]] = 1
  n = split(util_os_headers, list, /[ \n]+/)
  for (i = 1; i <= n; i++) if (list[i] != "") os_header[list[i]] = 1
  n = split(provider_headers, rows, /\n/)
  for (i = 1; i <= n; i++) {
    m = split(rows[i], cols, /[ \t]+/)
    if (m < 2) continue
    listed[cols[1]] = 1
    for (j = 2; j <= m; j++) if (cols[j] != "") may_include[cols[1] SUBSEP cols[j]] = 1
  }
  n = split(provider_libraries, rows, /\n/)
  for (i = 1; i <= n; i++) {
    m = split(rows[i], cols, /[ \t]+/)
    if (m < 1 || cols[1] == "") continue
    for (j = 2; j <= m; j++) if (cols[j] != "") owns[cols[1] SUBSEP cols[j]] = 1
  }
}
{
  # grep -nH: "file:line:text"; the paths hold no colon.
  file = $0; sub(/:.*/, "", file)
  rest = substr($0, length(file) + 2)
  line = rest; sub(/:.*/, "", line)
  text = substr(rest, length(line) + 2)
  sub(/^[ \t]*#[ \t]*include[ \t]*/, "", text)
  quote = substr(text, 1, 1)
  header = substr(text, 2); sub(/[>"].*/, "", header)
  shown = quote header (quote == "<" ? ">" : "\"")
  includes++

  project = quote == "\"" && (starts(header, "util/") || starts(header, "manifests/") ||
                              starts(header, "reconciler/") || starts(header, "providers/") ||
                              starts(header, "tests/"))
  split(file, part, "/")
  layer = part[1]
  core = layer == "reconciler"

  if (!project && c_header(header)) {
    if (layer == "util" && util_os[file] && os_header[header]) {
      # the boundary of util with the operating system (listed above)
    } else if (layer == "util" || layer == "manifests" || core) {
      report("no-c-header", layer (core ? " (the core)" : "") " includes no C library or system header" \
             (layer == "util" ? " outside the OS files listed in tests/layering/check_layering.sh" : "") \
             "; reach it through a provider" (layer == "util" ? "" : " or a util/ function"))
    } else if (layer == "providers") {
      provider = part[2]
      if (ends(file, ".hpp") || ends(file, ".h")) {
        report("provider-header-clean", "a provider header includes no C library or system header; keep it in the .cpp")
      } else if (wrapped_library(header)) {
        prefix = header
        if (index(prefix, "/") > 0) sub(/\/.*/, "/", prefix)
        if (!owns[provider SUBSEP prefix])
          report("one-library", "providers/" provider " wraps its own library only; use the interface of the provider that wraps this one")
      }
    }
  }
  if (!project) next

  if (layer == "util" && !starts(header, "util/") && !starts(header, "tests/"))
    report("util-depends-on-nothing", "util includes nothing of manifests/, reconciler/ or providers/")
  if (layer == "manifests" && (starts(header, "reconciler/") || starts(header, "providers/")))
    report("manifests-below-core", "manifests/ knows nothing of the core nor of providers")
  if (layer == "providers" && (starts(header, "manifests/") || starts(header, "reconciler/")))
    report("providers-know-no-manifests", "providers/ know nothing of manifests nor of the core")
  if (core && !starts(file, "reconciler/cli/") && file != "reconciler/main.cpp" && starts(header, "reconciler/cli/"))
    report("core-below-cli", "the core does not include the command line (reconciler/cli/)")
  if (core && starts(header, "providers/") && !may_include[header SUBSEP "*"] && !may_include[header SUBSEP file]) {
    if (listed[header])
      report("provider-interface", "only the documented files call " header " directly (tests/layering/check_layering.sh); others go through reconciler/world.hpp")
    else
      report("provider-implementation", header " is implementation-only: the core includes the interface headers of a provider, never its internals")
  }
}
END {
  if (violations > 0) {
    print "layering: " violations " violation(s) of ARCHITECTURE.md \"What may depend on what\"" > "/dev/stderr"
    exit 1
  }
  print "layering: " file_count " files, " includes " includes: no violation"
}'
