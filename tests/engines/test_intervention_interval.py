"""Interval-mean interventions (``pk = "interval"`` on an ``[[intervention]]``).

The course's effect is its steady-state interval mean, constant from the first dose to one
interval after the last (so the integrator does not restart at every dose); the washout is then
resolved from the steady-state trough. Checked here: the trough against dosing to steady state
dose by dose; the drive during and after the course; the same dose count as resolved doses; and,
as for the TKI's two PK modes (DESIGN.md section 4), that the two modes give BCR-ABL1
trajectories within 0.1 log10 of each other and the same relapse on the shipped interferon
scenarios.
"""

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sim import run, scenario
from sim.engines import ode
from sim.models import cml_immune as cm
from sim.therapy import drive as dv
from sim.therapy import interventions as iv_mod
from sim.therapy.drugs import get_drug
from sim.therapy.interventions import get_product
from tests.engines.test_interventions_kernel import protocol

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize("product", ["peginterferon-alfa-2a", "peginterferon-alfa-2b", "nivolumab"])
def test_steady_trough_is_the_limit_of_repeated_doses(product):
    prod = get_product(product)
    vec = prod.vector()
    dose, every = prod.standard_dose, prod.standard_interval
    a, c = 0.0, 0.0
    for _ in range(2000):  # dose by dose to steady state (2000 intervals >> any half-life)
        a, c = iv_mod.give(a, c, dose, vec)
        a, c = iv_mod.advance(a, c, every, vec)
    a_ss, c_ss = ode._steady_trough(dose, every, vec)
    assert a_ss == pytest.approx(a, rel=1e-10, abs=1e-300)
    assert c_ss == pytest.approx(c, rel=1e-10)
    assert c_ss > 0.0


def _course(mode, product="peginterferon-alfa-2a", offset=100.0, duration=180.0):
    prod = get_product(product)
    return SimpleNamespace(
        name="c", product=prod, anchor="diagnosis", offset=offset, duration=duration,
        every=prod.standard_interval, count=None, dose=prod.standard_dose, pk=mode,
    )  # fmt: skip


def _run(mode, horizon=700.0):
    p = cm.PARAMS.vector()
    sched = run.schedule_row(get_drug("imatinib"))
    return run.simulate(
        "cml_immune", p, sched[None, :], protocol(horizon), rtol=1e-8,
        t_out=np.arange(0.0, horizon + 1e-9, 0.5), iv=run.compile_interventions([_course(mode)]),
    )  # fmt: skip


def test_interval_course_drive_and_doses():
    a = _run("doses")
    b = _run("interval")
    prod = get_product("peginterferon-alfa-2a")
    mean = iv_mod.interval_mean_effect(prod.standard_dose, prod.standard_interval, prod.vector())
    t = b["t"]
    ifn = b["drive"][:, dv.IFN]
    n = int(np.ceil(180.0 / 7.0))  # doses at 100, 107, ... before 280
    end = 100.0 + n * 7.0
    assert np.all(ifn[t <= 100.0] == 0.0)  # a row at a dose shows the drive just before it
    course = (t > 100.0) & (t <= end)
    assert np.allclose(ifn[course], mean, rtol=1e-12)
    # washout from the trough: at the course end it continues the resolved doses' curve
    after = (t > end + 0.25) & (t < end + 60.0)
    assert np.allclose(ifn[after], a["drive"][after, dv.IFN], rtol=1e-6, atol=1e-12)
    assert np.all(ifn[t > end + 120.0] == 0.0)  # switched off once negligible
    # the mean effect over the course equals the resolved one at steady state (a check on
    # interval_mean_effect against the kernel's own PK): a mid-course week
    week = (t >= 100.0 + 21 * 7.0) & (t < 100.0 + 22 * 7.0)
    assert a["drive"][week, dv.IFN].mean() == pytest.approx(mean, rel=2e-3)
    for r in (a, b):
        row = r["interventions"][0]
        assert row[ode.IVO_DOSES] == n
        assert row[ode.IVO_START] == 100.0
        assert row[ode.IVO_LAST_DOSE] == 100.0 + (n - 1) * 7.0
    # fewer steps: no restart at every dose
    assert b["stats"][ode.ST_RESTARTS] < a["stats"][ode.ST_RESTARTS]


@pytest.mark.parametrize(
    "name", ["ifn-after-stop-12mo.toml", "ifn-first-6mo.toml", "sweep-sobol-tfr.toml"]
)
def test_interval_and_resolved_doses_agree_on_shipped_interferon_scenarios(name):
    text = (SCENARIOS / name).read_text(encoding="utf-8")
    out = {}
    head, sep, course = text.partition("[[intervention]]\n")
    course = re.sub(r"(?m)^pk = .*\n", "", course)  # the scenario's own choice, if any
    for mode in ("doses", "interval"):
        body = f'{head}{sep}pk = "{mode}"\n{course}'
        out[mode] = run.run_scenario(scenario.loads(body, name))
    a, b = out["doses"], out["interval"]
    assert b.interventions[0]["doses"] == a.interventions[0]["doses"] > 0
    floor = 1e-5  # % IS, two logs below MR5
    la = np.log10(np.maximum(a.bcr_abl, floor))
    lb = np.log10(np.maximum(b.bcr_abl, floor))
    assert np.max(np.abs(la - lb)) <= 0.1
    assert a.summary["relapse_time"] == b.summary["relapse_time"] or (
        np.isnan(a.summary["relapse_time"]) and np.isnan(b.summary["relapse_time"])
    )
