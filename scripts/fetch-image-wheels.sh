#!/usr/bin/env bash
# Fills services/ofa-ve/wheels/ (gitignored) with a wheel for every line of services/ofa-ve/requirements.lock,
# so `docker build` of the ofa-ve image installs from its build context instead of downloading ~4 GB of
# CUDA torch wheels through the network inside the build, and does not compile fairseq again: its
# wheel is the one scripts/bootstrap-venv.sh cached per torch version (same Debian bookworm, CPython 3.11 ABI).
# Idempotent: a re-run with an unchanged lock takes well under a second. Optional for operators: the
# image also builds without it, downloading from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
LOCK=services/ofa-ve/requirements.lock
OUT=services/ofa-ve/wheels
TORCH_VERSION=$(awk -F'==' '$1=="torch"{print $2}' "$LOCK")
FAIRSEQ=${OFA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ofa-ve-wheels/torch-$TORCH_VERSION}
PY=${PYTHON:-.venv/bin/python}
log() { printf '[fetch-image-wheels] %s\n' "$*" >&2; }

# Prints, for the lock and the wheel folder, the wheels that are missing ("need NAME==VERSION") and
# those of an older lock ("stale PATH") that would only bloat the build context.
compare() {
  "$PY" - "$LOCK" "$OUT" <<'PY'
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
mkdir -p "$OUT"
state=$(compare)
if [ -z "$state" ]; then log "wheels up to date"; exit 0; fi
ls "$FAIRSEQ"/fairseq_fixed-*.whl >/dev/null 2>&1 \
  || { log "no fairseq wheel in $FAIRSEQ: run scripts/bootstrap-venv.sh first"; exit 1; }
printf '%s\n' "$state" | awk '$1=="stale"{print $2}' | xargs -r rm -f
need=$(printf '%s\n' "$state" | awk '$1=="need"{print $2}')
if [ -n "$need" ]; then
  log "collecting $(printf '%s\n' "$need" | wc -l) wheels into $OUT (the CUDA torch trio alone is ~4 GB)"
  # --no-deps: the lock is the complete set. Pure-Python sdists in it (antlr4 for one) are built here.
  # shellcheck disable=SC2086
  "$PY" -m pip --disable-pip-version-check -q wheel --no-deps -c "$LOCK" --find-links "$FAIRSEQ" -w "$OUT" $need
fi
state=$(compare)
[ -z "$state" ] || { log "still not matching the lock:"; printf '%s\n' "$state" >&2; exit 1; }
log "done: $(find "$OUT" -name '*.whl' | wc -l) wheels, $(du -sh "$OUT" | cut -f1)"
