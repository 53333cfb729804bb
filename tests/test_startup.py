"""What a fresh process imports on the way to its first kernel call (``cmlsim run``, a sweep
worker): the kernel path only, with the heavy optional dependencies left for later, and numba's
start without ``scipy.linalg`` (see ``sim._let_numba_find_blas``).

Each check runs in a subprocess, since this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Not needed to run a scenario's kernel, and slow to import.
HEAVY = ("matplotlib", "xarray", "pandas", "zarr", "dask", "mesa", "SALib", "scipy.stats")
#: Imported by ``scipy.linalg``'s package (its array-API layer), which numba would otherwise
#: import at its start.
LINALG = ("scipy.linalg", "numpy.f2py", "numpy.testing")


def imported_after(code: str) -> set[str]:
    """The modules in ``sys.modules`` after ``code`` ran in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_run_path_imports_nothing_heavy():
    mods = imported_after("import sim.run, sim.scenario, sim.cli")
    assert not mods & {*HEAVY, *LINALG, "numba"}


def test_a_scenario_reaches_its_kernel_without_scipy_linalg_or_heavy_imports():
    mods = imported_after(
        "from sim.scenario import load\n"
        "from sim.run import scenario_arrays, simulate\n"
        "sc = load('scenarios/imatinib-eln-stop.toml')\n"
        "a = scenario_arrays(sc)\n"
        "raw = simulate(sc.model, a['params'], a['sched'], a['proto'], qpcr=a['qpcr'],\n"
        "               seed=sc.seed, rtol=sc.rtol, atol=a['atol'], t_out=a['t_out'], iv=a['iv'])\n"
        "assert raw['stats'][0] > 0"
    )
    assert "numba" in mods and "scipy.linalg.cython_blas" in mods
    assert not mods & {*HEAVY, *LINALG}


def test_a_sweep_worker_loads_the_kernels_without_the_store_libraries():
    mods = imported_after("from sim.sweep import execute\nexecute.warm_kernels(1)")
    assert not mods & set(HEAVY)


def test_scipy_linalg_works_after_numba_started_without_it():
    code = (
        "import numpy as np, sim\n"
        "sim._let_numba_find_blas()\n"
        "from numba import njit\n"
        "njit(lambda x: x + 1)(1.0)  # numba's start: its BLAS check\n"
        "import scipy.linalg\n"
        "from scipy.linalg import cython_blas, lu_factor, lu_solve\n"
        "assert cython_blas is sys.modules['scipy.linalg.cython_blas']\n"
        "a = np.array([[4.0, 1.0], [2.0, 3.0]])\n"
        "x = lu_solve(lu_factor(a), np.array([1.0, 2.0]))\n"
        "assert np.allclose(a @ x, [1.0, 2.0])"
    )
    assert "scipy.linalg" in imported_after("import sys\n" + code)
