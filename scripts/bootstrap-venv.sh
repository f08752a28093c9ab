#!/usr/bin/env bash
# Creates (or refreshes) the project's dev/test virtualenv at .venv with the locked dependency set.
# Idempotent: a re-run on a finished venv takes seconds. Works from a clean clone, as root or not.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
PY=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
LOCKS=(-c services/ofa-ve/requirements.lock -c webhook-relay/requirements.lock -c tools/metrics-snapshot/requirements.lock
       -c tools/perf-gate/requirements.lock -c requirements-dev.lock)
# fairseq ships only as source and compiles C++ extensions against one torch: cache the wheel per torch version.
TORCH_VERSION=$(awk -F'==' '$1=="torch"{print $2}' services/ofa-ve/requirements.lock)
WHEELS=${OFA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ofa-ve-wheels/torch-$TORCH_VERSION}

log() { printf '[bootstrap-venv] %s\n' "$*" >&2; }

[ -x "$VENV/bin/python" ] || { log "creating $VENV with $PY"; "$PY" -m venv "$VENV"; }
# Some machines' pip config names file:// indexes that do not exist: pip warns once per package.
pip() {
  "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2)
}
pip install "pip==$(awk -F'==' '$1=="pip"{print $2}' requirements-dev.lock)"

# Marker: skip the heavy work when the venv already matches the locks byte for byte.
stamp="$VENV/.locks.sha256"
want=$(cat services/ofa-ve/requirements.lock webhook-relay/requirements.lock tools/metrics-snapshot/requirements.lock \
  tools/perf-gate/requirements.lock requirements-dev.lock services/ofa-ve/pyproject.toml webhook-relay/pyproject.toml \
  tools/metrics-snapshot/pyproject.toml tools/perf-gate/pyproject.toml \
  | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "venv up to date"; exit 0
fi

# The locks pin the torch/torchvision/torchaudio trio, so pip never picks up another torch lying on disk.
log "installing torch trio and build tools"
pip install "${LOCKS[@]}" torch torchvision torchaudio setuptools wheel Cython numpy

if ! ls "$WHEELS"/fairseq_fixed-*.whl >/dev/null 2>&1; then
  log "building fairseq wheel against torch $TORCH_VERSION (a few minutes, once per machine)"
  mkdir -p "$WHEELS"
  pip wheel "${LOCKS[@]}" --no-build-isolation --no-deps -w "$WHEELS" \
    "fairseq-fixed==$(awk -F'==' '$1=="fairseq-fixed"{print $2}' services/ofa-ve/requirements.lock)"
fi

log "installing services and tools (editable) and dev tools"
pip install "${LOCKS[@]}" --find-links "$WHEELS" \
  -e services/ofa-ve -e webhook-relay -e tools/metrics-snapshot -e tools/perf-gate -r requirements-dev.txt
# decord 0.6.0's wheel is named py3-none but its WHEEL file says cp36: pip check reports that tag
# mismatch although the module imports fine, so that one line is expected; anything else fails.
problems=$("$VENV/bin/python" -m pip check 2>&1 | grep -v '^decord 0.6.0 is not supported on this platform$' || true)
if [ -n "$problems" ] && [ "$problems" != "No broken requirements found." ]; then
  log "pip check failed:"; printf '%s\n' "$problems" >&2; exit 1
fi
echo "$want" >"$stamp"
log "done"
