"""Planted regressions for the performance gate: a copy of the service source that is slower on purpose.

The service has no "be slower" setting and gets none: the copy's `ofa_ve/imaging.py` gets a wrapper
appended around `decode_image`, the first step of every pair's preprocessing, so each image costs
`delay_s` more. `spin` burns CPU in the worker thread (as slower preprocessing code would); `sleep`
waits without CPU (as a slow disk or network call would). The rest of the service is untouched.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from perf_gate.builds import SERVICE_SRC, export_tree, resolve_commit

PATCHED_FILE = "ofa_ve/imaging.py"
_WRAPPER = '''

# --- planted by tests/support/planted.py: every decode_image call takes {delay_s} s longer ({mode}) ---
import time as _planted_time

_planted_decode_image = decode_image


def decode_image(*args, **kwargs):  # type: ignore[no-redef]
    end = _planted_time.perf_counter() + {delay_s}
    if {spin}:
        while _planted_time.perf_counter() < end:
            pass
    else:
        _planted_time.sleep({delay_s})
    return _planted_decode_image(*args, **kwargs)
'''


def export_head(repo: Path, dest: Path, ref: str = "HEAD") -> Path:
    """`ref`'s service source under dest (services/ofa-ve/src/...), as perf-gate's ref: builds get it."""
    export_tree(repo, resolve_commit(repo, ref), SERVICE_SRC, dest)
    return dest


def plant_delay(tree: Path, delay_s: float, mode: str = "spin") -> Path:
    """Makes every image decode in `tree`'s service source `delay_s` slower; returns the patched file."""
    if mode not in ("spin", "sleep"):
        raise ValueError(f"mode {mode!r}: spin or sleep")
    target = tree / SERVICE_SRC / PATCHED_FILE
    text = target.read_text(encoding="utf-8")
    if "\ndef decode_image(" not in text:
        raise RuntimeError(f"{target} has no top-level decode_image any more: update {__name__}")
    target.write_text(text + _WRAPPER.format(delay_s=float(delay_s), mode=mode, spin=mode == "spin"),
                      encoding="utf-8")
    return target


def head_is_clean(repo: Path) -> bool:
    """True when the service source in the working tree matches HEAD (so ref:HEAD = path:.)."""
    proc = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", SERVICE_SRC],
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0 and not proc.stdout.strip()
