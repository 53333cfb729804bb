"""asv benchmarks of the ODE engine (``sim.engines.ode``) on 10-year ``cml_immune`` patients.

Every benchmark warms the jitted kernels up in ``setup`` (asv runs each benchmark in a new
process; with a warm numba cache the warm-up is a ~0.1-1 s load, otherwise a compile), so the
timings exclude compilation; ``bench_jit`` measures compilation on its own, in a fresh subprocess
with an empty ``NUMBA_CACHE_DIR``.

Run from the repository root::

    asv machine --yes                      # once per machine
    asv run --python=same --quick --show-stderr
"""

from __future__ import annotations

import time
from typing import ClassVar

import numba
import numpy as np

from . import common


class Trajectory:
    """One 10-year patient: imatinib 400 mg daily (interval PK), one stop under the ELN 2020
    rule."""

    params: ClassVar[list] = [1e-6, 1e-8]
    param_names: ClassVar[list] = ["rtol"]
    timeout = 300

    def setup(self, rtol):
        common.warm_up()
        self.problem = common.problem(common.ELN_STOP, rtol=rtol)
        self.problem.reset()
        self.problem.kernel()
        self.problem.simulate()

    def time_trajectory(self, rtol):
        """The public wrapper ``sim.run.simulate`` (allocation, seeding and the kernel)."""
        self.problem.simulate()

    def time_kernel(self, rtol):
        """The bare kernel ``sim.engines.ode.simulate_one`` on preallocated arrays."""
        self.problem.reset()
        self.problem.kernel()

    def track_rhs_calls(self, rtol):
        """Right-hand-side evaluations per trajectory (the work behind the times)."""
        self.problem.reset()
        self.problem.kernel()
        return int(self.problem.stats[common.ode.ST_RHS])

    track_rhs_calls.unit = "calls"


class Horizon:
    """The bare kernel on one patient on TKI throughout over 2, 10 and 40 years (ELN 2020 visits,
    weekly output): cost against simulated time (``benchmarks.scaling`` fits the exponent)."""

    params: ClassVar[list] = [2, 10, 40]
    param_names: ClassVar[list] = ["years"]
    timeout = 300

    def setup(self, years):
        common.warm_up()
        self.problem = common.problem(common.with_horizon(common.CONTINUOUS, years))
        self.problem.reset()
        self.problem.kernel()

    def time_kernel(self, years):
        self.problem.reset()
        self.problem.kernel()


class Ensemble:
    """``simulate_ensemble`` over a parameter matrix (p_xy and e_tki log-normal around the
    defaults), parallel over patients with all numba threads."""

    params: ClassVar[list] = [100, 1000]
    param_names: ClassVar[list] = ["size"]
    timeout = 300

    def setup(self, size):
        common.warm_up()
        self.ensemble = common.ensemble(size)

    def time_ensemble(self, size):
        self.ensemble.run()


class Throughput:
    """Trajectories per second of ``simulate_ensemble`` (1000 patients), by numba thread count."""

    params: ClassVar[list] = sorted({1, numba.config.NUMBA_NUM_THREADS})
    param_names: ClassVar[list] = ["threads"]
    timeout = 300
    size = 1000
    repeats = 3

    def setup(self, threads):
        common.warm_up()
        self.ensemble = common.ensemble(self.size)
        self.previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        self.ensemble.run()

    def teardown(self, threads):
        numba.set_num_threads(self.previous)

    def track_trajectories_per_second(self, threads):
        """Median over a few ensemble calls of patients / wall time."""
        rates = []
        for _ in range(self.repeats):
            t0 = time.perf_counter()
            self.ensemble.run()
            rates.append(self.size / (time.perf_counter() - t0))
        return float(np.median(rates))

    track_trajectories_per_second.unit = "trajectories/s"


class Memory:
    """Peak resident memory of a process that builds and runs a 1000-patient ensemble (inputs,
    weekly outputs and logs allocated inside the benchmark; includes the loaded kernels)."""

    timeout = 300
    size = 1000

    def setup(self):
        common.warm_up()

    def peakmem_ensemble_1000(self):
        common.ensemble(self.size).run()
