"""Thread counts for the calls of the parallel (``prange``) kernels.

A ``prange`` loop over fewer iterations than numba has threads leaves the idle threads waiting at
the loop's closing barrier for the whole call, and with numba's OpenMP threading layer (GNU
OpenMP) they wait spinning, so one patient of the jump process on 2 threads costs about twice the
CPU time of the same patient on one. Callers that know how many iterations a call has run it
under :func:`threads_for`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["threads_for"]


@contextmanager
def threads_for(n: int) -> Iterator[int]:
    """Run the enclosed kernel calls with at most ``n`` numba threads (at least one); yields the
    count used. numba's thread count is per calling thread, and is restored on exit."""
    import numba

    old = numba.get_num_threads()
    use = max(1, min(old, int(n)))
    if use != old:
        numba.set_num_threads(use)
    try:
        yield use
    finally:
        if use != old:
            numba.set_num_threads(old)
