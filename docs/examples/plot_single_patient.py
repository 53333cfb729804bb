"""
A single patient
================

Load a shipped scenario, run it on the ODE engine and look at the result: the summary of the
response, the qPCR visits and the BCR::ABL1 kinetics.
"""

# %%
# A scenario is a TOML file; :func:`sim.scenario.load` checks it and returns a frozen
# :class:`~sim.scenario.Scenario`. This one is a standard imatinib patient who stops under the
# ELN 2020 criteria (TKI for at least 5 years, MR4 sustained for at least 2).
from pathlib import Path

import sim
from sim import scenario
from sim.run import run_scenario

REPO = Path(sim.__file__).resolve().parents[1]
sc = scenario.load(REPO / "scenarios" / "imatinib-eln-stop.toml")
print(sc.describe())

# %%
# :func:`sim.run.run_scenario` runs it. The first call in a fresh environment compiles the kernel
# (numba caches it for later processes).
result = run_scenario(sc)
months = 365.25 / 12
for key in ("t_mmr", "t_mr4", "t_mmr_measured", "t_mr4_measured", "stop_time"):
    print(f"{key:16s} {result.summary[key] / months:6.1f} months")

# %%
# The visits hold the true and the measured BCR::ABL1 (% IS) of every monitoring visit; an
# undetectable sample is 0 with its detection limit beside it.
visits = result.visits
for t, true, meas, lod in list(
    zip(visits["time"], visits["true_pct"], visits["measured_pct"], visits["lod_pct"])
)[:6]:
    print(f"{t / months:5.1f} mo  true {true:9.4f} %  measured {meas:9.4f} %  LoD {lod:.4f} %")

# %%
# The kinetics figure: BCR::ABL1 on a log axis with the MR levels, the qPCR points and the TKI
# bar. Without a path it is only drawn, not written.
from sim.plots import plot_kinetics  # noqa: E402

fig = plot_kinetics(result)
