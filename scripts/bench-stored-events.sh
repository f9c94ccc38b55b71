#!/bin/bash
# Counts the events (and store writes) one deployment stores: deploys APP_DIR with BINARY into a
# fresh DEVGEM_HOME, counts the events by kind in its devgem.db, then stops the app.
# usage: scripts/bench-stored-events.sh BINARY APP_DIR [LABEL]
set -u
bin=$1; app=$2; label=${3:-$(basename "$app")}
home=$(mktemp -d)
start=$(date +%s)
DEVGEM_HOME=$home RUST_LOG=warn "$bin" deploy "$app" > "$home/out.txt" 2> "$home/err.txt"
rc=$?
secs=$(( $(date +%s) - start ))
id=$(tail -1 "$home/out.txt" | awk '{print $2}')
python3 - "$home/devgem.db" "$label" "$rc" "$secs" <<'PY'
import collections, json, sqlite3, sys
db, label, rc, secs = sys.argv[1:]
c = sqlite3.connect(db)
kinds = collections.Counter()
lines = 0
for (doc,) in c.execute("SELECT doc FROM events"):
    e = json.loads(doc)
    kinds[e["kind"]] += 1
    if e["kind"] == "log":
        lines += e["message"].count("\n") + 1
# The version counts the deployment document's writes: 1 at creation, +1 per update.
version, status = c.execute("SELECT version, json_extract(doc, '$.status') FROM deployments").fetchone()
events = sum(kinds.values())
print(f"{label}: exit={rc} status={status} {secs}s events={events} deployment_writes={version} "
      f"store_writes={events + version} output_lines={lines} by_kind={dict(kinds)}")
PY
DEVGEM_HOME=$home "$bin" stop "$id" > /dev/null 2>&1
rm -rf "$home"
