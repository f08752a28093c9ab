#!/usr/bin/env bash
# Fills services/ofa-ve/wheels/ (gitignored) with a wheel for every line of services/ofa-ve/requirements.lock,
# so `docker build` of the ofa-ve image installs from its build context instead of downloading ~4 GB of
# CUDA torch wheels through the network inside the build, and does not compile fairseq again: its
# wheel is the one scripts/bootstrap-venv.sh cached per torch version (same Debian bookworm, CPython 3.11 ABI).
# The wheels are downloaded once per machine into a store and hard-linked into each checkout, so a
# second clone (CI's, a worktree) costs no disk; a store wheel that no checkout links any more and that
# the current lock does not name is deleted. Idempotent: a re-run with an unchanged lock takes well
# under a second. Optional for operators: the image also builds without it, downloading from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
LOCK=services/ofa-ve/requirements.lock
OUT=services/ofa-ve/wheels
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ofa-ve-wheels
TORCH_VERSION=$(awk -F'==' '$1=="torch"{print $2}' "$LOCK")
FAIRSEQ=${OFA_WHEEL_CACHE:-$CACHE/torch-$TORCH_VERSION}
STORE=${OFA_IMAGE_WHEEL_STORE:-$CACHE/image}
# The CUDA torch trio and its nvidia-* libraries are ~4.2 GB; pip also needs room to unpack.
NEED_GB_WITH_TORCH=6
PY=${PYTHON:-.venv/bin/python}
log() { printf '[fetch-image-wheels] %s\n' "$*" >&2; }

# Prints, for the lock and a wheel folder, the wheels that are missing ("need NAME==VERSION") and
# those of another lock ("stale PATH").
compare() {
  "$PY" - "$LOCK" "$1" <<'PY'
import re, sys
from pathlib import Path
def norm(name, version):
    return re.sub(r"[-_.]+", "_", name).lower() + "-" + version
want = {norm(*line.split("==")): line for line in Path(sys.argv[1]).read_text().split() if "==" in line}
have = {norm(*w.name.split("-")[:2]): w for w in Path(sys.argv[2]).glob("*.whl")}
for key in want.keys() - have.keys():
    print("need", want[key])
for key in have.keys() - want.keys():
    print("stale", have[key])
PY
}

mkdir -p "$OUT" "$STORE"
state=$(compare "$OUT")
if [ -z "$state" ]; then log "wheels up to date"; exit 0; fi
ls "$FAIRSEQ"/fairseq_fixed-*.whl >/dev/null 2>&1 \
  || { log "no fairseq wheel in $FAIRSEQ: run scripts/bootstrap-venv.sh first"; exit 1; }
printf '%s\n' "$state" | awk '$1=="stale"{print $2}' | xargs -r rm -f
need=$(compare "$STORE" | awk '$1=="need"{print $2}')
if [ -n "$need" ]; then
  if printf '%s\n' "$need" | grep -q '^torch=='; then
    free_gb=$(df -P -BG "$STORE" | awk 'NR==2{sub("G","",$4); print $4}')
    if [ "$free_gb" -lt "$NEED_GB_WITH_TORCH" ]; then
      log "only ${free_gb} GB free on the filesystem of $STORE; the torch wheels need ${NEED_GB_WITH_TORCH} GB"
      log "(scripts/reclaim-docker-space.sh frees Docker's build cache and dangling images)"
      exit 1
    fi
  fi
  log "collecting $(printf '%s\n' "$need" | wc -l) wheels into $STORE (the CUDA torch trio alone is ~4 GB)"
  # --no-deps: the lock is the complete set. Pure-Python sdists in it (antlr4 for one) are built here.
  # --no-cache-dir: pip's HTTP cache would hold a second copy of the 4 GB.
  # shellcheck disable=SC2086
  "$PY" -m pip --disable-pip-version-check -q wheel --no-cache-dir --no-deps -c "$LOCK" \
    --find-links "$FAIRSEQ" -w "$STORE" $need
fi
# The lock's wheels into $OUT: hard links, or copies where the two are on different filesystems.
store_stale=$(compare "$STORE" | awk '$1=="stale"{print $2}')
for wheel in "$STORE"/*.whl; do
  grep -qxF "$wheel" <<<"$store_stale" && continue
  [ -e "$OUT/${wheel##*/}" ] || ln "$wheel" "$OUT/" 2>/dev/null || cp "$wheel" "$OUT/"
done
# The store's other wheels go once no checkout links them (one link left: the store's own).
for wheel in $store_stale; do  # wheel file names hold no blanks
  [ "$(stat -c %h "$wheel")" -gt 1 ] || rm -f "$wheel"
done
state=$(compare "$OUT")
[ -z "$state" ] || { log "still not matching the lock:"; printf '%s\n' "$state" >&2; exit 1; }
log "done: $(find "$OUT" -name '*.whl' | wc -l) wheels, $(du -sh "$OUT" | cut -f1) (hard links into $STORE)"
