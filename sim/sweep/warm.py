"""Importing this module loads the single-patient ODE kernel and the sweep modules into a process.

The ``processes`` executor of :mod:`sim.sweep.execute` starts its workers from a fork server that
imports this module first: numba starts and the kernel loads from its cache once, in the server,
while the parent makes the design and the store, and every worker forked from it begins with
both in memory (with ``spawn``, each worker did all of it again, on the same cores as the parent).
The modules a worker needs for its first chunk are imported here too (the scenario reader and what
it imports, the sweep modules, numcodecs' zstd). Workers do not open the store through zarr: they
read its layout from its ``zarr.json`` and write their chunk files themselves
(:class:`sim.sweep.store.ChunkFiles`); zarr is imported only for a store of another layout. None
of these imports starts a thread, so the server can still fork.

The ensemble kernel is left to the workers: it is ``parallel=True``, and loading it starts numba's
thread pool; a process with threads must not fork (GNU OpenMP does not survive it).

In a fork server started by a sweep, importing this module first asks Linux to kill the
server when the sweep's main process dies (:func:`sim.sweep.lifeline.arm_fork_server`).
"""

from __future__ import annotations

import importlib

from sim.sweep import lifeline

lifeline.arm_fork_server()

from sim.sweep.execute import warm_kernels  # noqa: E402

try:
    #: Seconds it took (NaN if it failed: the workers then load the kernels themselves, and report
    #: what fails there).
    SECONDS = warm_kernels(threads=None, ensemble=False)
except Exception:  # never break the fork server that imports this
    SECONDS = float("nan")

#: What a worker's first chunk imports (:func:`sim.sweep.execute.run_chunk`).
PRELOAD = (
    "numcodecs.zstd",
    "sim.engines.cellular",  # the scenario reader imports it
    "sim.run",
    "sim.scenario",
    "sim.sweep.metrics",
    "sim.sweep.runs",
    "sim.sweep.store",
)

for _name in PRELOAD:
    try:
        importlib.import_module(_name)
    except Exception:  # the workers import what they need themselves
        pass
