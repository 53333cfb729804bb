"""asv tracks of numba compile and cache-load time, per kernel, in a fresh process.

``track_compile_seconds`` gives the child process an empty ``NUMBA_CACHE_DIR``, so its first call
compiles every jitted function the kernel reaches: the cost a new machine, a new numba version or
an edited kernel pays once. ``track_cache_load_seconds`` uses the normal cache (warmed by a call
in ``setup``): the cost every new process pays, part of ``cmlsim run``'s cold start. Both run once
per round (a compile is seconds, not a sample to repeat). Kernels: ``simulate_one`` and
``simulate_ensemble`` (:mod:`sim.engines.ode`), the stochastic engine
(:mod:`sim.engines.stochastic`) and the floor loop (:mod:`benchmarks.floor`, the compile cost of
a trivial function); the child's code is :data:`benchmarks.common.FIRST_CALL`.
"""

from __future__ import annotations

from typing import ClassVar

from . import common


class Compile:
    """Seconds of the first kernel call in a fresh process with an empty numba cache."""

    params: ClassVar[list] = list(common.FIRST_CALL)
    param_names: ClassVar[list] = ["kernel"]
    timeout = 900
    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0

    def track_compile_seconds(self, kernel):
        return common.first_call_seconds(kernel, fresh_cache=True)["first_call"]

    track_compile_seconds.unit = "seconds"


class CacheLoad:
    """Seconds of the first kernel call in a fresh process that loads the kernel from numba's
    on-disk cache, and of the import and set-up before it."""

    params: ClassVar[list] = list(common.FIRST_CALL)
    param_names: ClassVar[list] = ["kernel"]
    timeout = 900
    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0

    def setup(self, kernel):
        common.first_call_seconds(kernel, fresh_cache=False)  # fills the cache if it is cold

    def track_cache_load_seconds(self, kernel):
        return common.first_call_seconds(kernel, fresh_cache=False)["first_call"]

    track_cache_load_seconds.unit = "seconds"

    def track_import_seconds(self, kernel):
        return common.first_call_seconds(kernel, fresh_cache=False)["import"]

    track_import_seconds.unit = "seconds"
