"""Regression: a monitoring visit inside the very step where stiffness is detected.

Found by the sweep layer (issue 6): the kernel returned that step without its start and size, so
reading the visit from the dense output divided by zero. The parameters are the failing sample.
"""

from pathlib import Path

import numpy as np

from sim import run, scenario
from sim.engines import ode

SWEEP = Path(__file__).parents[2] / "scenarios" / "sweep-sobol-tfr.toml"


def test_visit_inside_the_step_that_turns_stiff_is_read_from_that_step():
    text = SWEEP.read_text().split("[sweep]")[0]
    text = text.replace(
        "hahnel_patient = 10",
        "hahnel_patient = 10\ns_N = 18.992582080510946\nm_N = 0.0002520583806354341\n"
        'k_E = "0.014843385736409071/d"\ne_tki = "0.0892562566263768/d"',
    )
    text = text.replace('stop = { at = "4y" }', 'stop = { at = "1270.3504812684841d" }')
    text = text.replace('dose = "90ug"', 'dose = "0.16006097182631493mg"')
    start = '{ anchor = "tki_stop", offset = "-83.36433415208012d" }'
    text = text.replace('start = "tki_stop"', f"start = {start}")
    text = text.replace('duration = "12mo"', 'duration = "148.6591680268175d"')
    sc = scenario.loads(text, str(SWEEP))
    res = run.run_scenario(sc)
    assert res.stats["failures"] == 0
    t = res.visits["time"]
    assert np.all(np.diff(t) > 0)  # visits in order, none repeated
    assert np.isfinite(res.summary["stop_time"])
    assert ode.ST_N > ode.ST_STIFF
