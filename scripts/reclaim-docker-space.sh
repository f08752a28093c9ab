#!/usr/bin/env bash
# Makes room for a test run on a machine that keeps Docker's leftovers between runs (a CI host, a
# developer's box): while less than NEED_GB (default 45: the dev venv ~9 GB, the image wheels ~4 GB, the
# ofa-ve image build ~25 GB, the rest) is free on the filesystems of Docker's data root and of this
# checkout, it removes, in this order and only as far as needed, what every build re-creates:
#   1. dangling images (an ofa-ve image replaced by a rebuild is ~9 GB),
#   2. the build cache,
#   3. the images this repository builds (ofa-ve-observability/*; provision-docker.sh's stand-ins and the
#      base images stay, they cannot be pulled here).
# Running containers and volumes are never touched. When it is still short after all of that it says so
# (NEED_GB is an estimate: the run may still fit) and exits 0; scripts/fetch-image-wheels.sh refuses
# for itself, before downloading, when the torch wheels cannot fit. Exit 1: no Docker engine answers;
# exit 2: NEED_GB is not a whole number.
# Usage: scripts/reclaim-docker-space.sh [NEED_GB]
set -euo pipefail
cd "$(dirname "$0")/.."
NEED_GB=${1:-45}
log() { printf '[reclaim-docker-space] %s\n' "$*" >&2; }
[[ "$NEED_GB" =~ ^[0-9]+$ ]] || { log "NEED_GB must be a whole number of GB, got '$NEED_GB'"; exit 2; }

root=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null) || { log "no Docker engine answers"; exit 1; }
free_gb() {  # the smaller of the two filesystems' free space, in whole GB
  df -P -BG "$root" . | awk 'NR>1{sub("G","",$4); if (min=="" || $4+0<min) min=$4+0} END{print min}'
}
enough() { [ "$(free_gb)" -ge "$NEED_GB" ]; }

if enough; then log "$(free_gb) GB free, ${NEED_GB} GB needed: nothing to remove"; exit 0; fi
log "$(free_gb) GB free, ${NEED_GB} GB needed; Docker holds:"
docker system df >&2 || true
docker image prune -f >/dev/null
log "after removing dangling images: $(free_gb) GB free"
if ! enough; then
  # stderr: the engine's deprecation notice about the legacy builder, not an error.
  docker builder prune -af >/dev/null 2>&1 || log "docker builder prune failed"
  log "after removing the build cache: $(free_gb) GB free"
fi
if ! enough; then
  mapfile -t own < <(docker images --format '{{.Repository}}:{{.Tag}}' 'ofa-ve-observability/*')
  if [ "${#own[@]}" -gt 0 ]; then
    # An image a container still uses stays (rmi refuses); the others go.
    docker rmi "${own[@]}" >/dev/null 2>&1 || true
    docker image prune -f >/dev/null
  fi
  log "after removing this repository's images: $(free_gb) GB free"
fi
if ! enough; then
  log "WARNING: still only $(free_gb) GB free, ${NEED_GB} GB wanted: free disk outside Docker (df -h; du -xsh /*)"
fi
