"""Therapy as patients live it, through scenario -> kernel: adherence, intermittent dosing, a TKI
switch for slow response, and overlapping intervention courses."""

import numpy as np
import pytest

from sim.engines import ode
from sim.run import run_scenario
from sim.scenario import loads
from sim.therapy import drive as dv

HEAD = """
[scenario]
name = "lived"
horizon = "{horizon}"
seed = {seed}
output_every = "{every}"
"""


def scenario(therapy, protocol='stop = "never"', extra="", horizon="2y", seed=1, every="1d"):
    return loads(
        HEAD.format(horizon=horizon, seed=seed, every=every)
        + therapy
        + f"\n[protocol]\n{protocol}\n"
        + extra
    )


def test_adherence_scales_mean_exposure_and_is_reproducible():
    full = run_scenario(scenario('[[therapy]]\ndrug = "imatinib"\n'))
    part = run_scenario(scenario('[[therapy]]\ndrug = "imatinib"\nadherence = 0.7\n'))
    assert part.summary["tki_exposure"] == pytest.approx(0.7 * full.summary["tki_exposure"])
    # daily mode: doses missed at random from the patient's stream (seeded)
    daily = '[[therapy]]\ndrug = "imatinib"\npk = "daily"\nadherence = 0.7\n'
    a = run_scenario(scenario(daily, seed=5))
    b = run_scenario(scenario(daily, seed=5))
    c = run_scenario(scenario(daily, seed=6))
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, c.y)
    on_time = run_scenario(scenario('[[therapy]]\ndrug = "imatinib"\npk = "daily"\n'))
    ratio = a.drive[30:, dv.TKI].mean() / on_time.drive[30:, dv.TKI].mean()
    assert 0.6 < ratio < 0.95  # saturating E_max: missing 30 % of doses costs less than 30 %


def test_intermittent_dosing_switches_the_drug_off_and_on():
    res = run_scenario(
        scenario(
            '[[therapy]]\ndrug = "imatinib"\nintermittent = { on = "1w", off = "1w" }\n',
            horizon="10w",
        )
    )
    u = res.drive[:, dv.TKI]
    day = res.t
    on = (day % 14) < 7
    inner = np.abs(day % 7) > 0.5  # away from the switching instants
    assert np.all(u[on & inner] == pytest.approx(1.0))
    assert np.all(u[~on & inner] == 0.0)
    assert res.summary["tki_exposure"] == pytest.approx(35.0, abs=1.0)


def test_switch_for_slow_response_replaces_the_running_tki():
    therapy = """
[[therapy]]
drug = "imatinib"
pk = "kill"

[[therapy]]
drug = "imatinib"
dose = "800mg"
pk = "kill"
switch = true
"""
    protocol = 'stop = "never"\ndecisions = "true"\nswitch = { if_not = "MMR", at = "3mo" }'
    res = run_scenario(scenario(therapy, protocol))
    acts = res.visits["action"]
    assert (acts == ode.ACT_SWITCH).sum() == 1
    t_switch = res.visits["time"][acts == ode.ACT_SWITCH][0]
    assert t_switch == pytest.approx(3 * 365.25 / 12)
    u = res.drive[:, dv.TKI]
    assert np.all(u[res.t < t_switch - 0.5] == 1.0)
    assert np.all(u[res.t > t_switch + 0.5] == 2.0)
    # a fast responder is in MMR by then: no switch
    fast = scenario(therapy, protocol.replace('at = "3mo"', 'at = "18mo"'))
    assert (run_scenario(fast).visits["action"] == ode.ACT_SWITCH).sum() == 0


def test_overlapping_courses_combine_as_documented():
    """Two overlapping interferon courses: I = 1 - (1 - I1)(1 - I2); vaccine boosts add."""
    course = """
[[intervention]]
name = "{name}"
product = "{product}"
start = "{start}"
duration = "8w"
"""
    base = '[[therapy]]\ndrug = "imatinib"\n'
    one = run_scenario(
        scenario(
            base,
            extra=course.format(name="a", product="peginterferon-alfa-2a", start="diagnosis"),
            horizon="12w",
        )
    )
    two = run_scenario(
        scenario(
            base,
            extra=course.format(name="a", product="peginterferon-alfa-2a", start="diagnosis")
            + course.format(name="b", product="peginterferon-alfa-2a", start="diagnosis"),
            horizon="12w",
        )
    )
    i1 = one.drive[:, dv.IFN]
    np.testing.assert_allclose(two.drive[:, dv.IFN], 1 - (1 - i1) ** 2, rtol=1e-12, atol=1e-15)
    assert two.drive[:, dv.IFN].max() <= 1.0
    v1 = run_scenario(
        scenario(
            base, extra=course.format(name="a", product="vaccine", start="diagnosis"), horizon="12w"
        )
    )
    v2 = run_scenario(
        scenario(
            base,
            extra=course.format(name="a", product="vaccine", start="diagnosis")
            + course.format(name="b", product="vaccine", start="diagnosis"),
            horizon="12w",
        )
    )
    np.testing.assert_allclose(v2.drive[:, dv.VACCINE], 2 * v1.drive[:, dv.VACCINE], rtol=1e-12)
    assert [i["doses"] for i in two.interventions] == [8, 8]
