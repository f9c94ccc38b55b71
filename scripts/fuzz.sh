#!/usr/bin/env bash
# Runs one cargo-fuzz target for a while: scripts/fuzz.sh TARGET SECONDS
# TARGET is webhook, upload or api_body (see fuzz/README.md). Needs nightly and cargo-fuzz
# (cargo install cargo-fuzz --locked). The corpus grows in fuzz/corpus/TARGET; a crash is
# written to fuzz/artifacts/TARGET and the run exits non-zero.
set -euo pipefail
target="${1:?usage: scripts/fuzz.sh TARGET SECONDS (webhook, upload, api_body)}"
seconds="${2:-60}"
cd "$(dirname "$0")/.."
mkdir -p "fuzz/corpus/$target"
# -O (release, no debug assertions) is what `cargo fuzz build -O` made: one build for every run.
exec cargo +nightly fuzz run -O "$target" "fuzz/corpus/$target" -- \
  -max_total_time="$seconds" -max_len=65536 -print_final_stats=1
