#!/usr/bin/env bash
# Deploys every Python, Node.js and static fixture natively and checks each answers (CI deploys
# every fourth one); about 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVGEM_FIXTURES_ALL=1 cargo test -p devgem --test fixtures -- --nocapture
