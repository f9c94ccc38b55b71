#!/bin/sh
# Wall-clock time of `devgem deploy APP` (native builder, process runtime) until it prints the
# URL: once with a fresh DEVGEM_HOME (cold: empty package caches, and uv installed into
# $DEVGEM_HOME/tools when it is not on PATH), then RUNS times reusing it (warm: an unchanged app
# redeployed). Each stage's timing is in the progress events: rerun one deploy with --json.
#
# usage: scripts/bench-redeploy.sh [DEVGEM_BIN] [APP_DIR]
#   DEVGEM_BIN default target/debug/devgem (build it with `cargo build -p devgem`)
#   APP_DIR    default tests/fixtures/apps/flask-basic
#   RUNS       warm runs, default 5; KEEP_HOME=1 keeps the DEVGEM_HOME it made
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/target/debug/devgem}
APP=${2:-$ROOT/tests/fixtures/apps/flask-basic}
RUNS=${RUNS:-5}
[ -x "$BIN" ] || { echo "no devgem binary at $BIN" >&2; exit 1; }

DEVGEM_HOME=$(mktemp -d /tmp/devgem-bench-redeploy.XXXXXX)
export DEVGEM_HOME
# The native path, whatever this machine has: no Docker, no server.
export DEVGEM_BUILDER=native DEVGEM_RUNTIME=process
unset DEVGEM_SERVER || true
# Each deploy is a new deployment with its own app process: stop it before the next run.
stop_last() {
  id=$(grep -o 'deployment d-[0-9a-f]* live' "$DEVGEM_HOME/last-deploy.log" 2>/dev/null | cut -d' ' -f2 || true)
  [ -z "$id" ] || "$BIN" stop "$id" >/dev/null 2>&1 || true
}
cleanup() {
  stop_last
  [ "${KEEP_HOME:-0}" = 1 ] || rm -rf "$DEVGEM_HOME"
}
trap cleanup EXIT

deploy_seconds() {
  start=$(date +%s.%N)
  "$BIN" deploy "$APP" >"$DEVGEM_HOME/last-deploy.log" 2>&1 || {
    echo "deploy failed:" >&2; tail -20 "$DEVGEM_HOME/last-deploy.log" >&2; exit 1; }
  end=$(date +%s.%N)
  stop_last
  echo "$end - $start" | bc
}

echo "app $APP, DEVGEM_HOME $DEVGEM_HOME, uv on PATH: $(command -v uv || echo no)"
echo "cold  $(deploy_seconds) s"
i=1
warm=""
while [ "$i" -le "$RUNS" ]; do
  t=$(deploy_seconds)
  echo "warm  $t s"
  warm="$warm $t"
  i=$((i + 1))
done
# One more warm run with --json: where its time went, stage by stage, from the stored events
# (analyze, build, deploy; each ends with a "status" event).
"$BIN" deploy --json "$APP" >"$DEVGEM_HOME/last-deploy.json" 2>/dev/null || true
sed -n 's/.*"deployment_id":"\([^"]*\)".*/deployment \1 live/p' "$DEVGEM_HOME/last-deploy.json" >"$DEVGEM_HOME/last-deploy.log"
stop_last
python3 - "$DEVGEM_HOME/last-deploy.json" <<'PY'
import json, sys
from datetime import datetime
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"seq"')]
at = lambda e: datetime.fromisoformat(e["time"][:26])
start, last, parts = at(events[0]), at(events[0]), []
names = {"building": "analyze", "deploying": "build", "live": "deploy"}
for e in events:
    if e["kind"] == "status" and names.pop(e.get("status"), None):
        parts.append(f'{ {"building": "analyze", "deploying": "build", "live": "deploy"}[e["status"]] } {(at(e) - last).total_seconds():.2f} s')
        last = at(e)
print("warm stages: " + ", ".join(parts) + f" (events span {(last - start).total_seconds():.2f} s)")
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "$warm" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {printf "warm median %.2f s (min %.2f, max %.2f, %d runs)\n", a[int((NR+1)/2)], a[1], a[NR], NR}'
