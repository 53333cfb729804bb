"""The hybrid exact / tau-leaping engine: closed forms, the ODE limit, the plain-Python SSA.

Test statistics (all with fixed seeds, so every run gives the same numbers):

- Birth–death extinction: count k of extinct runs out of n = 4000 against the binomial with the
  closed-form probability q; pass if |k - nq| <= 3.5 sqrt(nq(1-q)) (two-sided level about 5e-4).
- ODE limit: at cell scale 1e3 (Y ~ 1e4 to 3e8), the mean over 200 runs of each of X, Y, Z, E, N
  against the ODE at 9 times over 3 years on TKI and 1 year off; pass if |mean - ode| <= 4 SE +
  1 % |ode|. The relative term covers the O(dt_max) error of the E, N splitting (measured <= 0.9 %
  on E); with the estimated-midpoint leap the mean of Y is unbiased to < 0.3 % (measured; plain
  Poisson leaps drift by 1.3 % after 6 months, 50 SE, and fail this test:
  ``test_plain_leaps_drift``). A 10 % error in any rate moves Y by far more than 1 %.
- Kernel vs plain-Python SSA: chi-square test of homogeneity on binned counts (2 x k contingency
  table, bins from pooled quantiles) at fixed times, 600 runs each; pass if every p-value >=
  1e-3 (five tests, Bonferroni level 5e-3).
"""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_
from scipy import stats

from sim.engines import ode
from sim.engines import stochastic as st
from sim.models import cml_immune as cm
from sim.run import schedule_row, simulate
from sim.therapy import drive as dv
from sim.therapy.drugs import get_drug

YEAR = 365.25


def birth_death_params(b, d):
    """Only division (rate b) and a linear death (the TKI channel, e_tki = d with u = 1)."""
    p = cm.PARAMS.vector({})
    for k in (cm.P_XY, cm.P_YX, cm.R_Z, cm.M_KILL, cm.M_N, cm.K_IY, cm.P_Z, cm.K_EX):
        p[k] = 0.0
    p[cm.P_Y] = b
    p[cm.E_TKI] = d
    p[cm.K_Y] = 1e12  # logistic death rate per cell Y/K_y <= 1e-5 b: negligible
    return p


def test_birth_death_extinction_matches_closed_form():
    # linear birth-death from Y0: P(Y_T = 0) = q_T^Y0, q_T = d (e^{rT} - 1) / (b e^{rT} - d),
    # r = b - d (Kendall 1948); T = 60 d gives e^{rT} = 1.6e5, so survivors reach 1e5-1e7 cells
    # and the tau-leaping branch is exercised too.
    b, d, T, y0, n = 1.0, 0.8, 60.0, 5, 4000
    p = birth_death_params(b, d)
    res = st.simulate_stochastic(
        p, np.array([0, y0, 0, 0, 0.0]), np.inf, T, seed=11, n=n, t_out=np.array([0.0, T])
    )
    e = np.exp((b - d) * T)
    q = (d * (e - 1) / (b * e - d)) ** y0
    k = int((res["y"][:, -1, 1] == 0).sum())
    assert abs(k - n * q) <= 3.5 * np.sqrt(n * q * (1 - q)), (k / n, q)
    # eradication (X = Y = 0) is the same event here, and its time is recorded
    assert np.array_equal(res["eradicated"], res["y"][:, -1, 1] == 0)
    assert np.all(res["t_eradication"][res["eradicated"]] <= T)
    assert res["stats"][:, st.SS_LEAPS].sum() > 0  # large survivors were leapt
    # the ultimate extinction probability (d/b)^Y0 is approached: q_T^Y0 within 1e-4 of it
    assert abs(q - (d / b) ** y0) < 1e-4


def fixed_stop_protocol(stop_at, horizon):
    pr = np.zeros(ode.PR_N)
    pr[ode.PR_HORIZON] = horizon
    pr[ode.PR_STOP_KIND] = ode.STOP_FIXED
    pr[ode.PR_STOP_AT] = stop_at
    pr[ode.PR_RELAPSE_RULE] = 1
    pr[ode.PR_RESTART] = 0
    pr[ode.PR_MAX_STOPS] = 1
    pr[ode.PR_DECIDE_TRUE] = 1
    return pr


def test_mean_matches_ode_at_large_counts():
    p = st.scale_cells(cm.PARAMS.vector({}), 1e3)
    sched = schedule_row(get_drug("imatinib"), pk="interval")[None, :]
    stop, horizon = 3 * YEAR, 4 * YEAR
    t_out = np.array([0.0, 30, 91, 182, 365, 730, stop, stop + 100, stop + 200, horizon])
    y0 = st.integer_state(cm.initial_state(p))
    ref = simulate("cml_immune", p, sched, fixed_stop_protocol(stop, horizon), t_out=t_out,
                   y0=y0, rtol=1e-9)["y"]  # fmt: skip
    u = st.tki_effect("imatinib", pk="interval")
    assert u == pytest.approx(1.0, abs=1e-12)
    n = 200
    res = st.simulate_stochastic(p, y0, stop, horizon, seed=3, n=n, t_out=t_out, u_tki=u)
    mean = res["y"].mean(axis=0)
    se = res["y"].std(axis=0, ddof=1) / np.sqrt(n)
    band = 4 * se + 0.01 * np.abs(ref) + 1e-12
    assert np.all(np.abs(mean - ref) <= band), np.argwhere(np.abs(mean - ref) > band)
    assert ref[6, 1] < 2e4 and ref[0, 1] > 3e8  # Y spans four decades: a real test
    assert not res["eradicated"].any()


def test_plain_leaps_drift():
    # without the midpoint, the explicit Poisson leap's mean follows an Euler-like map: on the
    # fast fall of Y (rate -0.024/day) its bias is detectable; the ODE test above would fail
    p = st.scale_cells(cm.PARAMS.vector({}), 1e3)
    y0 = st.integer_state(cm.initial_state(p))
    t_out = np.array([0.0, 182.0])
    kw = dict(seed=3, n=100, t_out=t_out, dt_max=1.0)
    mid = st.simulate_stochastic(p, y0, np.inf, 182.0, **kw)["y"][:, 1, 1].mean()
    plain = st.simulate_stochastic(p, y0, np.inf, 182.0, midpoint=False, **kw)["y"][:, 1, 1].mean()
    assert plain < 0.99 * mid


def test_scale_cells_leaves_the_ode_invariant():
    p = cm.PARAMS.vector({})
    q = st.scale_cells(p, 50.0)
    sched = schedule_row(get_drug("imatinib"), pk="kill")[None, :]
    pr = fixed_stop_protocol(YEAR, 2 * YEAR)
    t = np.array([0.0, 100, 400, 700])
    a = simulate("cml_immune", p, sched, pr, t_out=t, rtol=1e-10)["y"]
    b = simulate("cml_immune", q, sched, pr, t_out=t, rtol=1e-10)["y"]
    np.testing.assert_allclose(b[:, :2] / 50.0, a[:, :2], rtol=1e-5)
    np.testing.assert_allclose(b[:, 2:], a[:, 2:], rtol=1e-5)


def test_scale_cells_scales_every_row_of_a_matrix():
    p = cm.PARAMS.vector({})
    P = np.stack([p, 2.0 * p, 3.0 * p])
    Q = st.scale_cells(P, 1e-4)
    for i in range(3):
        np.testing.assert_array_equal(Q[i], st.scale_cells(P[i], 1e-4))
    np.testing.assert_array_equal(P[1], 2.0 * p)  # the input is left alone


def _chi2_homogeneity(a, b, n_bins=8):
    """p-value of the chi-square test that two samples of counts come from one distribution."""
    pooled = np.concatenate([a, b])
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, n_bins + 1)))
    if edges.size < 3:
        return 1.0 if np.array_equal(np.unique(a), np.unique(b)) else 0.0
    ia = np.clip(np.searchsorted(edges, a, side="right") - 1, 0, edges.size - 2)
    ib = np.clip(np.searchsorted(edges, b, side="right") - 1, 0, edges.size - 2)
    table = np.array(
        [np.bincount(ia, minlength=edges.size - 1), np.bincount(ib, minlength=edges.size - 1)]
    )
    table = table[:, table.sum(axis=0) > 0]
    return stats.chi2_contingency(table)[1]


def small_system():
    """Cell scale 1e-4 (K_y = 100) and a small, strongly killing T-cell pool (Z ~ 10), so every
    channel fires but a run has only a few hundred events (the Python SSA stays fast)."""
    p = st.scale_cells(cm.PARAMS.vector({}), 1e-4)
    p[cm.R_Z] = 0.5
    p[cm.A] = 0.05
    p[cm.M_KILL] = 0.005
    p[cm.P_Z] = 0.05  # window p_z Y/(K_z^2 + Y^2) ~ p_z/Y: a little recruitment
    p[cm.K_Z] = 5.0
    y0 = np.array([15.0, 25.0, 10.0, 0.2, 150.0])
    return p, y0


def test_kernel_agrees_with_python_ssa_in_distribution():
    # 30 days on TKI (half effect, with interferon, PD-1, vaccine, exercise drive), 30 days off
    p, y0 = small_system()
    drive_on = np.array([0.5, 0.3, 0.4, 0.2, 0.1])
    t_out = np.array([0.0, 10.0, 30.0, 60.0])
    n = 600
    res = st.simulate_stochastic(p, y0, 30.0, 60.0, seed=7, n=n, t_out=t_out, drive_on=drive_on)
    gen = np.random.default_rng(12345)
    ref = np.array(
        [st.simulate_reference(p, y0, 30.0, 60.0, t_out, gen, drive_on)["y"] for _ in range(n)]
    )
    pvals = {
        "Y(10)": _chi2_homogeneity(res["y"][:, 1, 1], ref[:, 1, 1]),
        "X(30)": _chi2_homogeneity(res["y"][:, 2, 0], ref[:, 2, 0]),
        "Y(30)": _chi2_homogeneity(res["y"][:, 2, 1], ref[:, 2, 1]),
        "Z(30)": _chi2_homogeneity(res["y"][:, 2, 2], ref[:, 2, 2]),
        "Y(60)": _chi2_homogeneity(res["y"][:, 3, 1], ref[:, 3, 1]),
    }
    assert min(pvals.values()) >= 1e-3, pvals
    assert res["counts"][:, st.R_TKILL].sum() > 100 and res["counts"][:, st.R_ZREC].sum() > 10
    # and the means of the deterministic parts agree closely
    np.testing.assert_allclose(res["y"][:, :, 3:].mean(0), ref[:, :, 3:].mean(0), rtol=0.05)


def test_chi2_check_can_fail():
    # the same statistic detects a 15 % change in one death rate with these sample sizes
    p, y0 = small_system()
    q = p.copy()
    q[cm.P_Y] *= 1.3
    t_out = np.array([0.0, 10.0, 30.0])
    a = st.simulate_stochastic(p, y0, np.inf, 30.0, seed=1, n=600, t_out=t_out, u_tki=0.5)
    b = st.simulate_stochastic(q, y0, np.inf, 30.0, seed=2, n=600, t_out=t_out, u_tki=0.5)
    assert _chi2_homogeneity(a["y"][:, 2, 1], b["y"][:, 2, 1]) < 1e-3


@settings(max_examples=25, deadline=None)
@given(
    log_scale=st_.floats(-4.0, 2.0),
    u=st_.floats(0.0, 3.0),
    ifn=st_.floats(0.0, 1.0),
    pd1=st_.floats(0.0, 1.0),
    rate_mult=st_.floats(0.2, 5.0),
    y_frac=st_.floats(0.0, 1.5),
    seed=st_.integers(0, 2**31),
)
def test_counts_never_negative_and_events_add_up(log_scale, u, ifn, pd1, rate_mult, y_frac, seed):
    p = st.scale_cells(cm.PARAMS.vector({}), 10.0**log_scale)
    for k in (cm.P_Y, cm.E_TKI, cm.A, cm.P_XY, cm.M_KILL):
        p[k] *= rate_mult
    y0 = cm.initial_state(p)
    y0[1] = y_frac * p[cm.K_Y]
    drive_on = np.array([u, ifn, pd1, 0.5, 0.5])
    T = 60.0
    res = st.simulate_stochastic(
        p, y0, 20.0, T, seed=seed, n=4, t_out=np.linspace(0, T, 7), drive_on=drive_on
    )
    y = res["y"]
    assert np.all(np.isfinite(y))
    assert np.all(y[:, :, :3] >= 0)
    assert np.all(y[:, :, :3] == np.round(y[:, :, :3]))
    assert np.all(res["stats"][:, st.SS_NEGATIVE] == 0)
    assert np.all((y[:, :, 3] >= 0) & (y[:, :, 3] <= 1))
    # final counts = initial counts + stoichiometry x reactions fired (no event lost)
    final = res["y0"][:, :3] + res["counts"] @ st.NU
    np.testing.assert_array_equal(final, y[:, -1, :3])


def test_same_seed_same_result_on_one_and_two_threads():
    p = cm.PARAMS.vector({})
    t_out = np.linspace(0, 2 * YEAR, 9)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = st.simulate_stochastic(p, None, YEAR, 2 * YEAR, seed=5, n=8, t_out=t_out)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = st.simulate_stochastic(p, None, YEAR, 2 * YEAR, seed=5, n=8, t_out=t_out)
    finally:
        numba.set_num_threads(before)
    for key in ("y", "counts", "stats", "t_eradication", "t_relapse"):
        np.testing.assert_array_equal(a[key], b[key])
    # patient i depends only on (seed, i): the first 3 of 8 equal a run of 3
    c = st.simulate_stochastic(p, None, YEAR, 2 * YEAR, seed=5, n=3, t_out=t_out)
    np.testing.assert_array_equal(a["y"][:3], c["y"])
    assert not np.array_equal(a["y"][0], a["y"][1])


def test_exact_only_mode_and_eradication_is_absorbing():
    # small cell scale: eradication happens for some patients; once X = Y = 0 they stay 0
    p = st.scale_cells(cm.PARAMS.vector({}), 1e-4)
    t_out = np.linspace(0, 3 * YEAR, 40)
    res = st.simulate_stochastic(p, None, YEAR, 3 * YEAR, seed=2, n=64, t_out=t_out, leap=False)
    assert res["stats"][:, st.SS_LEAPS].sum() == 0
    er = res["eradicated"]
    assert er.any()
    for i in np.flatnonzero(er):
        after = t_out >= res["t_eradication"][i]
        assert np.all(res["y"][i, after, :2] == 0)
    # relapse (Y/K_y > 0.1 % after the stop) never precedes the stop and excludes eradication
    rel = res["relapsed"]
    assert np.all(res["t_relapse"][rel] >= YEAR)
    assert not np.any(rel & er & (res["t_eradication"] < res["t_relapse"]))


def test_relapse_detected_without_immune_control():
    # no immune recruitment: after the stop Y regrows past 0.1 % of K_y unless eradicated
    p = cm.PARAMS.vector({"p_z": 0.0, "m": 0.0, "m_N": 0.0})
    res = st.simulate_stochastic(p, None, 2 * YEAR, 5 * YEAR, seed=4, n=16,
                                 t_out=np.array([0.0, 5 * YEAR]))  # fmt: skip
    assert np.all(res["relapsed"] | res["eradicated"])
    assert res["relapsed"].any()
    assert np.all(res["t_relapse"][res["relapsed"]] > 2 * YEAR)


def test_wilson_interval_and_probability_of_cure():
    lo, hi = st.wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = st.wilson_interval(0, 50)
    assert lo == 0.0 and hi == pytest.approx(0.0713, abs=1e-4)
    with pytest.raises(ValueError):
        st.wilson_interval(3, 2)
    p = st.scale_cells(cm.PARAMS.vector({}), 1e-4)
    out = st.probability_of_cure(p, 3 * YEAR, 6 * YEAR, seed=2, n=64)
    assert out["n"] == 64 and 0 < out["cured"] < 64
    assert out["ci_cure"][0] <= out["p_cure"] <= out["ci_cure"][1]
    assert out["cured"] + out["relapsed"] <= 64


def test_input_validation():
    p = cm.PARAMS.vector({})
    with pytest.raises(ValueError, match="n must be"):
        st.simulate_stochastic(p, n=0)
    with pytest.raises(ValueError, match="eps"):
        st.simulate_stochastic(p, eps=2.0)
    with pytest.raises(ValueError, match="t_out"):
        st.simulate_stochastic(p, horizon=10.0, t_out=np.array([0.0, 20.0]))
    with pytest.raises(ValueError, match="finite"):
        st.integer_state(np.array([np.inf, 1, 1, 0, 0]))
    assert dv.N_DRIVE == 5


def test_cure_figure_and_its_table(tmp_path):
    # probability of cure falls with the cell scale; the figure has no overlapping text and
    # its source data is written beside it
    from sim.plots.cure import cure_vs_scale, plot_cure
    from sim.plots.trajectory import check_no_overlap

    tab = cure_vs_scale(scales=(1e-5, 1e-1), n=40, horizon=4 * YEAR, stop_time=2 * YEAR)
    assert set(tab["engine"]) == {"stochastic", "abm"}
    for _, t in tab.groupby("engine"):
        assert t["p_cure"].iloc[0] > 0.5 and t["p_cure"].iloc[1] == 0.0
        assert np.all(t["ci_low"] <= t["p_cure"]) and np.all(t["p_cure"] <= t["ci_high"])
    fig = plot_cure(tab, tmp_path / "cure")
    assert check_no_overlap(fig) == []
    assert (tmp_path / "cure.png").stat().st_size > 0 and (tmp_path / "cure.csv").exists()


def test_stochastic_engine_wired_to_scenarios():
    from sim.run import run_scenario
    from sim.scenario import loads

    text = """
[scenario]
name = "st"
engine = "stochastic"
horizon = "3y"
seed = 3

[engine]
cell_scale = 1e-4

[[therapy]]
drug = "imatinib"
end = "1y"

[protocol]
restart = "never"
"""
    r = run_scenario(loads(text))
    assert r.provenance["engine"] == "stochastic" and r.summary["stop_time"] == 365.25
    assert np.all(r.y[:, :3] == np.round(r.y[:, :3]))
    np.testing.assert_allclose(r.bcr_abl, 100 * r.y[:, 1] / (1e6 * 1e-4))
