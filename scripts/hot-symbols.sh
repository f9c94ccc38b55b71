#!/bin/sh
# Regenerates functions/devgem/hot-symbols.txt: the functions `devgem analyze` and
# `devgem dockerfile` run, as the linker names them. functions/devgem/build.rs hands the file to the
# linker (--symbol-ordering-file), which lays those functions out next to each other, so a
# one-shot command faults in ~20 pages of code instead of ~60 spread over 18 MB
# (BENCHMARKS.md, "Analyzer"). A stale list costs speed, never correctness: symbols it names
# that no longer exist are ignored. Run it after upgrading the toolchain or dependencies.
#
# usage: scripts/hot-symbols.sh        (needs valgrind; builds the binary first)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
cargo build-devgem
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/devgem
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for app in tests/fixtures/apps/*/; do
  name=$(basename "$app")
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$OUT/$name.analyze" \
    "$BIN" analyze "$app" --json >/dev/null 2>&1 || true
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$OUT/$name.dockerfile" \
    "$BIN" dockerfile "$app" >/dev/null 2>&1 || true
done
# callgrind names a function once as "fn=(N) NAME", then only by "(N)".
cat "$OUT"/* | sed -n -E 's/^c?fn=\([0-9]+\) (.+)$/\1/p' \
  | grep -v -E "^\(|^0x|'[0-9]+$| " | LC_ALL=C sort -u > functions/devgem/hot-symbols.txt
echo "$(wc -l < functions/devgem/hot-symbols.txt) symbols in functions/devgem/hot-symbols.txt"
