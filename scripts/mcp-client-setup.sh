#!/usr/bin/env bash
# Installs the MCP clients tests/mcp.rs drives `devgem mcp` and `POST /mcp` with: the official
# Python `mcp` package, 2.x (the current major) and the last 1.x (older protocol versions), each
# in a venv of its own outside the checkout, so every clone on this machine shares them.
# Idempotent: it only installs what is missing. scripts/setup.sh calls it.
set -euo pipefail

root="${DEVGEM_MCP_CLIENT:-${HOME:-/root}/.cache/devgem/mcp-client}"

# install VENV PIN: `mcp` at version PIN into the venv VENV, unless it is already there.
install() {
  local venv="$1" pin="$2"
  if "$venv/bin/python" -c 'import importlib.metadata as m, sys
sys.exit(m.version("mcp") != sys.argv[1])' "$pin" 2>/dev/null; then
    return
  fi
  echo "mcp-client-setup: installing mcp $pin into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "mcp==$pin"
}

install "$root/v2" 2.3.0
install "$root/v1" 1.30.0

echo "mcp-client-setup: ok ($root/v2: mcp $("$root/v2/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))'), $root/v1: mcp $("$root/v1/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))'))"
