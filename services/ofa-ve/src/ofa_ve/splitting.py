"""One forward pass that runs out of GPU memory must not fail every item of its batch.

The batch is split in halves and each half retried (after the allocator's cache is emptied), down to
single items; only an item that does not fit alone fails, with `gpu_out_of_memory`. Any other
exception propagates unchanged. Imports nothing but the error set, so bench/gpu_check.py can drive it
against a real CUDA out-of-memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ofa_ve.errors import GpuOutOfMemoryError

T = TypeVar("T")
R = TypeVar("R")

MESSAGE_LIMIT = 300  # characters of torch's OOM message kept (it lists every allocator statistic)


def halves(items: Sequence[T]) -> tuple[Sequence[T], Sequence[T]]:
    """The first and second half of a batch; the first gets the odd item."""
    middle = (len(items) + 1) // 2
    return items[:middle], items[middle:]


def run_splitting(
    run: Callable[[Sequence[T]], Sequence[R]],
    items: Sequence[T],
    *,
    is_oom: Callable[[BaseException], bool],
    release: Callable[[], None],
    on_oom: Callable[[int], None] = lambda _size: None,
    on_split: Callable[[int], None] = lambda _size: None,
) -> list[R | GpuOutOfMemoryError]:
    """`run(items)`, one result per item; on out-of-memory, the halves run separately (recursively).

    `on_oom(size)` is called for every OOM caught, `on_split(size)` for every batch split, `release()`
    after each OOM (torch.cuda.empty_cache). An item that runs out of memory alone gets a
    GpuOutOfMemoryError in its place in the result list.
    """
    if not items:
        return []
    try:
        results = run(items)
    except Exception as exc:
        if not is_oom(exc):
            raise
        message = str(exc)[:MESSAGE_LIMIT]
    else:
        if len(results) != len(items):
            raise RuntimeError(f"run returned {len(results)} results for {len(items)} items")
        return list(results)
    # Out of the except block: the exception, its traceback and the tensors its frames held are gone,
    # so emptying the cache can really hand that memory back.
    on_oom(len(items))
    release()
    if len(items) == 1:
        return [GpuOutOfMemoryError(f"GPU out of memory for a single item: {message}")]
    on_split(len(items))
    first, second = halves(items)
    hooks: dict[str, Any] = {"is_oom": is_oom, "release": release, "on_oom": on_oom, "on_split": on_split}
    return run_splitting(run, first, **hooks) + run_splitting(run, second, **hooks)
