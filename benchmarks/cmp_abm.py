"""The agent engine's benchmark numbers in one run (issue 5), for ``benchmarks.compare``.

- the floor: a minimal random update (one xoshiro256** uniform, one compare, one byte written
  per cell) in numba, ns per update;
- the numba agent engine (:func:`sim.engines.abm.advance`, one patient, one core): ns per
  agent update at 1e4, 1e5 and 1e6 cells;
- the plain Mesa model of the same rules (:class:`sim.mesa_model.PlainCMLModel`) at 1e4 and 1e5
  cells, and its ratio to the numba engine;
- the stochastic engine: time per 10-year trajectory (default patient, TKI stop at 5 years).

The population: the default ``cml_immune`` patient with no crowding (K_y = 1e12), no immune
kill (m = m_N = 0; the immune cells are still updated) and the TKI kill equal to the division
rate, so it neither grows nor shrinks on average; 10 % of the cells
quiescent, ~100 T cells and ~760 NK cells. Every figure is the median of several timed runs
(compile excluded), in CPU time of the process (the machine is shared; wall time would count
other processes' time slices). Run ``python -m benchmarks.cmp_abm [--quick]``.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run by its path: import the package from the repository
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "benchmarks"

import argparse
import os
import time

import numpy as np
from numba import njit

from sim.engines import abm, rng
from sim.models import cml_immune as cm

SIZES = (10_000, 100_000, 1_000_000)
MESA_SIZES = (10_000, 100_000)


@njit(cache=True)
def minimal_update(cells, state, threshold):
    """Per cell: one xoshiro256** draw, compare with ``threshold`` (an integer of 53 bits),
    write one byte. The floor under any agent update."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for i in range(cells.shape[0]):
        m, s0, s1, s2, s3 = abm._next53(s0, s1, s2, s3)  # the engine's own generator step
        cells[i] = cells[i] ^ (np.int64(m) < threshold)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


def population(n_cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(params, abm params, y0 as X, Y, Z, E, N) of the benchmark population."""
    p = cm.PARAMS.vector({"K_y": 1e12, "m": 0.0, "m_N": 0.0})
    p[cm.E_TKI] = p[cm.P_Y]  # division and death balance: the population stays near its size
    ap = abm.abm_vector()
    y0 = np.array([0.1 * n_cells, 0.9 * n_cells, 100.0, 0.1, 190.0])
    return p, ap, y0


class NumbaPatient:
    """One patient of the numba engine, ready to advance (compiled on construction)."""

    def __init__(self, n_cells: int, seed: int = 1) -> None:
        self.p, self.ap, y0 = population(n_cells)
        self.ctl = abm.control_vector(max_agents=4 * n_cells)
        cls = abm.class_sensitivities(0.0, 0.0, 8)
        init = abm.initial_agents(self.p, self.ap, y0)
        self.ws = abm.new_state(init, self.ap, cls, self.ctl, rng.seed_states(seed, 1)[0].copy())
        self.on = np.zeros(5)
        self.on[0] = 1.0
        self.scratch = (np.zeros(abm.EV_N, np.int64), np.zeros((4, 2)), np.zeros((2, 2)),
                        np.zeros(3, np.int64))  # fmt: skip
        self.advance(1)

    def advance(self, steps: int) -> int:
        """Advance; return the agent updates done."""
        before = int(self.ws[9][abm.IX_UPDATES])
        abm.advance(self.ws, self.p, self.ap, self.on, self.on, np.inf, self.ctl, *self.scratch,
                    steps)  # fmt: skip
        return int(self.ws[9][abm.IX_UPDATES]) - before


def _median_ns(fn, repeats: int) -> float:
    """Median over ``repeats`` calls of CPU time per unit of work (``fn`` returns the units).

    CPU time of this process (``time.process_time``), not wall time: this 2-core machine is
    shared, and time-slicing with other processes would otherwise inflate every figure.
    """
    vals = []
    for _ in range(repeats):
        t0 = time.process_time()
        n = fn()
        vals.append((time.process_time() - t0) / n * 1e9)
    return float(np.median(vals))


def measure(quick: bool = False) -> dict:
    """The benchmark record (see the module docstring); ``quick``: fewer repeats and steps."""
    import numba

    reps = 3 if quick else 7
    rec: dict = {"threads": numba.get_num_threads(), "load": os.getloadavg()[0]}
    cells = np.zeros(1_000_000, dtype=np.uint8)
    st = rng.seed_states(3, 1)[0].copy()
    minimal_update(cells[:10], st, np.int64(1 << 52))

    def floor():
        minimal_update(cells, st, np.int64(1 << 52))
        return cells.size

    rec["floor_ns"] = _median_ns(floor, reps * 3)
    numba_ns = {}
    for n in SIZES:
        pat = NumbaPatient(n)
        steps = max(1, int(2e6 // n)) if quick else max(2, int(1e7 // n))
        numba_ns[n] = _median_ns(lambda pat=pat, steps=steps: pat.advance(steps), reps)
    rec["numba_ns_per_update"] = numba_ns
    from sim.mesa_model import PlainCMLModel

    mesa_ns = {}
    for n in MESA_SIZES:
        p, ap, y0 = population(n)
        model = PlainCMLModel(p, ap, seed=1, y0=y0, u_tki=1.0, horizon=1e6)

        def mesa_step(model=model):
            k = len(model.agents)
            model.step()
            return k

        mesa_step()
        mesa_ns[n] = _median_ns(mesa_step, 1 if (quick and n > 10_000) else reps)
    rec["mesa_ns_per_update"] = mesa_ns
    rec["mesa_ratio"] = {n: mesa_ns[n] / numba_ns[n] for n in MESA_SIZES}
    from sim.engines import stochastic

    p = cm.PARAMS.vector({})
    t_out = np.array([0.0, 3652.5])
    stochastic.simulate_stochastic(p, None, 1826.25, 3652.5, 1, 1, t_out)
    times = []
    for k in range(3 if quick else 9):
        t0 = time.process_time()
        stochastic.simulate_stochastic(p, None, 1826.25, 3652.5, 100 + k, 1, t_out)
        times.append(time.process_time() - t0)
    rec["stochastic_s_per_10y"] = float(np.median(times))
    return rec


def report_lines(rec: dict) -> list[str]:
    """The record as printable lines."""
    lines = [
        f"agent engine (numba threads {rec['threads']}, load {rec['load']:.2f}; one patient = "
        "one core; medians of CPU time)",
        f"  minimal random update (floor): {rec['floor_ns']:.2f} ns/update",
    ]
    for n, v in rec["numba_ns_per_update"].items():
        lines.append(f"  numba agent engine, {int(n):>9,} cells: {v:6.2f} ns/update "
                     f"({v / rec['floor_ns']:.1f}x floor; goal <= 5)")  # fmt: skip
    for n, v in rec["mesa_ns_per_update"].items():
        lines.append(f"  plain Mesa model,   {int(n):>9,} cells: {v:8.0f} ns/update, "
                     f"{rec['mesa_ratio'][n]:.0f}x the numba engine (goal >= 200x)")  # fmt: skip
    lines.append(f"  stochastic engine: {rec['stochastic_s_per_10y'] * 1e3:.1f} ms per 10-year "
                 "trajectory (default patient, stop at 5 years)")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = ap.parse_args(argv)
    print("\n".join(report_lines(measure(args.quick))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
