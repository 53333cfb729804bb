"""
A small cohort
==============

Run 200 virtual patients of the shipped EURO-SKI scenario through the trial design and estimate
treatment-free remission with Kaplan–Meier.
"""

# %%
# The scenario has a ``[cohort]`` section (resampled Hähnel patients with spread) and a
# ``[trial]`` section (the EURO-SKI stop rule). ``size`` overrides the cohort size of the file.
from pathlib import Path

import sim
from sim import scenario
from sim.cohort import run_cohort, tfr_fractions

REPO = Path(sim.__file__).resolve().parents[1]
sc = scenario.load(REPO / "scenarios" / "cohort-euro-ski.toml")
cohort = run_cohort(sc, size=200)
table = cohort.outcomes
print(f"{len(table)} patients, {int(table['eligible'].sum())} stopped under {cohort.design}")

# %%
# The outcome table has one row per patient; :func:`sim.cohort.tfr_fractions` gives the
# Kaplan–Meier fraction still in treatment-free remission after the stop.
for months, fraction in tfr_fractions(table, (6, 12, 24)).items():
    print(f"TFR at {months:g} months: {100 * fraction:.0f} %")

# %%
# The Kaplan–Meier figure with its 95 % band and the numbers at risk.
from sim.plots import plot_km  # noqa: E402

fig = plot_km(table)
