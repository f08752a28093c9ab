"""`python -m ofa_ve`, optionally with a fake NVML whose every call is slow: for bench/ofa_ve_stress.py.

Runs whichever `ofa_ve` comes first on PYTHONPATH (this tree's, or a baseline revision's), configured by
the usual OFA_VE_* environment. STRESS_NVML_DELAY_S > 0 replaces the GPU collector's NVML with one fake
GPU whose every NVML call sleeps that long, as a driver under load or a hung GPU makes it; both the old
and the new collector take an `nvml` module, so both versions get the same fake.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class SlowNvml:
    """Every nvml* function of `inner` takes `delay_s` longer."""

    def __init__(self, inner: Any, delay_s: float) -> None:
        self._inner = inner
        self._delay_s = delay_s

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not (callable(value) and name.startswith("nvml")):
            return value

        def slow(*args: Any, **kwargs: Any) -> Any:
            time.sleep(self._delay_s)
            return value(*args, **kwargs)

        return slow


def main() -> None:
    delay = float(os.environ.get("STRESS_NVML_DELAY_S", "0"))
    if delay > 0:
        sys.path.append(str(ROOT))  # after the service's source: tests.support only
        from ofa_ve import app
        from ofa_ve.gpu import GpuCollector

        from tests.support.fake_nvml import make_fake_nvml

        app._default_gpu_collector = lambda: GpuCollector(nvml=SlowNvml(make_fake_nvml(1), delay))
    from ofa_ve.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
