#!/usr/bin/env bash
# Issue 11's "Measured": `devgem analyze` and `devgem deploy` (native builder and runtime) on
# every fixture, or the ones named in $FIXTURES (space-separated). Prints one line per fixture
# (analyzed language, analyze time, deploy outcome and time, whether `/` answered with the
# fixture's name) and the totals. A fixture "analyzes right" when it is recognised and plans;
# only Python, Node.js and static fixtures are deployed (this machine has no other toolchain).
#
# usage: scripts/bench-fixtures.sh [DEVGEM_BIN]   (default target/debug/devgem)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/devgem}
APPS="$ROOT/tests/fixtures/apps"
[ -x "$BIN" ] || { echo "no devgem binary at $BIN (cargo build -p devgem)" >&2; exit 1; }
export DEVGEM_HOME=${DEVGEM_HOME:-$(mktemp -d)}
names=${FIXTURES:-$(ls "$APPS")}
now() { date +%s.%N; }
total=0 analyzed=0 deployable=0 live=0
printf '%-32s %-8s %8s  %-8s %8s  %s\n' fixture language analyze deploy seconds answers
for name in $names; do
  dir="$APPS/$name"; [ -d "$dir" ] || continue
  total=$((total + 1))
  t0=$(now); json=$("$BIN" analyze --json "$dir" 2>/dev/null); t1=$(now)
  lang=$(printf '%s' "$json" | python3 -c 'import json,sys
try: print(json.load(sys.stdin).get("language") or "unknown")
except Exception: print("unknown")')
  [ "$lang" != unknown ] && "$BIN" dockerfile "$dir" >/dev/null 2>&1 && analyzed=$((analyzed + 1))
  outcome=- secs=- answers=-
  case $lang in python|node|static)
    deployable=$((deployable + 1))
    envs=$(printf '%s' "$json" | python3 -c 'import json,sys
print(" ".join("--env %s=devgem-test-value" % v["name"] for v in json.load(sys.stdin).get("env_vars", []) if v.get("required")))')
    t2=$(now); out=$("$BIN" deploy $envs "$dir" 2>&1); t3=$(now)
    secs=$(python3 -c "print(f'{$t3-$t2:.1f}')")
    url=$(printf '%s\n' "$out" | grep -oE 'http://127\.0\.0\.1:[0-9]+' | tail -1)
    id=$(printf '%s\n' "$out" | grep -oE '\bd-[0-9a-f]{32}\b' | head -1)
    # Streamlit and Gradio answer with a JavaScript shell: a page is their proof.
    want=$name; case $name in streamlit*|gradio*) want='<' ;; esac
    if [ -n "$url" ] && curl -fsS --max-time 10 "$url/" 2>/dev/null | grep -qF "$want"; then
      outcome=live answers=yes live=$((live + 1))
    else
      outcome=failed answers=no
    fi
    [ -n "$id" ] && "$BIN" stop "$id" >/dev/null 2>&1
  esac
  printf '%-32s %-8s %7.2fs  %-8s %8s  %s\n' "$name" "$lang" "$(python3 -c "print($t1-$t0)")" "$outcome" "$secs" "$answers"
done
echo "analyzed right: $analyzed of $total; deployed natively and answered: $live of $deployable deployable here"
