"""Running a sweep: chunks of the design on an executor, written to the store, resumable.

Executors
---------
``serial``
    This process, chunk after chunk (the ensemble kernel uses all numba threads).
``processes`` (default)
    A pool of ``workers`` local processes (one numba thread each). They are forked from a fork
    server that loads the kernel once (:mod:`sim.sweep.warm`) while the design and the store are
    being made (``spawn`` where there is no fork server: each worker then loads it itself).
``dask``
    A Dask ``distributed`` cluster: the scheduler at ``scheduler`` (``tcp://host:8786``), or a
    ``LocalCluster`` of ``workers`` processes that ``run_sweep`` starts and stops. Workers import
    this package and write to the store themselves, so on a cluster the results folder must be on
    a file system every worker sees. On SLURM or PBS, start the workers with dask-jobqueue and
    give its scheduler address::

        from dask_jobqueue import SLURMCluster      # or PBSCluster
        cluster = SLURMCluster(cores=16, processes=16, memory="64GB", walltime="02:00:00")
        cluster.scale(jobs=4)                       # 64 single-threaded worker processes
        print(cluster.scheduler_address)            # -> cmlsim sweep X.toml --scheduler ADDR

    (``processes = cores`` gives one thread per worker process, which is what the kernel wants.)

Each task is a run of consecutive chunks (:func:`plan_tasks`: about ``TASK_RUNS`` runs, fewer
towards the end of the sweep) and gets its design rows with it: one kernel call for its runs, the
metrics, then for each chunk its files in the Zarr store and its done marker
(:mod:`sim.sweep.store`). A run on which the kernel raises (a numerical failure) is recorded with
its error (``run_errors`` in its chunk's marker, status 3, NaN metrics) and the rest of its chunk
is kept. A chunk whose computation raises anywhere else (a task of several chunks that raises is
computed again chunk by chunk) is recorded as failed, with the error in
its marker and status 3 for its runs, and the other chunks go on; ``--resume`` computes it again.
Results do not depend on the executor, the number of workers or the chunk size: run ``j`` always
takes design row ``j`` and random stream ``j``.

One sweep at a time writes into a store: ``run_sweep`` holds its lock
(:func:`sim.sweep.store.lock`) from start to end, and refuses a store another sweep holds.
Ctrl-C stops a sweep at once: the ``processes`` executor kills its workers amid their tasks,
whose chunks have no marker yet and are computed again by ``--resume``. A main process killed
by any signal takes its workers, multiprocessing's fork server and its resource tracker with it
(:mod:`sim.sweep.lifeline`); a Dask ``LocalCluster`` interrupted or failed has its workers killed
rather than shut down gracefully.

The three executors share one interface (``start``, ``ready``, ``run``, ``close``) and live here
with the task plan and the run loop they serve, which is why the module passes 800 lines.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from concurrent.futures import Future

    import pandas as pd

    from sim.scenario import Scenario
    from sim.sweep.store import Layout

__all__ = [
    "EXECUTORS",
    "SweepError",
    "SweepRun",
    "plan_tasks",
    "run_chunk",
    "run_chunks",
    "run_sweep",
    "warm_kernels",
]

EXECUTORS = ("serial", "processes", "dask")


class SweepError(ValueError):
    """A sweep that cannot start or resume (one clear message for the command line)."""


# ---------------------------------------------------------------------------------------------
# one chunk, in whatever process runs it

_CONTEXTS: dict[tuple[str, str], Any] = {}


@dataclass
class _Context:
    layout: Layout
    runner: Any
    writer: Any
    n_metric: int
    failures_column: int
    values: np.ndarray | None = None

    def design(self) -> np.ndarray:
        """The whole design, read from the store's coordinates (when a task came without its
        rows)."""
        if self.values is None:
            from sim.sweep import store

            self.values = store.design_values(self.layout)
        return self.values


def _context(path: str, sweep_id: str) -> _Context:
    """The runner and writer of a store, built once per process (without opening the store
    through zarr: the layout comes from its ``zarr.json``, the design rows with the tasks)."""
    key = (path, sweep_id)
    ctx = _CONTEXTS.get(key)
    if ctx is not None:
        return ctx
    from sim import scenario
    from sim.sweep import metrics, store
    from sim.sweep.runs import Runner

    layout = store.read_layout(path)
    if layout.sweep_id != sweep_id:
        raise SweepError(f"{path} holds another sweep ({layout.sweep_id}, not {sweep_id})")
    sc = scenario.loads(layout.scenario_text, str(Path(path) / "scenario.toml"))
    runner = Runner(sc)
    runner.streams(0, layout.n)  # every run's random stream, once
    names = metrics.metric_names(runner.model)
    ctx = _Context(layout, runner, store.Writer(layout), len(names), names.index("solver_failures"))
    _CONTEXTS.clear()  # one sweep at a time per process
    _CONTEXTS[key] = ctx
    return ctx


#: Runs a task takes at most when the chunks are smaller (:func:`plan_tasks`).
TASK_RUNS = 1024


def plan_tasks(pending: Sequence[int], chunk: int, workers: int) -> list[list[int]]:
    """Group the pending chunks into tasks: guided self-scheduling.

    Each task is a run of consecutive pending chunks computed by one kernel call: as many as
    ``ceil(R / (2 workers))`` for ``R`` chunks still to plan, at most ``TASK_RUNS // chunk``
    (one chunk when chunks are larger). The tasks shrink towards the end of the sweep to single
    chunks, so the workers finish within one small chunk of each other, while the bulk of the
    sweep goes in tasks of about ``TASK_RUNS`` runs, whose fixed costs (inputs, metrics, the
    executor's round trip) are those of one chunk (Polychronopoulos & Kuck, IEEE Trans. Comput.
    36, 1987: guided self-scheduling).

    Parameters
    ----------
    pending : sequence of int
        The chunks to compute, in increasing order (gaps between them are never bridged).
    chunk : int
        Runs per chunk.
    workers : int
        Workers of the executor.
    """
    cap = max(1, TASK_RUNS // max(1, int(chunk)))
    tasks: list[list[int]] = []
    i, n = 0, len(pending)
    while i < n:
        size = min(cap, max(1, -(-(n - i) // (2 * max(1, int(workers))))))
        task = [pending[i]]
        while len(task) < size and i + len(task) < n and pending[i + len(task)] == task[-1] + 1:
            task.append(pending[i + len(task)])
        tasks.append(task)
        i += len(task)
    return tasks


def run_chunks(
    path: str,
    sweep_id: str,
    chunks: Sequence[int],
    session: str = "",
    values: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Compute consecutive chunks of the sweep stored in ``path`` in one go and write each
    (its data, then its marker).

    A failure inside the computation is recorded and not raised, so the other chunks go on:
    a task of several chunks that raises is computed again chunk by chunk, and a chunk that
    raises on its own gets the marker ``status = "failed"`` with the error, status 3 for its
    runs and NaN metrics. Failures to write the store are raised.

    Parameters
    ----------
    path, sweep_id : str
        The results folder and the id of the sweep in it (a check against another sweep).
    chunks : sequence of int
        Consecutive chunks (:func:`plan_tasks`).
    session : str
        Id of the ``run_sweep`` call (kept in the markers).
    values : ndarray (m, D), optional
        The design rows of these chunks (as stored: ``run_sweep`` sends them with the task);
        read from the store when not given.

    Returns
    -------
    list of dict
        The chunks' marker records. ``kernel_seconds`` and ``seconds`` of a chunk are its share
        of the task's, in proportion to its runs; ``task`` names the task's chunks.
    """
    import sim
    from sim.sweep.store import STATUS

    t_ctx = time.perf_counter()
    fresh = (path, sweep_id) not in _CONTEXTS
    ctx = _context(path, sweep_id)
    ks = [int(k) for k in chunks]
    if not ks or any(b != a + 1 for a, b in itertools.pairwise(ks)):
        raise ValueError(f"a task takes consecutive chunks, not {ks}")
    bounds = ctx.layout.bounds
    first, stop = bounds[ks[0]][0], bounds[ks[-1]][1]
    rows = ctx.design()[first:stop] if values is None else np.asarray(values, dtype=np.float64)
    if rows.shape[0] != stop - first:
        raise ValueError(f"chunks {ks} have {stop - first} runs, not {rows.shape[0]} design rows")
    t0 = time.perf_counter()
    common: dict[str, Any] = {
        "context_seconds": t0 - t_ctx if fresh else 0.0,
        "started": time.time(),
        "session": session,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "version": sim.__version__,
        "task": [ks[0], ks[-1]],
    }
    try:
        res = ctx.runner.run(rows, first)
    except Exception as exc:  # a failing chunk is recorded; the others go on
        if len(ks) > 1:  # which chunk? each on its own
            return [
                rec
                for k in ks
                for rec in run_chunks(
                    path, sweep_id, [k], session, rows[bounds[k][0] - first : bounds[k][1] - first]
                )
            ]
        tb = traceback.format_exception(exc)
        a, b = bounds[ks[0]]
        outcome = np.full((b - a, ctx.n_metric), np.nan)
        outcome[:, 0] = STATUS["error"]
        info = {
            **common,
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(tb[-6:]),
            "kernel_seconds": 0.0,
            "solver_failure_runs": 0,
            "seconds": time.perf_counter() - t0,
        }
        return [ctx.writer.write(ks[0], outcome, None, info)]
    seconds = time.perf_counter() - t0
    recs = []
    for k in ks:
        a, b = bounds[k]
        i, j = a - first, b - first
        outcome = res.outcome[i:j]
        share = (b - a) / (stop - first)
        info = {
            **common,
            "status": "done",
            "error": None,
            "kernel_seconds": res.kernel_seconds * share,
            "solver_failure_runs": int((outcome[:, ctx.failures_column] > 0).sum()),
            "run_errors": {str(first + r): msg for r, msg in res.errors.items() if i <= r < j},
            "seconds": seconds * share,
        }
        traj = None if res.trajectory is None else res.trajectory[i:j]
        recs.append(ctx.writer.write(k, outcome, traj, info))
    return recs


def run_chunk(
    path: str,
    sweep_id: str,
    k: int,
    session: str = "",
    values: np.ndarray | None = None,
) -> dict[str, Any]:
    """Compute chunk ``k`` of the sweep stored in ``path`` and write it (data, then marker): a
    task of one chunk (:func:`run_chunks`); returns its marker record."""
    return run_chunks(path, sweep_id, [k], session, values)[0]


def warm_kernels(threads: int | None = None, ensemble: bool = True) -> float:
    """Load (or compile) the ODE kernels in this process; returns the seconds it took.

    ``threads`` sets numba's thread count first (workers run one thread each); ``ensemble``:
    also the ensemble kernel (sweeps of model parameters only call it).
    """
    t0 = time.perf_counter()
    import numba

    if threads is not None:
        numba.set_num_threads(int(threads))
    from sim import models, run
    from sim.engines import ode
    from sim.scenario import Protocol

    model = models.get("cml_immune")
    p = model.params.vector({})
    sched = run.compile_schedule(())
    proto = run.compile_protocol(Protocol(), 30.0)
    a = run.kernel_arguments(model.name, p, sched, proto, t_out=np.array([30.0]))
    names = [n for n, _ in run.KERNEL_ARGUMENTS]
    per = dict(run.KERNEL_ARGUMENTS)
    ode.simulate_one(*(a[n] for n in names))
    if not ensemble:
        return time.perf_counter() - t0
    fresh = run.kernel_arguments(model.name, p, sched, proto, t_out=np.array([30.0]))
    ode.simulate_ensemble(*(fresh[n][None, ...] if per[n] else fresh[n] for n in names))
    return time.perf_counter() - t0


_READY_AT = float("nan")


def _init_worker(threads: int, ensemble: bool, barrier: Any, reader: Any, forked: bool) -> None:
    """Start a worker of the ``processes`` executor: end with the sweep's main process
    (:mod:`sim.sweep.lifeline`), leave Ctrl-C to it, load the kernels, wait for the others."""
    global _READY_AT
    import signal

    from sim.sweep import lifeline

    if forked:  # forked by the fork server's only thread: die with the server
        lifeline.die_with_parent()
    lifeline.hold(reader)
    # Ctrl-C reaches the whole process group: the main process stops the workers itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_kernels(threads, ensemble)
    _READY_AT = time.time()
    try:
        barrier.wait(timeout=900)
    except Exception:  # a worker that never came: start anyway
        pass


def _ping() -> float:
    """When this worker had loaded the kernels (``time.time()``)."""
    return _READY_AT


# ---------------------------------------------------------------------------------------------
# executors


class _Serial:
    name = "serial"

    def __init__(self, workers: int | None = None, ensemble: bool = True):
        self.workers = 1
        self.ensemble = ensemble

    def start(self) -> None:
        pass

    def ready(self) -> float:
        return warm_kernels(None, self.ensemble)

    def run(self, tasks: Sequence[tuple]) -> Iterator[list[dict[str, Any]]]:
        for args in tasks:
            yield run_chunks(*args)

    def describe(self) -> str:
        return "serial (this process)"

    def close(self, stop: bool = False) -> None:
        pass


def _main_by_name() -> list[str]:
    """The main module's name when it was started as ``python -m NAME``.

    Every process that multiprocessing starts runs the main module again (as ``__mp_main__``).
    The fork server preloads a main module given by its path, not one given by name, so each
    worker would import all that module imports, after the fork (for ``python -m
    benchmarks.compare``: matplotlib and SciPy). Preloaded by name, the imports are
    done once in the server; the workers only run the module's body again.
    """
    import sys

    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None)
    if not name or name == "__main__" or name.endswith(".__main__"):
        return []
    return [name]


class _Processes:
    name = "processes"

    def __init__(self, workers: int | None = None, ensemble: bool = True):
        self.workers = int(workers or _available_cores())
        self.ensemble = ensemble
        self.pool: Any = None
        self.launcher: Future | None = None
        self.lifeline: Any = None
        #: seconds from start() until every worker had loaded the kernels (set by ready())
        self.workers_ready = float("nan")

    def start(self) -> None:
        import multiprocessing
        from concurrent.futures import ThreadPoolExecutor

        from sim.sweep import lifeline

        self.t0 = time.perf_counter()
        self.t0_wall = time.time()
        if "forkserver" in multiprocessing.get_all_start_methods():
            from multiprocessing import forkserver

            self.ctx = multiprocessing.get_context("forkserver")
            # the server imports these before it forks any worker ("__main__" is the default)
            self.ctx.set_forkserver_preload(["__main__", "sim.sweep.warm", *_main_by_name()])
            # A server started now dies with this process (sim.sweep.warm reads the variable).
            # The resource tracker started with it unlinks the semaphore numba makes in each
            # worker when a worker is killed (Ctrl-C): without a warning about it.
            quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
            warnings = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet]))
            with _environ({lifeline.ENV: str(os.getpid()), "PYTHONWARNINGS": warnings}):
                forkserver.ensure_running()  # it loads the kernel now, while the design is made
        else:
            self.ctx = multiprocessing.get_context("spawn")
        self.lifeline = lifeline.Lifeline(self.ctx)
        # starting a worker waits for the fork server's preload: not in this thread, which makes
        # the design and the store meanwhile
        launcher = ThreadPoolExecutor(1, thread_name_prefix="cmlsim-workers")
        self.launcher = launcher.submit(self._launch)
        launcher.shutdown(wait=False)

    def _launch(self) -> list[Future]:
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self.ctx,
            initializer=_init_worker,
            initargs=(
                1,
                self.ensemble,
                self.ctx.Barrier(self.workers),
                self.lifeline.reader,
                self.ctx.get_start_method() == "forkserver",
            ),
        )
        return [self.pool.submit(_ping) for _ in range(self.workers)]

    def ready(self) -> float:
        assert self.launcher is not None
        ready_at = [f.result() for f in self.launcher.result()]
        self.workers_ready = max(ready_at) - self.t0_wall
        return time.perf_counter() - self.t0

    def run(self, tasks: Sequence[tuple]) -> Iterator[list[dict[str, Any]]]:
        from concurrent.futures import as_completed

        assert self.pool is not None
        futures = [self.pool.submit(run_chunks, *args) for args in tasks]
        for f in as_completed(futures):
            yield f.result()

    def describe(self) -> str:
        return f"{self.workers} local processes"

    def close(self, stop: bool = False) -> None:
        """Shut the pool down; ``stop``: at once, killing the workers amid their tasks (their
        chunks are left without a marker, to compute again on resume)."""
        from concurrent.futures import wait

        if stop and self.lifeline is not None:
            self.lifeline.cut()  # workers forked meanwhile end too
        if stop:
            self._kill_workers()
            if self.launcher is not None and not self.launcher.done():
                _stop_fork_server()  # the launcher waits for it to load the kernel: not now
        if self.launcher is not None:
            wait([self.launcher])  # the pool exists once the launcher has returned
            self.launcher = None
        if self.pool is not None:
            if stop:
                self._kill_workers()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        if self.lifeline is not None:
            self.lifeline.cut()

    def _kill_workers(self) -> None:
        # the pool's processes by pid (no public accessor in concurrent.futures)
        for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
            if proc.is_alive():
                proc.kill()


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """These environment variables set meanwhile (for the processes started)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _stop_fork_server() -> None:
    """Kill multiprocessing's fork server of this process, if running (the next pool starts a
    new one); the workers it forked die with it (:mod:`sim.sweep.lifeline`)."""
    import signal
    from multiprocessing import forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class _Dask:
    name = "dask"

    def __init__(
        self, workers: int | None = None, scheduler: str | None = None, ensemble: bool = True
    ):
        self.workers = workers
        self.ensemble = ensemble
        self.scheduler = scheduler
        self.client: Any = None
        self.cluster: Any = None

    def start(self) -> None:
        import logging

        from distributed import Client, LocalCluster

        self.t0 = time.perf_counter()
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="10s")
            except OSError as exc:
                raise SweepError(
                    f"cannot reach the Dask scheduler at {self.scheduler}: {exc}"
                ) from None
        else:
            n = int(self.workers or _available_cores())
            self.cluster = _ignoring_sigint(
                LocalCluster,
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
        names = list(self.client.scheduler_info()["workers"])
        self.workers = len(names)
        self.warm = [
            self.client.submit(
                warm_kernels, 1, self.ensemble, workers=[w], allow_other_workers=False, pure=False
            )
            for w in names
        ]

    def ready(self) -> float:
        self.client.gather(self.warm)
        return time.perf_counter() - self.t0

    def run(self, tasks: Sequence[tuple]) -> Iterator[list[dict[str, Any]]]:
        from distributed import as_completed

        futures = [self.client.submit(run_chunks, *args, pure=False) for args in tasks]
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            self.client.cancel(futures)

    def describe(self) -> str:
        where = f"scheduler {self.scheduler}" if self.scheduler else "a LocalCluster"
        return f"Dask, {self.workers} workers ({where})"

    def close(self, stop: bool = False) -> None:
        if stop and self.cluster is not None:
            # interrupted or failed: the local workers are killed at once instead of being shut
            # down gracefully, which takes seconds; an external scheduler's workers are not ours
            _kill_children()
        if self.client is not None:
            self.client.close(timeout=2 if stop else None)
        if self.cluster is not None:
            self.cluster.close(timeout=2 if stop else None)
        self.client = self.cluster = None


def _kill_children() -> None:
    """SIGKILL the descendant processes of this one but multiprocessing's resource tracker,
    which cleans up after them (psutil comes with distributed)."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if not any("resource_tracker" in part for part in child.cmdline()):
                child.kill()


def _ignoring_sigint(start: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``start(*args, **kwargs)`` with Ctrl-C ignored meanwhile, so the processes it starts
    ignore it too (a Python process started with SIGINT ignored keeps it so): Ctrl-C reaches
    the whole process group, and the main process stops them itself."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return start(*args, **kwargs)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return start(*args, **kwargs)
    finally:
        signal.signal(signal.SIGINT, before)


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def make_executor(
    kind: str, workers: int | None = None, scheduler: str | None = None, ensemble: bool = True
) -> Any:
    """An executor by name (``serial``, ``processes``, ``dask``); a scheduler implies Dask.
    ``ensemble``: its workers load the ensemble kernel too (not needed when a therapy,
    protocol or intervention value is swept)."""
    if scheduler:
        kind = "dask"
    if kind not in EXECUTORS:
        from sim.params import did_you_mean

        raise SweepError(
            f"unknown executor {kind!r}{did_you_mean(kind, EXECUTORS)}; "
            f"known: {', '.join(EXECUTORS)}"
        )
    if workers is not None and workers < 1:
        raise SweepError(f"workers must be >= 1, got {workers}")
    if kind == "serial":
        return _Serial(ensemble=ensemble)
    if kind == "processes":
        return _Processes(workers, ensemble)
    return _Dask(workers, scheduler, ensemble)


# ---------------------------------------------------------------------------------------------
# the whole sweep


@dataclass
class SweepRun:
    """A finished (or resumed) sweep.

    Attributes
    ----------
    path : Path
        The results folder.
    layout : sim.sweep.store.Layout
    executor : str
        What ran it.
    n : int
        Runs in the sweep.
    chunks : int
        Chunks in the sweep.
    computed : int
        Chunks computed in this call (a resumed sweep skips those already done).
    failed : dict
        Chunk -> error of the chunks that failed (in any session, as the markers say).
    solver_failure_runs : int
        Runs whose integration failed (status 2).
    run_errors : dict
        Run -> error of the runs on which the kernel raised (status 3), from the markers.
    timings : dict
        Seconds: ``startup`` (from the executor's start until the runs can begin: the workers
        start while the design and the store are made), ``workers`` (until every worker had
        loaded the kernels, by the workers' clocks), ``design`` (design and store), ``run``
        (first task to last result), ``kernel`` (inside the kernel, summed over chunks of this
        call), ``analysis`` (indices and figures), ``total``.
    sensitivity : pandas.DataFrame or None
        :func:`sim.sensitivity.analyze` of the sweep's outputs.
    notes : list of str
        Outputs that could not be analysed, and why.
    files : list of str
        Files written besides the store.
    """

    path: Path
    layout: Layout
    executor: str
    n: int
    chunks: int
    computed: int
    failed: dict[int, str]
    solver_failure_runs: int
    run_errors: dict[int, str]
    timings: dict[str, float]
    sensitivity: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _existing(results_root: str | os.PathLike, sc: Scenario) -> Layout | None:
    """The store to resume, or None when there is none yet."""
    from sim.sweep import store

    path = Path(results_root) / sc.name
    if not path.exists():
        return None
    try:
        layout = store.read_layout(path)
    except FileNotFoundError:
        raise SweepError(
            f"{path} exists but holds no sweep store ({store.STORE}); nothing to resume"
        ) from None
    if layout.scenario_text != sc.text:
        raise SweepError(
            f"the scenario changed since the sweep in {path} started (compare {sc.path} with "
            f"{path / 'scenario.toml'}): run without --resume for a new sweep"
        )
    return layout


def run_sweep(
    sc: Scenario,
    *,
    results_root: str | os.PathLike = "results",
    resume: bool = False,
    overwrite: bool = False,
    executor: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    analysis: bool = True,
    figures: bool = True,
    formats: Sequence[str] = ("png", "pdf"),
) -> SweepRun:
    """Run the scenario's ``[sweep]``: design, store, chunks on an executor, then the analysis.

    Parameters
    ----------
    sc : Scenario
        With a ``[sweep]`` section.
    results_root : path
        Results go to ``<results_root>/<name>/`` (``<name>.2/``, ... if taken).
    resume : bool
        Continue the sweep in ``<results_root>/<name>/``: compute only the chunks without a done
        marker (those not started, cut off, or failed). The scenario text must be the one the
        sweep started with. Without a store there, a new sweep starts.
    overwrite : bool
        Replace ``<results_root>/<name>/`` (a new sweep).
    executor : {"serial", "processes", "dask"}
        See the module docstring; ``scheduler`` implies ``"dask"``.
    workers : int, optional
        Worker processes (default: the cores available); for ``dask`` without a scheduler, the
        size of the LocalCluster.
    scheduler : str, optional
        Address of a Dask scheduler.
    progress : bool
        A progress bar with the rate and the time left (tqdm), then a line per step of the
        analysis with the seconds it took (on standard error).
    analysis, figures : bool
        Compute the sensitivity indices (``sensitivity.csv``) and draw the figures.
    formats : sequence of str
        Figure formats.

    Returns
    -------
    SweepRun

    Raises
    ------
    SweepError
        No ``[sweep]``, a bad executor, a scenario that changed under ``resume``, a store
        another sweep is writing into (``resume`` or ``overwrite``).
    """
    import secrets

    from tqdm.auto import tqdm

    from sim.sweep import design, store

    if sc.sweep is None:
        raise SweepError(f"{sc.path}: no [sweep] section (add one; see sim.sweep)")
    from sim.sweep import in_text

    try:
        sc = in_text(sc)  # workers and the provenance read the sweep from the text
    except ValueError as exc:
        raise SweepError(str(exc)) from None
    t_start = time.perf_counter()
    ensemble = all(p.path.startswith("patient.") for p in sc.sweep.params)
    ex = make_executor(executor, workers, scheduler, ensemble)
    target = Path(results_root) / sc.name
    with contextlib.ExitStack() as held:
        if (resume or overwrite) and (target / store.STORE).is_dir():
            # refused at once if another sweep writes there; --resume keeps the lock
            lock = _lock(target)
            if resume:
                held.callback(lock.release)
            else:
                lock.release()  # store.create_locked takes it again to replace the folder
        layout = _existing(results_root, sc) if resume else None
        values = None
        if layout is not None:
            store.remove_partial_files(layout)
        ex.start()
        stopped = True
        try:
            if layout is None:
                values = design.design_values(sc.sweep, sc.seed)
                try:
                    layout, new = store.create_locked(
                        sc, values, results_root, overwrite, workers=ex.workers
                    )
                except store.Locked as exc:
                    raise SweepError(_busy(exc)) from None
                held.callback(new.release)
            t_design = time.perf_counter() - t_start
            done = {k for k, rec in store.markers(layout.path).items() if rec["status"] == "done"}
            pending = [k for k in range(len(layout.bounds)) if k not in done]
            session = secrets.token_hex(6)
            if values is None:
                values = store.design_values(layout)
            bounds = layout.bounds
            tasks = [
                (
                    str(layout.path),
                    layout.sweep_id,
                    ks,
                    session,
                    values[bounds[ks[0]][0] : bounds[ks[-1]][1]],
                )
                for ks in plan_tasks(pending, layout.chunk, int(ex.workers or 1))
            ]
            startup = ex.ready()
            t_run = time.perf_counter()
            kernel = 0.0
            todo = sum(b - a for k, (a, b) in enumerate(layout.bounds) if k not in done)
            with tqdm(
                total=todo,
                unit="run",
                disable=not progress,
                desc=sc.name,
                smoothing=0.1,
                dynamic_ncols=True,
            ) as bar:
                for recs in ex.run(tasks):
                    for rec in recs:
                        kernel += float(rec.get("kernel_seconds", 0.0))
                        bar.update(rec["stop"] - rec["first"])
            run_s = time.perf_counter() - t_run
            desc = ex.describe()
            stopped = False
        finally:
            ex.close(stop=stopped)  # stopped: interrupted or failed; workers killed at once
        recs = store.markers(layout.path)
        failed = {k: str(r.get("error")) for k, r in recs.items() if r["status"] != "done"}
        failed.update({k: "not computed" for k in range(len(layout.bounds)) if k not in recs})
        out = SweepRun(
            path=layout.path,
            layout=layout,
            executor=desc,
            n=layout.n,
            chunks=len(layout.bounds),
            computed=len(pending),
            failed=failed,
            solver_failure_runs=sum(int(r.get("solver_failure_runs", 0)) for r in recs.values()),
            run_errors={
                int(j): msg for r in recs.values() for j, msg in r.get("run_errors", {}).items()
            },
            timings={
                "startup": startup,
                "workers": getattr(ex, "workers_ready", startup),
                "design": t_design,
                "run": run_s,
                "kernel": kernel,
            },
        )
        t_an = time.perf_counter()
        if analysis:
            _analyse(out, figures, formats, _Phases(progress))
        out.timings["analysis"] = time.perf_counter() - t_an
    out.timings["total"] = time.perf_counter() - t_start
    return out


def _busy(exc: Any) -> str:
    """The message for a store locked by another writer (:class:`sim.sweep.store.Locked`)."""
    return (
        f"{exc.path} is in use by another sweep ({exc.holder}): wait for it to end, or stop it "
        "and continue with --resume"
    )


def _lock(path: Path) -> Any:
    """The writer's lock of the results folder ``path``; :class:`SweepError` if taken."""
    from sim.sweep import store

    try:
        return store.lock(path)
    except store.Locked as exc:
        raise SweepError(_busy(exc)) from None


class _Phases:
    """One line per phase of the analysis on standard error (when ``on``): what it does, then
    the seconds it took."""

    def __init__(self, on: bool):
        self.on = on

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        t0 = time.perf_counter()
        if self.on:
            print(f"  {what} ...", end="", file=sys.stderr, flush=True)
        try:
            yield
        except BaseException:
            if self.on:
                print(file=sys.stderr)  # end the line; the error is said elsewhere
            raise
        if self.on:
            print(f" {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


def _analyse(
    res: SweepRun,
    figures: bool,
    formats: Sequence[str],
    phase: Callable[[str], contextlib.AbstractContextManager[Any]],
) -> None:
    """Indices of the sweep's outputs (``sensitivity.csv``) and the figures, each with its data;
    ``phase(what)`` wraps each step (:class:`_Phases`)."""
    from sim import sensitivity
    from sim.sweep import store

    with phase("reading the results"):
        ds = store.load_sweep(res.path)
    table, notes = sensitivity.analyze(ds, phase=phase)
    res.sensitivity = table
    res.notes = notes
    if table is not None and len(table):
        path = res.path / "sensitivity.csv"
        tmp = path.with_name(".sensitivity.csv.tmp")
        table.to_csv(tmp, index=False)
        os.replace(tmp, path)
        res.files.append(str(path))
    if figures:
        from sim.plots import sweep as sweep_plots

        for kind in sweep_plots.FIGURES:
            with phase(f"figure: {kind}"):
                res.files += sweep_plots.render(
                    res.path / store.STORE,
                    res.path,
                    figures=[kind],
                    formats=formats,
                    ds=ds,
                    table=table,
                )
