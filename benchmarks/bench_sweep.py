"""asv benchmarks of a sweep chunk: the shipped Sobol sweep's first 256 runs through the kernel.

``time_sweep_chunk`` is what a worker does per task before writing (kernel inputs for the
design rows, the kernel, the metrics); ``time_sweep_chunk_stored`` adds the Zarr writes and the
done marker (``sim.sweep.run_chunk`` on a store made in ``setup``); ``peakmem_sweep_chunk`` is
the peak resident memory of a process running one chunk. Kernels are loaded in ``setup``.

Run from the repository root::

    asv run --python=same --quick --show-stderr --bench bench_sweep
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numba

from sim import scenario
from sim.sweep import design, run_chunk, store
from sim.sweep.runs import Runner

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "sweep-sobol-tfr.toml"
CHUNK = 256


class SweepChunk:
    """One chunk of 256 runs of ``scenarios/sweep-sobol-tfr.toml`` (10 years each), one
    numba thread, as a worker runs it."""

    timeout = 300

    def setup(self):
        numba.set_num_threads(1)
        self.sc = scenario.load(SCENARIO)
        self.values = design.design_values(self.sc.sweep, self.sc.seed)
        self.runner = Runner(self.sc)
        self.runner.run(self.values[:CHUNK], 0)  # warm up
        self.tmp = tempfile.mkdtemp(prefix="cmlsim-asv-sweep-")
        sc = scenario.loads(
            self.sc.text.replace("[sweep]\n", f"[sweep]\nchunk = {CHUNK}\n"), str(SCENARIO)
        )
        self.layout = store.create(sc, self.values, self.tmp)
        run_chunk(str(self.layout.path), self.layout.sweep_id, 0)

    def teardown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_sweep_chunk(self):
        self.runner.run(self.values[:CHUNK], 0)

    def time_sweep_chunk_stored(self):
        run_chunk(str(self.layout.path), self.layout.sweep_id, 1)

    def peakmem_sweep_chunk(self):
        self.runner.run(self.values[:CHUNK], 0)
