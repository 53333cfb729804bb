"""The ``processes`` executor: workers forked from a fork server that loaded the kernel give the
serial executor's results bit for bit, for both kernels (the single-patient one, loaded in the
server, and the ensemble one, which each worker loads after the fork)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from sim import scenario
from sim.sweep import STATUS, markers, run_sweep

SCENARIO = """
[scenario]
name = "{name}"
model = "cml_immune"
horizon = "6y"
seed = 5

[patient]
hahnel_patient = 10

[[therapy]]
drug = "imatinib"
dose = "400mg"
every = "1d"
start = "diagnosis"

[protocol]
monitoring = "eln2020"
stop = {{ at = "3y" }}
restart = "loss_of_mmr"

[sweep]
design = "lhs"
n = 24
chunk = 5

[sweep.params]
patient.s_N = {{ low = 6.3, high = 42.0, scale = "log" }}
{extra}
"""


def arrays(path: Path) -> dict[str, np.ndarray]:
    g = zarr.open_group(path / "sweep.zarr", mode="r")
    return {name: g[name][...] for name in g.array_keys()}


@pytest.mark.parametrize(
    "extra",
    [
        "",  # model parameters only: the ensemble kernel
        'protocol.stop.at = { low = "2y", high = "4y" }',  # one kernel call per run
    ],
)
def test_processes_equal_serial_bit_for_bit(tmp_path, extra):
    sc = scenario.loads(SCENARIO.format(name="t-processes", extra=extra), "t-processes.toml")
    serial = run_sweep(sc, results_root=tmp_path / "serial", executor="serial", analysis=False)
    procs = run_sweep(
        sc, results_root=tmp_path / "processes", executor="processes", workers=2, analysis=False
    )
    assert procs.executor == "2 local processes" and not procs.failed
    workers = {rec["worker"] for rec in markers(procs.path).values()}
    assert all(w.split(":")[1] != str(os.getpid()) for w in workers)  # written by the workers
    assert math.isfinite(procs.timings["workers"]) and procs.timings["workers"] > 0
    a, b = arrays(serial.path), arrays(procs.path)
    assert (a["outcome"][:, 0] == STATUS["done"]).all()
    assert a.keys() == b.keys()
    for name in a:
        if a[name].dtype.kind in "OTU":
            assert list(a[name]) == list(b[name]), name
        else:
            assert a[name].tobytes() == b[name].tobytes(), name


def test_the_fork_server_preload_has_what_a_first_chunk_imports_and_starts_no_thread(tmp_path):
    """Workers fork from a server that imported :mod:`sim.sweep.warm`: it has every module their
    first chunk needs already loaded (a chunk imports nothing more, and not zarr: workers write
    their chunk files themselves), and no thread (a process with threads must not fork)."""
    sc = scenario.loads(SCENARIO.format(name="t-preload", extra=""), "t-preload.toml")
    done = run_sweep(sc, results_root=tmp_path, executor="serial", analysis=False)
    code = (
        "import sys, threading\n"
        "import sim.sweep.warm as w\n"
        "assert w.SECONDS == w.SECONDS, 'kernel load failed'\n"
        "missing = [m for m in w.PRELOAD if m not in sys.modules]\n"
        "print(threading.active_count(), missing)\n"
        "before = set(sys.modules)\n"
        "from sim.sweep import execute, store\n"
        f"layout = store.read_layout({str(done.path)!r})\n"
        "import numpy as np\n"
        "rows = np.full((5, 1), 10.0)\n"
        "rec = execute.run_chunk(str(layout.path), layout.sweep_id, 1, 's', rows)\n"
        "assert rec['status'] == 'done', rec\n"
        # a pool worker has multiprocessing loaded already
        "skip = ('numba', 'multiprocessing', '_multiprocessing')\n"
        "new = sorted(m for m in set(sys.modules) - before if not m.startswith(skip))\n"
        "print(new)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    assert out.stdout.split("\n")[:2] == ["1 []", "[]"], out.stdout


@pytest.mark.parametrize(
    ("spec", "preload"),
    [
        ("benchmarks.compare", ["benchmarks.compare"]),  # python -m benchmarks.compare
        ("sim.cli", ["sim.cli"]),
        ("pkg.__main__", []),  # python -m pkg: multiprocessing does not run it again
        (None, []),  # python script.py (preloaded by its path) or an interactive session
    ],
)
def test_a_main_module_started_by_name_is_preloaded_by_the_fork_server(monkeypatch, spec, preload):
    import importlib.machinery
    import types

    from sim.sweep import execute

    main = types.ModuleType("__main__")
    main.__spec__ = None if spec is None else importlib.machinery.ModuleSpec(spec, None)
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert execute._main_by_name() == preload
