"""asv benchmarks of the agent engine (``sim.engines.abm``) and the stochastic engine.

Every benchmark warms the jitted kernels up in ``setup`` (with a warm numba cache a load, else a
compile), so timings exclude compilation. Sizes are leukemic cells of one patient (one core).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from . import cmp_abm


class AgentStep:
    """One step (1 day) of the numba agent engine for one patient."""

    params: ClassVar[list] = [10_000, 100_000, 1_000_000]
    param_names: ClassVar[list] = ["cells"]
    timeout = 300

    def setup(self, cells):
        self.patient = cmp_abm.NumbaPatient(cells)

    def time_agent_step(self, cells):
        self.patient.advance(1)

    def track_agent_updates_per_s(self, cells):
        """Agent updates per second over 20 steps (1/ns per update x 1e9)."""
        import time

        t0 = time.perf_counter()
        n = self.patient.advance(20)
        return n / (time.perf_counter() - t0)

    track_agent_updates_per_s.unit = "updates/s"

    def peakmem_agent_patient(self, cells):
        cmp_abm.NumbaPatient(cells).advance(5)


class StochasticTrajectory:
    """One 10-year patient of the hybrid SSA / tau-leaping engine (stop at 5 years)."""

    timeout = 300

    def setup(self):
        from sim.engines import stochastic
        from sim.models import cml_immune as cm

        self.st = stochastic
        self.p = cm.PARAMS.vector({})
        self.t_out = np.array([0.0, 3652.5])
        self.st.simulate_stochastic(self.p, None, 1826.25, 3652.5, 1, 1, self.t_out)

    def time_stochastic_trajectory(self):
        self.st.simulate_stochastic(self.p, None, 1826.25, 3652.5, 2, 1, self.t_out)


class MesaBaseline:
    """One step of the plain Mesa model of the same rules (the baseline of the ratio)."""

    params: ClassVar[list] = [10_000]
    param_names: ClassVar[list] = ["cells"]
    timeout = 300

    def setup(self, cells):
        from sim.mesa_model import PlainCMLModel

        p, ap, y0 = cmp_abm.population(cells)
        self.model = PlainCMLModel(p, ap, seed=1, y0=y0, horizon=1e6)

    def time_mesa_step(self, cells):
        self.model.step()
