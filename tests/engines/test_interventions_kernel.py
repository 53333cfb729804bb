"""Each intervention acts only through its mechanism, in the kernel (issue 3, "Done when").

- no intervention given => the trajectory is bitwise the baseline's;
- an intervention at dose zero => within 10 rtol of the baseline;
- interferon acts through exactly its declared terms: stem-cell activation (alpha_I), NK cells
  (activity kappa_N and production sigma_N) and the direct effect (k_IY);
- a checkpoint inhibitor changes leukemic cells only through T cells: with m = 0, nothing leukemic;
- each drive rises monotonically with dose.
"""

from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engines import ode
from sim.models import cml_immune as cm
from sim.run import compile_interventions, schedule_row, simulate
from sim.therapy import drive as dv
from sim.therapy.drugs import get_drug
from sim.therapy.interventions import get_product

MONTH = 365.25 / 12
PRODUCTS = ["peginterferon-alfa-2a", "peginterferon-alfa-2b", "nivolumab", "vaccine", "exercise"]
RTOL = 1e-8


def intervention(product, anchor="diagnosis", offset=0.0, duration=None, every=None, count=None,
                 dose=None):  # fmt: skip
    prod = get_product(product)
    return SimpleNamespace(
        name=product, product=prod, anchor=anchor, offset=offset, duration=duration,
        every=prod.standard_interval if every is None else every, count=count,
        dose=prod.standard_dose if dose is None else dose, pk="doses",
    )  # fmt: skip


def protocol(horizon, stop_at=np.inf):
    pr = np.zeros(ode.PR_N)
    pr[ode.PR_HORIZON] = horizon
    pr[ode.PR_STOP_KIND] = ode.STOP_FIXED if np.isfinite(stop_at) else ode.STOP_NEVER
    pr[ode.PR_STOP_AT] = stop_at
    pr[ode.PR_RELAPSE_RULE] = 1
    pr[ode.PR_RESTART] = 1
    pr[ode.PR_MAX_STOPS] = 1
    pr[ode.PR_DECIDE_TRUE] = 1
    pr[ode.PR_SWITCH_AT] = np.inf
    return pr


def run(p, ivs=(), horizon=4 * 365.25, stop_at=np.inf, t_out=None):
    sched = schedule_row(get_drug("imatinib"))[None, :]
    t_out = np.linspace(0.0, horizon, 401) if t_out is None else t_out
    return simulate(
        "cml_immune", p, sched, protocol(horizon, stop_at), rtol=RTOL, t_out=t_out,
        iv=compile_interventions(list(ivs)),
    )  # fmt: skip


def max_rel_diff(a, b, states, floor=1e-6):
    out = 0.0
    for i in states:
        peak = np.max(np.abs(b[:, i]))
        sel = np.abs(b[:, i]) > floor * peak
        out = max(out, np.max(np.abs(a[sel, i] - b[sel, i]) / np.abs(b[sel, i])))
    return out


def test_intervention_never_given_is_bitwise_the_baseline():
    p = cm.PARAMS.vector()
    base = run(p)
    never = run(p, [intervention("nivolumab", anchor="relapse")])  # no stop, so no relapse
    np.testing.assert_array_equal(never["y"], base["y"])
    np.testing.assert_array_equal(never["drive"], base["drive"])
    assert np.isnan(never["interventions"][0, ode.IVO_START])
    assert never["interventions"][0, ode.IVO_DOSES] == 0


def test_zero_dose_is_within_10_rtol_of_the_baseline():
    p = cm.PARAMS.vector()
    base = run(p)
    for product in ("peginterferon-alfa-2a", "nivolumab", "vaccine", "exercise"):
        zero = run(p, [intervention(product, duration=6 * MONTH, dose=0.0)])
        assert zero["interventions"][0, ode.IVO_DOSES] > 0  # the doses were "given"
        assert np.all(zero["drive"][:, 1:] == 0.0)
        assert max_rel_diff(zero["y"], base["y"], range(5)) <= 10 * RTOL, product


def test_interferon_rhs_changes_exactly_its_declared_terms():
    rng = np.random.default_rng(3)
    p = cm.PARAMS.vector()
    g = dict(zip(cm.PARAMS.names, p))
    for _ in range(100):
        s = np.abs(rng.lognormal(3, 3, 5))
        s[3] = rng.uniform()
        I = rng.uniform()
        d0 = np.zeros(dv.N_DRIVE)
        d1 = d0.copy()
        d1[dv.IFN] = I
        a, b = np.empty(5), np.empty(5)
        cm.rhs(0.0, s, p, d0, a)
        cm.rhs(0.0, s, p, d1, b)
        X, Y, _Z, _E, N = s
        activation = g["p_xy"] * g["alpha_I"] * I * X
        nk = g["m_N"] * g["kappa_N"] * I / (1 + Y / g["K_NS"]) * N * Y
        direct = g["k_IY"] * I * Y
        expected = np.array([-activation, activation - nk - direct, 0.0, 0.0,
                             g["s_N"] * g["sigma_N"] * I])  # fmt: skip
        np.testing.assert_allclose(b - a, expected, rtol=1e-9, atol=1e-9 * np.abs(a).max())


def test_interferon_with_its_terms_switched_off_changes_nothing():
    ifn = [intervention("peginterferon-alfa-2a", duration=12 * MONTH)]
    p_off = cm.PARAMS.vector({"alpha_I": 0.0, "kappa_N": 0.0, "sigma_N": 0.0, "k_IY": 0.0})
    assert max_rel_diff(run(p_off, ifn)["y"], run(p_off)["y"], range(5)) <= 10 * RTOL
    # each term alone does change the course (the check above is not vacuous)
    for name in ("alpha_I", "kappa_N", "sigma_N", "k_IY"):
        p_one = p_off.copy()
        p_one[cm.PARAMS.index(name)] = cm.PARAMS[name].default
        assert max_rel_diff(run(p_one, ifn)["y"], run(p_one)["y"], [0, 1, 4]) > 1e-3, name


def test_checkpoint_changes_leukemic_cells_only_through_t_cells():
    pulses = [intervention("nivolumab", count=6)]
    p = cm.PARAMS.vector({"m": 0.0})
    with_cp, without = run(p, pulses), run(p)
    assert with_cp["drive"][:, dv.PD1].max() > 0.5
    assert max_rel_diff(with_cp["y"], without["y"], [0, 1, 4]) <= 10 * RTOL  # X, Y, N
    # the T cells do respond (recruitment depends on the functional fraction F), 1000 x rtol
    assert max_rel_diff(with_cp["y"], without["y"], [2]) > 1e-4
    # with T-cell killing on, the same pulses reach the leukemic cells
    p = cm.PARAMS.vector()
    assert max_rel_diff(run(p, pulses)["y"], run(p)["y"], [1]) > 1e-3


@settings(max_examples=25, deadline=None)
@given(
    product=st.sampled_from(PRODUCTS),
    lo=st.floats(0.0, 2.0),
    factor=st.floats(1.0, 4.0),
)
def test_each_drive_rises_monotonically_with_dose(product, lo, factor):
    prod = get_product(product)
    slot = int(prod.vector()[0])
    p = cm.PARAMS.vector()
    t_out = np.linspace(0.0, 120.0, 241)
    drives = []
    for scale in (lo, lo * factor):
        ivs = [intervention(product, dose=prod.standard_dose * scale, count=4)]
        drives.append(run(p, ivs, horizon=120.0, t_out=t_out)["drive"][:, slot])
    assert np.all(drives[1] >= drives[0] - 1e-12)
