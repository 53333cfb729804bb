"""Time spent loading and compiling numba kernels, and a notice when a compile starts.

numba compiles a jitted function on its first call with a given signature, or loads the machine
code from its on-disk cache (``__pycache__``) when an earlier process compiled it. Both happen
inside numba's global compiler lock, and numba broadcasts an event when the lock is taken
(``"numba:compiler_lock"``) and another only when it really compiles, after the cache had
nothing usable (``"numba:compile"``). This module listens to both:

- :func:`seconds` is the wall time spent in the compiler lock so far in this process (loading or
  compiling); a caller subtracts it from its timings so that a run's time is the run's, not
  numba's;
- :func:`watch` reports each compile as it starts, naming the kernel and, for the large ones,
  how long its compile usually takes, and collects what was compiled;
- :func:`ensure_compiled` loads or compiles a kernel before a timed call, since a first call
  also spends time outside the lock (numba's one-time set-up, typing the arguments).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

__all__ = ["KERNELS", "Watch", "ensure_compiled", "kernel_name", "seconds", "watch"]

#: The large kernels by (module, function): what to call them and how long their first compile
#: takes on a laptop core (a machine under load takes longer). Modules starting with
#: ``cmlsim_ode_`` are the ODE kernels bound to other models (:mod:`sim.engines.binding`).
KERNELS: dict[tuple[str, str], tuple[str, str]] = {
    ("sim.engines.ode", "simulate_one"): ("the ODE kernel", "about 1-2 minutes"),
    ("sim.engines.ode", "simulate_ensemble"): ("the ODE cohort kernel", "about 1-2 minutes"),
    ("sim.engines.stochastic", "simulate_cohort"): ("the jump-process kernel", "about 15-30 s"),
    ("sim.engines.abm", "simulate_cohort"): ("the agent-based kernel", "about 30-60 s"),
}


class _Listener:
    """Top-level enter/exit times of one event kind (nested events are inside their parent)."""

    def __init__(self) -> None:
        self.depth = 0
        self.total = 0.0
        self.started = 0.0
        self.lock = threading.Lock()

    def on_start(self, event) -> None:
        with self.lock:
            if self.depth == 0:
                self.started = time.perf_counter()
            self.depth += 1

    def on_end(self, event) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth == 0:
                self.total += time.perf_counter() - self.started


_lock_time: _Listener | None = None


def _forward(on_start: Callable, on_end: Callable):
    """A numba event listener that calls ``on_start(event)`` and ``on_end(event)``."""
    from numba.core import event

    class Forward(event.Listener):
        def on_start(self, ev) -> None:
            on_start(ev)

        def on_end(self, ev) -> None:
            on_end(ev)

    return Forward()


def seconds() -> float:
    """Wall time spent in numba's compiler lock (loading or compiling kernels) in this process,
    counted from the first call of this function; in progress time included."""
    global _lock_time
    if _lock_time is None:
        from numba.core import event

        _lock_time = _Listener()
        event.register("numba:compiler_lock", _forward(_lock_time.on_start, _lock_time.on_end))
    with _lock_time.lock:
        running = time.perf_counter() - _lock_time.started if _lock_time.depth else 0.0
        return _lock_time.total + running


def ensure_compiled(dispatcher, args: Sequence[object]) -> None:
    """Load or compile ``dispatcher`` for the types of ``args`` now, if it has nothing yet.

    A first call costs more than numba's compiler lock: numba initialises its compilation chain
    and types the arguments outside it. Callers that time a kernel call make it first, untimed.
    Once the dispatcher has any compiled signature this is a cheap no-op.
    """
    if not dispatcher.signatures:
        dispatcher.compile(tuple(dispatcher.typeof_pyval(a) for a in args))


def kernel_name(module: str, function: str) -> tuple[str, str] | None:
    """What :data:`KERNELS` calls ``module.function``, with its compile estimate, or None."""
    if module.startswith("cmlsim_ode_"):
        module = "sim.engines.ode"
    return KERNELS.get((module, function))


@dataclass
class Watch:
    """What :func:`watch` saw: the functions compiled and the seconds spent compiling them."""

    compiled: list[str] = field(default_factory=list)
    seconds: float = 0.0


@contextlib.contextmanager
def watch(notify: Callable[[str], None] | None = None) -> Iterator[Watch]:
    """Collect the numba compiles started in the block, and announce them.

    Parameters
    ----------
    notify : callable, optional
        Called with one line when a compile starts: for a kernel of :data:`KERNELS`
        ``"compiling the ODE kernel (first run only, about 1-2 minutes)..."``; for the first
        other function ``"compiling numba functions (first run only)..."``.

    Yields
    ------
    Watch
        Filled while the block runs: ``compiled`` (``module.function`` of each top-level
        compile) and ``seconds`` (their total wall time).
    """
    from numba.core import event

    seen = Watch()
    depth = [0]
    started = [0.0]
    told_other = [False]

    def on_start(ev) -> None:
        depth[0] += 1
        if depth[0] > 1:
            return
        started[0] = time.perf_counter()
        py = ev.data["dispatcher"].py_func
        seen.compiled.append(f"{py.__module__}.{py.__qualname__}")
        if notify is None:
            return
        known = kernel_name(py.__module__, py.__qualname__)
        if known is not None:
            notify(f"compiling {known[0]} (first run only, {known[1]})...")
        elif not told_other[0]:
            told_other[0] = True
            notify("compiling numba functions (first run only)...")

    def on_end(ev) -> None:
        depth[0] -= 1
        if depth[0] == 0:
            seen.seconds += time.perf_counter() - started[0]

    seconds()  # start counting the compiler lock too, for callers that subtract it
    with event.install_listener("numba:compile", _forward(on_start, on_end)):
        yield seen
