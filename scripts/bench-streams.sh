#!/bin/bash
# Many progress streams on one `devgem serve`: starts the server (release build, native builder,
# process runtime, a fresh DEVGEM_HOME), deploys DEPLOYMENTS copies of a Node app whose build
# waits for a go file and then prints a line every LINE_MS ms for BUILD_SECS s, opens STREAMS
# SSE streams spread over those deployments, releases the builds, and prints the delivery
# latency of every stored event to every stream (p50/p99/max) and the server's resident memory.
# Not in CI: it needs ~20,000 file descriptors and a few minutes.
# MODE=sse (default) streams GET /api/deployments/{id}/events; MODE=ws starts each deployment
# in a chat session (POST /chat) and watches the sessions over WS /ws/chat?session_id=.
# usage: scripts/bench-streams.sh [STREAMS] [DEPLOYMENTS]
# env: MODE (sse | ws), BUILD_SECS (default 20), LINE_MS (default 50), PROFILE (default release)
set -eu
cd "$(dirname "$0")/.."
mode=${MODE:-sse}
streams=${1:-10000}
deployments=${2:-10}
build_secs=${BUILD_SECS:-20}
line_ms=${LINE_MS:-50}

# Both the server and the client hold one descriptor per stream.
ulimit -Sn "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((streams + 512)) ]; then
    echo "ulimit -n is $(ulimit -n); $streams streams need $((streams + 512))" >&2
    exit 1
fi

# PROFILE=debug measures a debug build (slower; for trying the script out).
profile=${PROFILE:-release}
dir=$([ "$profile" = debug ] && echo debug || echo "$profile")
# NO_BUILD=1 measures the binaries already built (to compare runs of one build).
[ -n "${NO_BUILD:-}" ] || cargo build --profile "$([ "$profile" = debug ] && echo dev || echo "$profile")" -q -p devgem --bin devgem --example bench-streams
bin=${DEVGEM_BIN:-target/$dir/devgem}
client=target/$dir/examples/bench-streams

work=$(mktemp -d)
home=$work/home
go_file=$work/go
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    # The apps this run started (each leads its own process group).
    for record in "$home"/apps/*/runtime.json; do
        [ -f "$record" ] || continue
        pgid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("pgid",""))' "$record")
        [ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT

app=$work/stream-bench
mkdir -p "$app"
cat > "$app/package.json" <<'EOF'
{"name":"stream-bench","version":"1.0.0","private":true,"scripts":{"build":"node build.js","start":"node server.js"}}
EOF
echo 'require("http").createServer((q, s) => s.end("ok")).listen(process.env.PORT || 8080);' > "$app/server.js"
cat > "$app/build.js" <<EOF
// Waits for the benchmark to open its streams, then prints a line every ${line_ms} ms.
const fs = require("fs");
const wait = setInterval(() => {
  if (!fs.existsSync("$go_file")) return;
  clearInterval(wait);
  const end = Date.now() + ${build_secs} * 1000;
  let n = 0;
  const tick = setInterval(() => {
    console.log("build line " + n++);
    if (Date.now() >= end) { clearInterval(tick); }
  }, ${line_ms});
}, 20);
EOF

mkdir -p "$home"
# One user opens every stream: the per-user rate limit would refuse most of them.
DEVGEM_HOME=$home PORT=0 DEVGEM_ALLOW_LOCAL_SOURCES=1 RUST_LOG=warn DEVGEM_RATE_LIMIT_PER_MINUTE=0 \
    "$bin" serve > "$work/server.out" 2> "$work/server.log" &
server_pid=$!
for _ in $(seq 100); do
    grep -q '^DevGem listening on ' "$work/server.out" && break
    sleep 0.1
done
url=$(sed -n 's/^DevGem listening on //p' "$work/server.out")
[ -n "$url" ] || { cat "$work/server.log" >&2; exit 1; }
addr=${url#http://}
echo "devgem serve (pid $server_pid) at $url"

# One folder per deployment, so each is its own service.
ids=()
deployment_ids=()
for n in $(seq "$deployments"); do
    cp -r "$app" "$app-$n"
    if [ "$mode" = ws ]; then
        answer=$(curl -sf -X POST "$url/chat" -H 'content-type: application/json' \
            -d "{\"message\": \"deploy $app-$n\"}")
        ids+=("$(echo "$answer" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')")
        deployment_ids+=("$(echo "$answer" | python3 -c 'import json,sys; print(json.load(sys.stdin)["deployment_id"])')")
    else
        id=$(curl -sf -X POST "$url/api/deployments" -H 'content-type: application/json' \
            -d "{\"source\": \"$app-$n\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
        ids+=("$id")
        deployment_ids+=("$id")
    fi
done
echo "deployments: ${deployment_ids[*]}"

"$client" "$mode" "$addr" "$server_pid" "$go_file" "$streams" "${ids[@]}"

for id in "${deployment_ids[@]}"; do
    status=$(curl -sf "$url/api/deployments/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    echo "deployment $id: $status"
done
