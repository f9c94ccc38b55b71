#!/usr/bin/env bash
# First deploy and redeploy (after a one-line change) of fixture apps, on the Docker engine
# (DEVGEM_BUILDER=docker DEVGEM_RUNTIME=docker) and on the native path, with `devgem deploy`
# from a copy of each fixture; and the image sizes. The engine must answer
# (`bash scripts/docker-engine.sh`). Each app's images are removed first, so the first docker
# build is cold (the stand-in base images stay). BENCH_NATIVE=0 leaves the native path out.
# A failed deploy is a row saying so; its output is kept in $BENCH_LOGS (default /tmp).
#   scripts/bench-docker.sh [DEVGEM_BIN] [FIXTURE...]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/debug/devgem}")
shift || true
fixtures=("${@:-flask-basic static-site express-basic}")
read -r -a fixtures <<<"${fixtures[*]}"
docker=/usr/bin/docker
work=$(mktemp -d)
logs=${BENCH_LOGS:-/tmp}
native=${BENCH_NATIVE:-1}
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Deploys folder $2 with the adapters in $1 ("docker" or "native"); prints seconds and the
# id, or "failed -".
deploy() {
  local mode=$1 dir=$2 started out log
  log=$logs/bench-docker-$mode-$(basename "$dir").log
  started=$(now)
  if [ "$mode" = docker ]; then
    DEVGEM_BUILDER=docker DEVGEM_RUNTIME=docker "$bin" deploy "$dir" >"$log" 2>&1 || true
  else
    DEVGEM_BUILDER=native DEVGEM_RUNTIME=process "$bin" deploy "$dir" >"$log" 2>&1 || true
  fi
  out=$(tail -1 "$log")
  case "$out" in
    *" live "*) echo "$(since "$started") $(echo "$out" | awk '{print $2}')" ;;
    *) echo "bench-docker: $mode deploy of $dir failed (see $log)" >&2; echo "failed -" ;;
  esac
}
secs() { case "$1" in failed) echo "failed" ;; *) echo "$1 s" ;; esac; }

# Changes one line of the main file of the fixture's app folder (a monorepo's service, as
# `devgem analyze` picks it: a file outside it is not in the build context).
change_one_line() {
  local dir app_dir
  app_dir=$("$bin" analyze "$1" 2>/dev/null | awk '$1 == "app" && $2 == "folder" { print $3; exit }')
  dir=$1/${app_dir}
  for f in app.py main.py manage.py server.js index.js index.html; do
    if [ -f "$dir/$f" ]; then
      case "$f" in
        *.py) echo "# changed by bench-docker" >>"$dir/$f" ;;
        *.js) echo "// changed by bench-docker" >>"$dir/$f" ;;
        *.html) echo "<!-- changed by bench-docker -->" >>"$dir/$f" ;;
      esac
      return
    fi
  done
  # No main file in the app folder: a one-line change of a new file does as well for the cache.
  echo "changed by bench-docker" >>"$dir/CHANGED.txt"
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "load average at start: $(load)" >&2
echo "| app | docker first deploy | docker redeploy | image size | native first deploy | native redeploy |"
echo "|---|---|---|---|---|---|"
for app in "${fixtures[@]}"; do
  export DEVGEM_HOME=$work/home-$app
  src=$work/$app
  cp -r "tests/fixtures/apps/$app" "$src"
  service=$(basename "$src")
  # Cold: no image (and so no layer cache) of this app on the engine.
  $docker images --format '{{.Repository}}:{{.Tag}}' "devgem.local/devgem/$service" |
    xargs -r $docker rmi -f >/dev/null
  $docker image prune -f >/dev/null
  read -r d1 id1 < <(deploy docker "$src")
  d2=failed size=- id2=-
  if [ "$d1" != failed ]; then
    change_one_line "$src"
    read -r d2 id2 < <(deploy docker "$src")
    size=$($docker image inspect --format '{{.Size}}' "devgem.local/devgem/$service:$id1" |
      awk '{ printf "%d MB", $1 / 1000000 }')
    for id in "$id1" "$id2"; do
      [ "$id" = - ] || DEVGEM_BUILDER=docker DEVGEM_RUNTIME=docker "$bin" stop "$id" >/dev/null 2>&1 || true
    done
  fi
  n1=- n2=-
  if [ "$native" = 1 ]; then
    rm -rf "$src" && cp -r "tests/fixtures/apps/$app" "$src"
    read -r n1 id3 < <(deploy native "$src")
    if [ "$n1" != failed ]; then
      change_one_line "$src"
      read -r n2 id4 < <(deploy native "$src")
      "$bin" stop "$id3" >/dev/null 2>&1 || true
      [ "$n2" = failed ] || "$bin" stop "$id4" >/dev/null 2>&1 || true
    fi
    n1=$(secs "$n1") n2=$(secs "$n2")
  fi
  echo "| $app | $(secs "$d1") | $(secs "$d2") | $size | $n1 | $n2 |"
done
echo "load average at end: $(load)" >&2
