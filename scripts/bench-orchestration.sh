#!/usr/bin/env bash
# Measures DevGem's orchestration overhead in distributed mode against the local emulators:
# four `devgem serve` processes (chat, analyze, build-trigger, deploy) chained by Pub/Sub push
# subscriptions, state in the Firestore emulator, objects in fake-gcs-server, the native
# builder and local runtime. It deploys the static-site fixture N times, one after another
# (so no deployment queues behind another), and derives from the progress events and the
# functions' request logs:
#
#   hop            = the previous stage's commit (its "... stage is done" event; for analyze,
#                    the deployment's creation) -> the push request reaching the next function
#                    (request log time minus its latency)
#   push->claimed  = push request start -> the stage's "Starting the X stage" event (read the
#                    deployment, conditional write of the claim, append the event)
#   total          = creation -> the "Live at" event
#   overhead       = total - (source fetch + build + app start), the three steps' spans
#   pure overhead  = total - the spans of all seven steps (analysis work excluded too)
#   handler X      = how long the function took to answer the push of stage X
#
#   scripts/bench-orchestration.sh [N] [--concurrent]
#
# DEVGEM_BIN (default: target/release/devgem, built with `cargo build --release -p devgem`).
# --concurrent starts all N at once instead (a load figure, not a latency one).
# Everything it starts (emulators, functions, apps) is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=20
MODE=sequential
for arg in "$@"; do
  case $arg in
  --concurrent) MODE=concurrent ;;
  [0-9]*) N=$arg ;;
  *)
    echo "usage: $0 [N] [--concurrent]" >&2
    exit 2
    ;;
  esac
done
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' || echo "$ROOT/target")
BIN=${DEVGEM_BIN:-$TARGET_DIR/release/devgem}
[[ -x "$BIN" ]] || {
  echo "no $BIN: run cargo build --release -p devgem (or set DEVGEM_BIN)" >&2
  exit 3
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/devgem-bench.XXXXXX")
export DEVGEM_EMULATOR_DIR=$WORK/emulators
export DEVGEM_HOME=$WORK/home
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  # Apps lead their own process groups, recorded under DEVGEM_HOME/apps.
  for rec in "$DEVGEM_HOME"/apps/*/runtime.json; do
    [[ -f "$rec" ]] || continue
    pgid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("pgid",""))' "$rec")
    [[ -n "$pgid" ]] && kill -KILL -- "-$pgid" 2>/dev/null || true
  done
  "$ROOT/scripts/emulators.sh" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "starting the emulators..." >&2
eval "$("$ROOT/scripts/emulators.sh" start)"
export DEVGEM_TOPIC_PREFIX="bench$$-"
export RUST_LOG=info,firestore=error DEVGEM_LOG_FORMAT=json

# Starts one function on a free port; prints its URL.
serve() {
  local fn=$1
  FUNCTION_TARGET=$fn PORT=0 "$BIN" serve >"$WORK/$fn.out" 2>"$WORK/$fn.log" </dev/null &
  PIDS+=($!)
  for _ in $(seq 1 300); do
    if line=$(head -n1 "$WORK/$fn.out" 2>/dev/null) && [[ $line == "DevGem listening on "* ]]; then
      echo "${line#DevGem listening on }"
      return 0
    fi
    sleep 0.05
  done
  echo "$fn did not start; see $WORK/$fn.log" >&2
  cat "$WORK/$fn.log" >&2
  return 1
}

# Not in $(...): the pids must land in this shell's PIDS.
for fn in chat analyze build-trigger deploy; do
  serve "$fn" >"$WORK/$fn.url"
done
CHAT=$(cat "$WORK/chat.url")
"$BIN" bootstrap \
  --endpoint "analyze=$(cat "$WORK/analyze.url")" \
  --endpoint "build-trigger=$(cat "$WORK/build-trigger.url")" \
  --endpoint "deploy=$(cat "$WORK/deploy.url")" \
  --dead-letter "$CHAT" >/dev/null

echo "deploying tests/fixtures/apps/static-site $N times ($MODE)..." >&2
python3 - "$CHAT" "$N" "$MODE" "$ROOT/tests/fixtures/apps/static-site" "$WORK" <<'PY'
import json, sys, time, urllib.request, threading
from datetime import datetime

chat, n, mode, source, work = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

def ts(s):
    # RFC 3339 with up to nanoseconds -> seconds since the epoch (float)
    s = s.replace("Z", "+00:00")
    if "." in s:
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        s = head + "." + rest[:i][:6].ljust(6, "0") + rest[i:]
    return datetime.fromisoformat(s).timestamp()

def call(method, path, body=None):
    req = urllib.request.Request(chat + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)

def events(i):
    req = urllib.request.Request(f"{chat}/api/deployments/{i}/events")
    out, data = [], ""
    with urllib.request.urlopen(req, timeout=120) as r:
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                data += line[6:]
            elif line == "" and data:
                out.append(json.loads(data)); data = ""
    return out

def wait(i):
    deadline = time.time() + 300
    while time.time() < deadline:
        d = call("GET", f"/api/deployments/{i}")
        if d["status"] in ("live", "failed", "aborted"):
            return d
        time.sleep(0.05)
    raise SystemExit(f"{i} not over after 300 s")

ids = []
if mode == "sequential":
    for _ in range(n):
        d = call("POST", "/api/deployments", {"source": source})
        ids.append(d["id"]); wait(d["id"])
else:
    lock = threading.Lock()
    def one():
        d = call("POST", "/api/deployments", {"source": source})
        with lock: ids.append(d["id"])
    ts_ = [threading.Thread(target=one) for _ in range(n)]
    [t.start() for t in ts_]; [t.join() for t in ts_]
    for i in ids: wait(i)

# Push request starts per function, from the JSON request logs. A function logs the request
# after it answered, which can be just after the deployment went live: wait for the lines.
def read_logs():
  pushes, handled, spans = {}, {}, {}
  for fn, topic in (("analyze", "analyze"), ("build-trigger", "build"), ("deploy", "deploy")):
      starts = []
      for line in open(f"{work}/{fn}.log"):
          try:
              e = json.loads(line)
          except ValueError:
              continue
          if e.get("message") == "request" and e.get("path") == f"/pubsub/{topic}":
              starts.append((ts(e["time"]) - e["latency_ms"] / 1000.0, e.get("status")))
              spans.setdefault(topic, []).append((starts[-1][0], ts(e["time"])))
              if e.get("status", 500) < 300:
                  handled.setdefault(f"handler {topic}", []).append(e["latency_ms"] / 1000.0)
      pushes[topic] = sorted(starts)
  return pushes, handled, spans

deadline = time.time() + 10
while True:
    pushes, handled, spans = read_logs()
    if all(len(v) >= len(ids) for v in pushes.values()) or time.time() > deadline:
        break
    time.sleep(0.2)

def pct(v, p):
    v = sorted(v)
    k = (len(v) - 1) * p
    lo = int(k); hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)

rows = {k: [] for k in ("hop analyze", "hop build", "hop deploy", "push->claimed analyze",
                        "push->claimed build", "push->claimed deploy", "total",
                        "fetch", "build", "start", "overhead", "all 7 steps", "pure overhead")}
failed = 0
for i in ids:
    d = call("GET", f"/api/deployments/{i}")
    if d["status"] != "live":
        failed += 1; continue
    ev = events(i)
    created = ts(d["created_at"])
    def first(pred):
        return next(ts(e["time"]) for e in ev if pred(e))
    def span(step):
        s = first(lambda e: e["kind"] == "step_started" and e.get("step") == step)
        c = first(lambda e: e["kind"] == "step_completed" and e.get("step") == step)
        return c - s
    prev = {"analyze": created,
            "build": first(lambda e: e["message"].startswith("The analyze stage is done")),
            "deploy": first(lambda e: e["message"].startswith("The build stage is done"))}
    for stage in ("analyze", "build", "deploy"):
        started = first(lambda e: e["message"] == f"Starting the {stage} stage")
        # Matching pushes to deployments by time only holds when they run one at a time.
        push = next((t for t, _ in pushes[stage] if t >= prev[stage] - 0.002), None)
        if mode == "sequential" and push is not None and push <= started:
            rows[f"hop {stage}"].append(push - prev[stage])
            rows[f"push->claimed {stage}"].append(started - push)
    live = first(lambda e: e.get("status") == "live")
    total = live - created
    f, b, s = span("repository_access"), span("container_build"), span("deploy")
    steps = sum(span(x) for x in ("repository_access", "code_analysis", "dockerfile_generation",
                                  "environment_config", "security_scan", "container_build", "deploy"))
    for k, v in (("total", total), ("fetch", f), ("build", b), ("start", s),
                 ("overhead", total - f - b - s), ("all 7 steps", steps),
                 ("pure overhead", total - steps)):
        rows[k].append(v)
    call("POST", f"/api/deployments/{i}/stop", {})

rows.update(handled)
print(f"{len(ids)} deployments ({mode}), {failed} not live")
print(f"{'ms':<24}{'n':>4}{'median':>10}{'p90':>10}{'min':>10}{'max':>10}")
for k, v in rows.items():
    if v:
        ms = [x * 1000 for x in v]
        print(f"{k:<24}{len(ms):>4}{pct(ms, .5):>10.1f}{pct(ms, .9):>10.1f}{min(ms):>10.1f}{max(ms):>10.1f}")
def most_open(intervals):
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    now = best = 0
    for _, d in edges:
        now += d; best = max(best, now)
    return best
for t, v in spans.items():
    print(f"push {t}: first..last start {max(a for a, _ in v) - min(a for a, _ in v):.2f} s, "
          f"at most {most_open(v)} requests open at once")
redelivered = {t: sum(1 for _, st in v if st and st >= 300) for t, v in pushes.items()}
print(f"push requests per topic: { {t: len(v) for t, v in pushes.items()} }, non-2xx: {redelivered}")
PY
