"""numba's loading and compiling, timed and announced (:mod:`sim.engines.jit`)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
from numba import njit

from sim.engines import jit


def fresh_function():
    """A jitted function no one has compiled yet (a new closure each call, no disk cache)."""
    offset = np.random.default_rng().integers(1, 1000)

    @njit
    def add(x):
        return x + offset

    return add


def test_seconds_counts_the_compile_and_nothing_after_it():
    add = fresh_function()
    before = jit.seconds()
    add(1.0)
    compiled = jit.seconds()
    add(2.0)  # compiled already: numba's compiler lock is not taken again
    assert compiled > before
    assert jit.seconds() == compiled


def test_watch_announces_a_compile_once_and_times_it():
    lines = []
    add, sub = fresh_function(), fresh_function()
    with jit.watch(lines.append) as seen:
        add(1.0)
        sub(1.0)
        add(2.0)
    assert lines == ["compiling numba functions (first run only)..."]
    assert seen.compiled == [f"{__name__}.fresh_function.<locals>.add"] * 2
    assert seen.seconds > 0


def test_watch_names_a_large_kernel(monkeypatch):
    add = fresh_function()
    key = (__name__, "fresh_function.<locals>.add")
    monkeypatch.setitem(jit.KERNELS, key, ("the test kernel", "about a moment"))
    lines = []
    with jit.watch(lines.append):
        add(1.0)
    assert lines == ["compiling the test kernel (first run only, about a moment)..."]


def test_kernel_names():
    assert jit.kernel_name("sim.engines.ode", "simulate_one")[0] == "the ODE kernel"
    bound = "cmlsim_ode_sim_models_other_0123456789ab"  # sim.engines.binding's copies
    assert jit.kernel_name(bound, "simulate_ensemble")[0] == "the ODE cohort kernel"
    assert jit.kernel_name("sim.engines.ode", "_drive") is None


_PROCESS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from sim.engines import jit
from cached_module import triple
with jit.watch() as seen:
    before = jit.seconds()
    triple(2.0)
    print(json.dumps({"compiled": seen.compiled, "lock": jit.seconds() - before}))
"""


def test_a_cached_kernel_is_loaded_not_compiled(tmp_path):
    (tmp_path / "cached_module.py").write_text(
        "from numba import njit\n\n\n@njit(cache=True)\ndef triple(x):\n    return 3 * x\n"
    )

    def process() -> dict:
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_PROCESS), str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
        return json.loads(out)

    first, second = process(), process()
    assert first["compiled"] == ["cached_module.triple"]
    assert second["compiled"] == []  # from numba's cache in tmp_path/__pycache__
    assert second["lock"] > 0  # loading it is counted as numba's time too


def test_ensure_compiled_leaves_nothing_to_the_first_call():
    add = fresh_function()
    jit.ensure_compiled(add, (1.0,))
    assert len(add.signatures) == 1
    before = jit.seconds()
    add(2.0)
    assert jit.seconds() == before
    jit.ensure_compiled(add, (np.ones(2),))  # compiled for something: left alone
    assert len(add.signatures) == 1
