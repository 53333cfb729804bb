"""
Two scenarios compared
======================

Run two scenarios on the same patient and the same random numbers: stopping imatinib alone, and
stopping it with 12 months of peg-interferon afterwards.
"""

# %%
# :func:`sim.compare.run_comparison` gives every scenario the same seed (common random numbers
# for the qPCR noise), so differences come from the therapy, not from chance.
from pathlib import Path

import sim
from sim import scenario
from sim.compare import format_table, run_comparison

REPO = Path(sim.__file__).resolve().parents[1]
scenarios = [
    scenario.load(REPO / "scenarios" / name)
    for name in ("baseline-eln-stop.toml", "ifn-after-stop-12mo.toml")
]
comparison = run_comparison(scenarios)
print(format_table(comparison.results, comparison.labels))

# %%
# Both on shared axes.
from sim.plots import plot_comparison  # noqa: E402

fig = plot_comparison(comparison.results, labels=comparison.labels)
