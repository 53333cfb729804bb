"""asv benchmarks of virtual cohorts: ``sim.cohort.run_cohort`` on the shipped EURO-SKI scenario.

``scenarios/cohort-euro-ski.toml`` (the 21 Hähnel patients resampled with spread, NK levels and
NK kill varying; 12 years; ELN 2020 visits; stop under the EURO-SKI rule) at several sizes: the
time a user waits for ``cmlsim cohort --size N`` minus file writing (sampling, the ensemble kernel
over all numba threads, the outcome table). Patients with a wide immune window make the explicit
solver stiff, so patients differ in cost by orders of magnitude and the cost per patient is an
average over the cohort's mix. ``setup`` warms the kernels up on a 2-patient cohort.
"""

from __future__ import annotations

import time
from typing import ClassVar

from sim import scenario
from sim.cohort import run_cohort

from . import common

SCENARIO = common.REPO / "scenarios" / "cohort-euro-ski.toml"


def _warm() -> scenario.Scenario:
    sc = scenario.load(SCENARIO)
    run_cohort(sc, size=2)
    return sc


class Cohort:
    """Wall time of a cohort, by size (all numba threads)."""

    params: ClassVar[list] = [100, 1000]
    param_names: ClassVar[list] = ["size"]
    timeout = 600
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0

    def setup(self, size):
        self.sc = _warm()

    def time_cohort(self, size):
        run_cohort(self.sc, size=size)

    def peakmem_cohort(self, size):
        run_cohort(self.sc, size=size)

    def track_patients_per_second(self, size):
        """Patients per second of wall time, the best of two runs (least disturbed by other
        load on a shared machine)."""
        best = 0.0
        for _ in range(2):
            t0 = time.perf_counter()
            run_cohort(self.sc, size=size)
            best = max(best, size / (time.perf_counter() - t0))
        return best

    track_patients_per_second.unit = "patients/s"
