#!/usr/bin/env bash
# Makes a Docker engine with Compose v2 available on a Debian bookworm machine with no container
# registry, and builds local stand-ins for the images the stack names but cannot pull here:
#   python:3.11-slim-bookworm   (debootstrap'd bookworm with python3, venv, headers)
#   prom/prometheus:v2.53.3     (Debian trixie's prometheus binary)
#   prom/alertmanager:v0.28.1   (Debian trixie's alertmanager + amtool)
#   victoriametrics/victoria-metrics:v1.112.0, victoriametrics/vmbackup:v1.112.0,
#   victoriametrics/vmrestore:v1.112.0   (Debian trixie's victoria-metrics package)
# Docker uses a local image of the exact name without pulling, so docker-compose.yml and the
# Dockerfiles stay the ones operators run with the official images. Grafana has no stand-in: no
# package reachable here ships its server. Idempotent; seconds when already done. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[provision-docker] %s\n' "$*" >&2; }
CACHE=${OFA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ofa-ve-tools}
PY_TAG=python:3.11-slim-bookworm
PROM_TAG=prom/prometheus:v2.53.3
AM_TAG=prom/alertmanager:v0.28.1
VM_VERSION=v1.112.0
VM_TAG=victoriametrics/victoria-metrics:$VM_VERSION
VMBACKUP_TAG=victoriametrics/vmbackup:$VM_VERSION
VMRESTORE_TAG=victoriametrics/vmrestore:$VM_VERSION

MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)

# 1. engine (Debian's docker.io 20.10; the 28.x client on the image talks to it fine)
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing docker.io and debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  (setsid nohup dockerd >/var/log/dockerd.log 2>&1 &)
  for _ in $(seq 90); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/dockerd.log"; tail -20 /var/log/dockerd.log >&2; exit 1; }
fi
log "engine $(docker info --format '{{.ServerVersion}}')"

# 2. Compose v2 plugin (fetched with the other trixie tools)
scripts/provision-tools.sh
if ! docker compose version >/dev/null 2>&1; then
  mkdir -p "$HOME/.docker/cli-plugins"
  cp .tools/docker-cli-plugins/docker-compose "$HOME/.docker/cli-plugins/docker-compose"
fi
log "$(docker compose version)"

# 3. python base stand-in, trusting the machine's CA bundle (registries are reached through a proxy)
if ! docker image inspect "$PY_TAG" >/dev/null 2>&1; then
  ROOT=$CACHE/rootfs-bookworm
  if [ ! -x "$ROOT/usr/bin/python3" ] || [ ! -f "$ROOT/usr/include/python3.11/Python.h" ]; then
    log "debootstrap bookworm (about a minute)"
    rm -rf "$ROOT"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-dev,ca-certificates \
      bookworm "$ROOT" "$MIRROR" >/dev/null
  fi
  cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
  ln -sf python3 "$ROOT/usr/bin/python"
  rm -rf "$ROOT/var/cache/apt/archives/"*.deb
  tar -C "$ROOT" -c . | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$PY_TAG" >/dev/null
fi
log "$PY_TAG: $(docker run --rm "$PY_TAG" python --version)"

# 4. Prometheus, Alertmanager and VictoriaMetrics stand-ins matching the official images' layout. Each
# carries a label with the hash of its recipe, so changing the recipe below rebuilds it and an unchanged
# one is skipped.
build_standin() { # tag "binaries from .tools/bin" dockerfile-lines...
  local tag=$1 binaries=$2; shift 2
  local recipe; recipe=$(printf '%s\n' "FROM $PY_TAG" "$@" | sha256sum | cut -c1-16)
  if [ "$(docker image inspect -f '{{index .Config.Labels "ofa-ve.standin"}}' "$tag" 2>/dev/null)" = "$recipe" ]; then
    return 0
  fi
  log "building stand-in $tag"
  local ctx; ctx=$(mktemp -d)
  for b in $binaries; do cp ".tools/bin/$b" "$ctx/"; done
  if [[ " $binaries " == *" alertmanager "* ]]; then
    # Debian's Alertmanager reads its default notification templates from /usr/share (the official
    # binary embeds them): without them it refuses every config.
    local am_deb; am_deb=$(ls "$CACHE"/debs/prometheus-alertmanager_*.deb 2>/dev/null | head -1)
    [ -n "$am_deb" ] || { log "no prometheus-alertmanager .deb in $CACHE/debs: rm -rf .tools and re-run"; exit 1; }
    dpkg -x "$am_deb" "$ctx/am"
    mv "$ctx/am/usr/share/prometheus/alertmanager" "$ctx/alertmanager-share"
    rm -rf "$ctx/am"
  fi
  printf '%s\n' "FROM $PY_TAG" "$@" "LABEL ofa-ve.standin=$recipe" >"$ctx/Dockerfile"
  docker build -q -t "$tag" "$ctx" >/dev/null
  rm -rf "$ctx"
}
# busybox gives the wget the official images' healthchecks use
BUSYBOX='RUN apt-get update -qq && apt-get install -y -qq busybox >/dev/null && ln -s /bin/busybox /bin/wget && rm -rf /var/lib/apt/lists/*'
build_standin "$PROM_TAG" "prometheus promtool" "$BUSYBOX" \
  'COPY prometheus promtool /bin/' \
  'RUN mkdir -p /prometheus /etc/prometheus && chown nobody /prometheus' \
  'USER nobody' 'WORKDIR /prometheus' 'EXPOSE 9090' 'VOLUME ["/prometheus"]' \
  'ENTRYPOINT ["/bin/prometheus"]' \
  'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
build_standin "$AM_TAG" "alertmanager amtool" "$BUSYBOX" \
  'COPY alertmanager amtool /bin/' \
  'COPY alertmanager-share /usr/share/prometheus/alertmanager' \
  'RUN mkdir -p /alertmanager /etc/alertmanager && chown nobody /alertmanager' \
  'USER nobody' 'WORKDIR /alertmanager' 'EXPOSE 9093' 'VOLUME ["/alertmanager"]' \
  'ENTRYPOINT ["/bin/alertmanager"]' \
  'CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]'
# The official VictoriaMetrics images are alpine (busybox wget for healthchecks) with one binary at
# /<name>-prod as the entrypoint, running as root; vmbackup and vmrestore come as images of their own
# (the metrics-snapshot image copies them out of those). Debian's binaries link libzstd.so.1, which the
# bookworm base has.
build_standin "$VM_TAG" "victoria-metrics" "$BUSYBOX" \
  'COPY victoria-metrics /victoria-metrics-prod' \
  'EXPOSE 8428' 'ENTRYPOINT ["/victoria-metrics-prod"]'
build_standin "$VMBACKUP_TAG" "vmbackup" 'COPY vmbackup /vmbackup-prod' 'ENTRYPOINT ["/vmbackup-prod"]'
build_standin "$VMRESTORE_TAG" "vmrestore" 'COPY vmrestore /vmrestore-prod' 'ENTRYPOINT ["/vmrestore-prod"]'
log "$PROM_TAG: $(docker run --rm "$PROM_TAG" --version 2>&1 | head -1)"
log "$AM_TAG: $(docker run --rm "$AM_TAG" --version 2>&1 | head -1)"
for tag in "$VM_TAG" "$VMBACKUP_TAG" "$VMRESTORE_TAG"; do
  docker run --rm "$tag" -help >/dev/null 2>&1 || { log "$tag does not run"; exit 1; }
  log "$tag: runs (Debian's build reports no version; it is trixie's victoria-metrics ${VM_VERSION#v})"
done
