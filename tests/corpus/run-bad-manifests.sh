#!/usr/bin/env bash
# Runs `pgconverge validate -s <case>` on every case of the bad-manifests corpus and compares its
# stderr with <case>.expected; every case must exit 1 and print nothing on stdout.
#   run-bad-manifests.sh PGCONVERGE CORPUS_DIR [CASE...]
# A case is <case>.yaml or a directory <case>/ next to <case>.expected. Cases too big to check in
# are generated here (see generate()). PGC_UPDATE_EXPECTED=1 rewrites the .expected files from the
# current output (review the diff before committing it).
set -uo pipefail
binary=${1:?usage: run-bad-manifests.sh PGCONVERGE CORPUS_DIR [CASE...]}
binary=$(realpath -e "$binary") || { echo "no pgconverge binary at $1" >&2; exit 2; }
corpus=$(cd "${2:?usage: run-bad-manifests.sh PGCONVERGE CORPUS_DIR [CASE...]}" && pwd)
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Cases generated at run time: 5 MiB of keys (over the 4 MiB file limit), 10 000 nested lists,
# 2000 nested mappings and an alias bomb of one long string.
generate() {
  python3 - "$1" <<'PY'
import sys, os
d = sys.argv[1]
with open(os.path.join(d, "huge-document.yaml"), "w") as f:
    f.write("apiVersion: pgconverge.io/v1\nkind: Host\nmetadata:\n  name: pg-1\nspec:\n  address: 10.0.0.11\n  junk:\n")
    i = 0
    while f.tell() < 5 * 1024 * 1024:
        f.write("    key%07d: value\n" % i)
        i += 1
with open(os.path.join(d, "deep-nesting-flow.yaml"), "w") as f:
    f.write("[" * 10000 + "]" * 10000 + "\n")
with open(os.path.join(d, "alias-string-bomb.yaml"), "w") as f:
    # One 3 MB string, 100 aliases of it, 100 aliases of those: 30 GB of text once expanded.
    f.write('a: &a "' + "x" * 3000000 + '"\nb: &b [' + ",".join(["*a"] * 100) + "]\nc: [" + ",".join(["*b"] * 100) + "]\n")
with open(os.path.join(d, "deep-nesting-block.yaml"), "w") as f:
    f.write("".join(" " * i + "k%d:\n" % i for i in range(2000)))
PY
}

cp -r "$corpus"/. "$work"/
# git keeps no permission bits but the execute bit: the private keys of the certificate cases are
# made 0600, as a user keeps them (a key readable by everyone is an error of its own).
find "$work" -name '*.key' -exec chmod 0600 {} +
generate "$work"
cd "$work" || exit 2

if (($#)); then cases=("$@"); else
  cases=()
  for expected in *.expected; do cases+=("${expected%.expected}"); done
fi

failed=0
for name in "${cases[@]}"; do
  if [[ -d $name ]]; then input=$name; elif [[ -f $name.yaml ]]; then input=$name.yaml; else
    echo "FAIL $name: no input $name.yaml or $name/"; failed=$((failed + 1)); continue
  fi
  "$binary" validate -s "$input" >"$name.stdout" 2>"$name.stderr"
  code=$?
  if [[ ${PGC_UPDATE_EXPECTED:-} == 1 ]]; then cp "$name.stderr" "$corpus/$name.expected"; fi
  problems=()
  ((code == 1)) || problems+=("exit code $code, expected 1")
  [[ -s $name.stdout ]] && problems+=("stdout not empty: $(head -c 200 "$name.stdout")")
  if ! diff -u --label "$name.expected" --label "stderr of pgconverge validate -s $input" \
      "$corpus/$name.expected" "$name.stderr" >"$name.diff"; then
    problems+=("stderr differs from $name.expected")
  fi
  if ((${#problems[@]})); then
    failed=$((failed + 1))
    echo "FAIL $name: $(IFS=';'; echo "${problems[*]}")"
    [[ -s $name.diff ]] && cat "$name.diff"
  else
    echo "ok   $name"
  fi
done
echo "${#cases[@]} cases, $failed failed"
((failed == 0))
