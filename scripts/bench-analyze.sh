#!/bin/sh
# Whole-process timing of `devgem analyze PATH --json`, side by side with `nixpacks plan PATH`
# on the same fixture apps in the same run, plus a generated 100,000-file monorepo.
#
# usage: scripts/bench-analyze.sh [DEVGEM_BIN] [NIXPACKS_BIN]
#   DEVGEM_BIN   default target/release/devgem, as shipped: build it with
#                `cargo build --release -p devgem`; a binary named `analyze` (the analyzer's
#                example, `cargo build --release -p devgem-analyzer --example analyze`) is
#                called as `analyze PATH` instead of `devgem analyze PATH --json`.
#   NIXPACKS_BIN default: `nixpacks` on PATH, else /work/tools/bin/nixpacks; skipped if absent.
# Uses hyperfine when installed (apt-get install hyperfine), else a shell loop.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${1:-$TARGET_DIR/release/devgem}
NIXPACKS=${2:-$(command -v nixpacks || echo /work/tools/bin/nixpacks)}
APPS=${APPS:-"flask-basic fastapi-basic django-basic express-basic nextjs-basic vite-react go-gin rust-axum spring-boot-maven node-monorepo"}
RUNS=${RUNS:-50}
FIXTURES="$ROOT/tests/fixtures/apps"

[ -x "$BIN" ] || { echo "no devgem binary at $BIN" >&2; exit 1; }
# Time an installed copy, as `cargo install` or a container's COPY makes one: the file the linker
# wrote in place (through mmap) sits in the page cache in small pages, and takes ~15 more page
# faults per run than the same bytes written by a copy.
INSTALLED=$(mktemp -d)
trap 'rm -rf "$INSTALLED"' EXIT
cp "$BIN" "$INSTALLED/" && BIN="$INSTALLED/$(basename "$BIN")"
case "$(basename "$BIN")" in
  analyze) devgem() { "$BIN" "$1"; } ; DEVGEM_CMD="$BIN" ;;
  *) devgem() { "$BIN" analyze "$1" --json; } ; DEVGEM_CMD="$BIN analyze" ;;
esac
[ -x "$NIXPACKS" ] || NIXPACKS=""

# The generated monorepo: 100 Node services x 1,000 files.
MONO=${MONO:-/tmp/devgem-bench-monorepo}
if [ ! -f "$MONO/.complete" ]; then
  echo "generating $MONO (100,000 files)..."
  rm -rf "$MONO"
  python3 - "$MONO" <<'PY'
import os, sys
root = sys.argv[1]
def w(p, s):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(s)
w(f"{root}/package.json", '{"private":true,"workspaces":["apps/*"]}')
for a in range(100):
    d = f"{root}/apps/app{a:03}"
    w(f"{d}/package.json", '{"name":"app%03d","scripts":{"start":"node index.js"},"dependencies":{"express":"^4.21.0"}}' % a)
    w(f"{d}/index.js", "const express = require('express');\nconst app = express();\napp.get('/', (_q, r) => r.send('ok'));\napp.listen(process.env.PORT || 3000);\n")
    for f in range(998):
        w(f"{d}/src/m{f % 20:02}/f{f:04}.js", "module.exports = () => process.env.FLAG_%d || %d;\n" % (f % 7, f))
PY
  touch "$MONO/.complete"
fi
echo "files in the monorepo: $(find "$MONO" -type f | wc -l)"

ms() { date +%s%N; }
loop() { # loop NAME RUNS CMD...
  name=$1; n=$2; shift 2
  start=$(ms); i=0
  while [ $i -lt "$n" ]; do "$@" >/dev/null 2>&1 || true; i=$((i + 1)); done
  end=$(ms)
  echo "$name: $(( (end - start) / n / 1000 )) us per run (mean of $n, loop)"
}

echo "devgem: $DEVGEM_CMD ($(file -b "$BIN" 2>/dev/null | cut -d, -f1,4 | tr -s ' '))"
echo "nixpacks: ${NIXPACKS:-not installed} $( [ -n "$NIXPACKS" ] && "$NIXPACKS" --version 2>/dev/null)"
# Medians are reported: on a shared machine the mean is at the mercy of other processes.
summary() { # summary JSON: one markdown row per command
  python3 - "$1" <<'PY'
import json, statistics, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = r["times"]
    print("| %s | %.2f ms | %.2f ms | %.2f ms |" % (r["command"], statistics.median(t) * 1e3, r["mean"] * 1e3, (r["user"] + r["system"]) * 1e3))
PY
}
if command -v hyperfine >/dev/null 2>&1; then
  echo "| command | median | mean | user+sys CPU |"
  echo "|---|---|---|---|"
fi
for app in $APPS; do
  dir="$FIXTURES/$app"
  if command -v hyperfine >/dev/null 2>&1; then
    if [ -n "$NIXPACKS" ]; then
      hyperfine -N --warmup 5 --runs "$RUNS" --style none --export-json /tmp/bench-analyze.json \
        -n "devgem $app" "$DEVGEM_CMD $dir" -n "nixpacks $app" "$NIXPACKS plan $dir" >/dev/null 2>&1
    else
      hyperfine -N --warmup 5 --runs "$RUNS" --style none --export-json /tmp/bench-analyze.json \
        -n "devgem $app" "$DEVGEM_CMD $dir" >/dev/null 2>&1
    fi
    summary /tmp/bench-analyze.json
  else
    loop "devgem $app" "$RUNS" devgem "$dir"
    [ -n "$NIXPACKS" ] && loop "nixpacks $app" "$RUNS" "$NIXPACKS" plan "$dir"
  fi
done
if command -v hyperfine >/dev/null 2>&1; then
  hyperfine -N --warmup 1 --runs 10 --style none --export-json /tmp/bench-analyze.json \
    -n "devgem monorepo-100k" "$DEVGEM_CMD $MONO" >/dev/null 2>&1
  summary /tmp/bench-analyze.json
  # The floor: a Rust hello world and /bin/true on this machine.
  hyperfine -N --warmup 5 --runs "$RUNS" --style none --export-json /tmp/bench-analyze.json \
    -n "/bin/true (process floor)" "/bin/true" >/dev/null 2>&1
  summary /tmp/bench-analyze.json
else
  loop "devgem monorepo-100k" 10 devgem "$MONO"
fi
