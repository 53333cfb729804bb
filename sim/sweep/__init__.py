r"""Parameter sweeps and global sensitivity analysis, from a laptop to a Dask cluster.

A scenario with a ``[sweep]`` section varies any model, therapy, protocol or intervention
parameter of its patient over a design, runs every sample through the ODE kernel and stores one
row of summary metrics per run (optionally a coarse trajectory) in a Zarr store that can be
resumed after any interruption:

.. code-block:: toml

    [sweep]
    design = "sobol"               # "grid" | "lhs" | "sobol" | "morris"
    n = 1024                       # LHS samples / Sobol base samples (power of 2) / Morris
                                   #   trajectories; a grid has levels instead
    second_order = true            # sobol: S2 too, n (2D + 2) runs (else n (D + 2))
    levels = 4                     # grid points per parameter (default 5) / Morris levels (4)
    outputs = ["tfr_24mo", "tfr_months"]   # metrics to analyse (sim.sweep.metrics)
    phase = ["patient.s_N", "protocol.stop.at"]   # axes of the phase diagram (optional)
    chunk = 256                    # runs per task and per stored chunk (optional; default
                                   #   about 8 chunks per worker, 128-1024 runs)
    trajectory_every = "3mo"       # store a coarse trajectory per run (optional)

    [sweep.params]                 # address = range (sim.sweep.design lists the addresses)
    patient.k_E = { low = "0.001/d", high = "0.1/d", scale = "log" }
    therapy.0.dose = { low = "200mg", high = "800mg" }
    protocol.stop.at = { low = "2y", high = "5y" }
    intervention.peg-ifn.start = { low = "-6mo", high = "6mo" }   # by name or position
    # a grid: levels = 3, or values = ["300mg", "400mg", "600mg"]

From Python: ``sc = sim.scenario.load("x.toml")``, or :func:`with_sweep` to declare a sweep on
any scenario (checked as a ``[sweep]`` section is), or ``dataclasses.replace(sc, sweep=...)``
with :class:`sim.scenario.Sweep` and :class:`sim.scenario.SweepParam` (:func:`run_sweep` writes
it into the scenario text, which workers and the stored provenance read); then
:func:`run_sweep` and :func:`load_sweep`. Scripts that run sweeps on worker processes need the
usual ``if __name__ == "__main__":`` guard (the workers, or the fork server they are forked
from, import the script).

Modules: :mod:`sim.sweep.design` (addresses, ranges, the sample matrix),
:mod:`sim.sweep.runs` (design rows to kernel inputs, the kernel), :mod:`sim.sweep.metrics` (what is
kept of each run), :mod:`sim.sweep.store` (the Zarr layout, done markers, resume),
:mod:`sim.sweep.execute` (executors: serial, local processes, Dask), :mod:`sim.sweep.lifeline`
(worker processes that end with the sweep). Indices:
:mod:`sim.sensitivity`; figures: :mod:`sim.plots.sweep`.

Nothing here imports SALib, zarr, xarray or dask until a sweep is designed, stored or run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sim.sweep.design import DESIGNS, design_values, n_samples, resolve
from sim.sweep.execute import EXECUTORS, SweepError, SweepRun, run_chunk, run_chunks, run_sweep
from sim.sweep.metrics import metric_names
from sim.sweep.store import STATUS, load_sweep, markers, read_layout

if TYPE_CHECKING:
    from sim.scenario import Scenario

__all__ = [
    "DESIGNS",
    "EXECUTORS",
    "STATUS",
    "SweepError",
    "SweepRun",
    "design_values",
    "in_text",
    "load_sweep",
    "markers",
    "metric_names",
    "n_samples",
    "read_layout",
    "resolve",
    "run_chunk",
    "run_chunks",
    "run_sweep",
    "with_sweep",
]


def with_sweep(
    sc: Scenario,
    design: str,
    params: Mapping[str, Mapping[str, Any]],
    **options: Any,
) -> Scenario:
    """The scenario with a sweep declared from Python, checked as a ``[sweep]`` section would be.

    Parameters
    ----------
    sc : Scenario
        The base scenario (its own ``[sweep]``, if any, is replaced).
    design : str
        ``"grid"``, ``"lhs"``, ``"sobol"`` or ``"morris"``.
    params : mapping
        Address -> ``{"low": ..., "high": ..., "scale": "log", "levels": 3, "values": [...],
        "name": ...}`` with values as in a scenario file (``"18mo"``, ``"400mg"``) or numbers in
        the address's unit.
    **options
        The other ``[sweep]`` keys: ``n``, ``levels``, ``second_order``, ``chunk``, ``outputs``,
        ``phase``, ``trajectory_every``.

    Returns
    -------
    Scenario
        A new scenario whose ``text`` carries the sweep as TOML (so its results have the full
        provenance), validated by :func:`sim.scenario.loads`.

    Raises
    ------
    sim.scenario.ScenarioError
        A bad address, range or option, with the key path.
    """
    lines = ["[sweep]", f"design = {_toml(design)}"]
    lines += [f"{k} = {_toml(v)}" for k, v in options.items()]
    lines += ["", "[sweep.params]"]
    for path, spec in params.items():
        inner = ", ".join(f"{k} = {_toml(v)}" for k, v in spec.items())
        lines.append(f"{_toml(path)} = {{ {inner} }}")
    return _replace_section(sc, "\n".join(lines))


def in_text(sc: Scenario) -> Scenario:
    """``sc`` with its ``sweep`` written into its text, when the two differ (a sweep changed
    with :func:`dataclasses.replace`): sweep workers and the stored provenance read the text.

    Raises
    ------
    ValueError
        The sweep does not survive the round trip through TOML (it was not a valid sweep).
    """
    from sim import scenario

    if sc.sweep is None or scenario.loads(sc.text, sc.path).sweep == sc.sweep:
        return sc
    sw = sc.sweep
    opts: dict[str, Any] = {"levels": sw.levels}
    if sw.n is not None:
        opts["n"] = sw.n
    if sw.design == "sobol":
        opts["second_order"] = sw.second_order
    if sw.chunk is not None:
        opts["chunk"] = sw.chunk
    opts["outputs"] = list(sw.outputs)
    if sw.trajectory_every is not None:
        opts["trajectory_every"] = f"{sw.trajectory_every!r}d"
    if sw.phase:
        opts["phase"] = list(sw.phase)
    params = {}
    for p in sw.params:
        spec: dict[str, Any] = {"name": p.name, "scale": p.scale}
        if p.values:
            spec["values"] = list(p.values)
        else:
            spec.update(low=p.low, high=p.high)
        if p.levels is not None:
            spec["levels"] = p.levels
        params[p.path] = spec
    try:
        new = with_sweep(sc, sw.design, params, **opts)
    except scenario.ScenarioError as exc:
        raise ValueError(f"the sweep is not valid: {exc}") from None
    if new.sweep != sw:
        raise ValueError("the sweep does not survive being written as TOML")
    return new


def _replace_section(sc: Scenario, section: str) -> Scenario:
    import re
    import tomllib

    from sim import scenario

    text = sc.text
    if "sweep" in tomllib.loads(text):  # drop the file's own [sweep] tables
        text = re.sub(r"(?ms)^\[sweep(\.[^\]]*)?\].*?(?=^\[(?!sweep[\].])|\Z)", "", text)
    new = scenario.loads(text.rstrip("\n") + "\n\n" + section + "\n", sc.path)
    return dataclasses.replace(new, path=sc.path)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} into a [sweep] section")
