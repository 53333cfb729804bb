"""Shared fixtures for the benchmark suite and ``benchmarks.compare``.

Two canonical 10-year ``cml_immune`` patients on imatinib 400 mg daily (``interval`` PK):

- :data:`ELN_STOP` stops under the ELN 2020 rule (TKI >= 5 years, MR4 sustained >= 2 years, one
  stop, restart on loss of MMR, decisions on measured qPCR): what ``cmlsim run`` does for the
  shipped ``scenarios/imatinib-eln-stop.toml``, over 10 instead of 12 years.
- :data:`FIXED_STOP` stops at exactly 5 years and never restarts, with decisions on the true
  BCR-ABL1 (no random numbers): the drive is u = 1 before the stop and 0 after, so SciPy can
  integrate the same problem in two pieces.

:data:`CONTINUOUS` stays on TKI (no stop), so that its horizon can be anything
(:func:`with_horizon`).

Everything here is cheap to import (no jitting at import time); :func:`warm_up` compiles or
loads the kernels from numba's on-disk cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim import models, run, scenario
from sim.engines import ode, rng

MODEL = "cml_immune"
HORIZON_YEARS = 10
STOP_YEARS = 5
#: Visit and event buffers of the ensemble benchmarks (10 years of ELN 2020 monitoring needs
#: about 60 visits; ``sim.run.MAX_VISITS`` = 1024 is the single-run default).
ENSEMBLE_VISITS = 128
ENSEMBLE_EVENTS = 16

_THERAPY = """
[[therapy]]
drug = "imatinib"
dose = "400mg"
every = "1d"
start = "diagnosis"
pk = "interval"
"""

ELN_STOP = f"""
[scenario]
name = "bench-eln-stop"
model = "{MODEL}"
engine = "ode"
horizon = "{HORIZON_YEARS}y"
seed = 20261125
{_THERAPY}
[protocol]
monitoring = "eln2020"
stop = {{ after = "5y", sustained = "MR4", for = "2y" }}
restart = "loss_of_mmr"
max_stops = 1
decisions = "measured"
"""

FIXED_STOP = f"""
[scenario]
name = "bench-fixed-stop"
model = "{MODEL}"
engine = "ode"
horizon = "{HORIZON_YEARS}y"
seed = 1
{_THERAPY}
[protocol]
monitoring = "eln2020"
stop = {{ at = "{STOP_YEARS}y" }}
restart = "never"
decisions = "true"
"""


#: TKI throughout with ELN 2020 visits and no stop: any horizon is valid (the scaling series).
CONTINUOUS = f"""
[scenario]
name = "bench-continuous"
model = "{MODEL}"
engine = "ode"
horizon = "{HORIZON_YEARS}y"
seed = 20261125
{_THERAPY}
[protocol]
monitoring = "eln2020"
stop = "never"
decisions = "measured"
"""


def with_horizon(text: str, years: float) -> str:
    """A scenario text of this module with its horizon set to ``years``."""
    old = f'horizon = "{HORIZON_YEARS}y"'
    if old not in text:
        raise ValueError(f"scenario text has no line {old}")
    return text.replace(old, f'horizon = "{years:g}y"')


REPO = Path(__file__).resolve().parents[1]
SHIPPED_SCENARIO = REPO / "scenarios" / "imatinib-eln-stop.toml"


def _simulate_kwargs(sc: scenario.Scenario, arr: dict, rtol: float, atol: np.ndarray) -> dict:
    """Keyword arguments of ``sim.run.simulate`` for a scenario (as ``sim.run.run_scenario``)."""
    return {
        "qpcr": arr["qpcr"], "seed": sc.seed, "rtol": rtol, "atol": atol,
        "t_out": arr["t_out"], "iv": arr["iv"],
    }  # fmt: skip


@dataclass
class Problem:
    """One patient: ``sim.run.simulate``'s inputs, and the kernel's arguments (preallocated).

    ``args`` are the positional arguments ``sim.run.simulate`` passes to
    ``sim.engines.ode.simulate_one``, captured before the call; :meth:`reset` restores the ones the
    kernel changes and expects fresh (random stream, summary, stats).
    """

    sc: scenario.Scenario
    arr: dict
    kwargs: dict
    args: list
    pristine: dict[int, np.ndarray]
    names: list[str]

    def simulate(self) -> dict[str, np.ndarray]:
        """The public wrapper ``sim.run.simulate`` (allocation, seeding, the kernel, trimming)."""
        a = self.arr
        return run.simulate(self.sc.model, a["params"], a["sched"], a["proto"], **self.kwargs)

    def reset(self) -> None:
        """Restore the kernel arguments it changes in place and expects fresh."""
        for i, value in self.pristine.items():
            self.args[i][...] = value

    def kernel(self) -> None:
        """The bare jitted kernel on the preallocated arrays (call :meth:`reset` first)."""
        ode.simulate_one(*self.args)

    def arg(self, name: str) -> np.ndarray:
        """A kernel argument by its name in ``simulate_one``'s signature."""
        return self.args[self.names.index(name)]

    @property
    def stats(self) -> np.ndarray:
        return self.args[-1]

    @property
    def y_out(self) -> np.ndarray:
        return self.arg("y_out")

    @property
    def proto(self) -> np.ndarray:
        return self.arr["proto"]


#: Kernel arguments that are changed in place and must be fresh at each call.
_FRESH = ("state", "summary", "stats")


def problem(text: str = ELN_STOP, rtol: float | None = None) -> Problem:
    """One patient of a scenario text; ``rtol`` overrides the scenario's (atol follows)."""
    sc = scenario.loads(text, "<benchmark>")
    model = models.get(sc.model)
    arr = run.scenario_arrays(sc)
    rtol = sc.rtol if rtol is None else float(rtol)
    atol = arr["atol"] if rtol == sc.rtol else model.atol(rtol)
    kwargs = _simulate_kwargs(sc, arr, rtol, atol)
    named = run.kernel_arguments(sc.model, arr["params"], arr["sched"], arr["proto"], **kwargs)
    names = [name for name, _ in run.KERNEL_ARGUMENTS]
    args = [named[name] for name in names]
    pristine = {names.index(k): args[names.index(k)].copy() for k in _FRESH}
    return Problem(sc=sc, arr=arr, kwargs=kwargs, args=args, pristine=pristine, names=names)


def ode_module() -> str:
    """The model module the kernels of :mod:`sim.engines.ode` are bound to."""
    return models.get(MODEL).module


def _per_patient() -> list[bool]:
    """For each ``simulate_one`` argument: one row per patient in ``simulate_ensemble``?"""
    return [per for _, per in run.KERNEL_ARGUMENTS]


@dataclass
class Ensemble:
    """Arguments of ``sim.engines.ode.simulate_ensemble`` for m patients (preallocated)."""

    args: list
    pristine: dict[int, np.ndarray]
    names: list[str]

    @property
    def size(self) -> int:
        return self.args[0].shape[0]

    def arg(self, name: str) -> np.ndarray:
        """An argument by the name of the matching ``simulate_one`` argument."""
        return self.args[self.names.index(name)]

    @property
    def ys(self) -> np.ndarray:
        return self.arg("y_out")

    @property
    def stats(self) -> np.ndarray:
        return self.args[-1]

    def reset(self) -> None:
        for i, value in self.pristine.items():
            self.args[i][...] = value

    def run(self) -> None:
        """One ensemble call, after restoring random streams, summaries and stats (so every
        repeat does the same work; the restore is a few µs per patient at most)."""
        self.reset()
        ode.simulate_ensemble(*self.args)


def parameter_matrix(m: int, seed: int = 12345, spread: float = 0.3) -> np.ndarray:
    """m parameter vectors around the defaults: p_xy and e_tki log-normal (sd ``spread``)."""
    spec = models.get(MODEL)
    base = spec.params.vector({})
    gen = np.random.default_rng(seed)
    ps = np.tile(base, (m, 1))
    for name in ("p_xy", "e_tki"):
        ps[:, spec.params.index(name)] *= np.exp(spread * gen.standard_normal(m))
    return np.ascontiguousarray(ps)


def ensemble(m: int, text: str = ELN_STOP) -> Ensemble:
    """m patients of the scenario ``text`` that differ in p_xy and e_tki (the single-run arrays of
    :func:`problem` repeated per patient; visit and event logs cut to ``ENSEMBLE_VISITS`` and
    ``ENSEMBLE_EVENTS`` rows)."""
    one = problem(text)
    spec = models.get(one.sc.model)
    ps = parameter_matrix(m)
    rows = {
        "p": ps,
        "y0": np.array([spec.initial_state(p) for p in ps]).reshape(m, -1),
        "state": rng.seed_states(one.sc.seed, m),
    }
    cut = {"visits": ENSEMBLE_VISITS, "events": ENSEMBLE_EVENTS}
    args = []
    for name, arg, per in zip(one.names, one.args, _per_patient()):
        if not per:
            args.append(arg)
            continue
        if name in rows:
            args.append(np.ascontiguousarray(rows[name], dtype=arg.dtype))
            continue
        tmpl = arg[: cut[name]] if name in cut else arg
        full = np.empty((m, *tmpl.shape), dtype=tmpl.dtype)
        full[...] = tmpl
        args.append(full)
    pristine = {one.names.index(k): args[one.names.index(k)].copy() for k in _FRESH
                if k in one.names}  # fmt: skip
    return Ensemble(args=args, pristine=pristine, names=one.names)


def warm_up() -> None:
    """Compile (or load from numba's cache) the single-patient and ensemble kernels."""
    p = problem(FIXED_STOP)
    p.reset()
    p.kernel()
    p.simulate()
    ensemble(2).run()


# --- first call in a fresh process -------------------------------------------------------------

#: Kernels whose first call ``first_call_seconds`` times: (set-up code, the call). The set-up
#: imports what the kernel needs; the call runs it on tiny inputs.
FIRST_CALL: dict[str, tuple[str, str]] = {
    "simulate_one": ("p = common.problem(common.ELN_STOP)", "p.reset(); p.kernel()"),
    "simulate_ensemble": ("e = common.ensemble(4)", "e.run()"),
    "stochastic": (
        "from sim.engines import stochastic\n"
        "from sim.models import cml_immune\n"
        "par = cml_immune.PARAMS.defaults()",
        "stochastic.simulate_stochastic(par, horizon=60.0, n=2, seed=1)",
    ),
    "floor": (
        "import numpy as np\nfrom benchmarks import floor\n"
        "alive = np.ones(1000, np.uint8); st = floor.seed_state()",
        "floor.death_step(alive, st, 0.01)",
    ),
}

_FIRST_CALL = r"""
import json, sys, time
t0 = time.perf_counter()
from benchmarks import common
{setup}
def call():
    {call}
t1 = time.perf_counter()
call()
t2 = time.perf_counter()
call()
t3 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "first_call": t2 - t1, "second_call": t3 - t2}}))
"""


def first_call_seconds(kind: str = "simulate_one", fresh_cache: bool = True) -> dict[str, float]:
    """Time of the first kernel call in a fresh Python process.

    With ``fresh_cache`` the child gets an empty ``NUMBA_CACHE_DIR``, so the first call compiles
    every jitted function it reaches (the cost a new machine or a changed kernel pays); without,
    it uses the normal cache (a warm cache turns the compile into a load). ``kind`` is a key of
    :data:`FIRST_CALL`. Returns seconds for ``import`` (of ``sim`` through this module and the
    kernel's set-up), ``first_call`` and ``second_call``.
    """
    if kind not in FIRST_CALL:
        raise ValueError(f"kind must be one of {', '.join(FIRST_CALL)}, found {kind!r}")
    setup, call = FIRST_CALL[kind]
    code = _FIRST_CALL.format(setup=setup, call=call)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory(prefix="cmlsim-numba-cache-") as cache:
        if fresh_cache:
            env["NUMBA_CACHE_DIR"] = cache
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])
