"""The numba agent engine: closed forms, its mean map, the ODE limit, a plain-Python reference.

Test statistics (fixed seeds, so every run gives the same numbers):

- Binomial sampler: chi-square goodness of fit of 20,000 draws against the exact
  distribution (bins between its deciles); pass if p >= 1e-3 for each (n, p).
- Birth-death extinction: the agent step is a Galton-Watson process with offspring pgf
  f(s) = pi0 + pi1 s + pi2 s^2; P(extinct by step T) = f^T(0)^y0 (T-fold iterate). Count k of
  extinct runs out of n against the binomial: |k - nq| <= 3.5 sqrt(nq(1-q)).
- Mean map (5 years, dt = 1 day, stop at 3 years, cell scale 1e3): mean over 200 runs of X, Y,
  Z, E, N within 4 SE + 0.5 % of :func:`mean_map` at 10 times (measured: <= 1.6 SE, <= 1.2 %).
  The relative term is the mean-field closure error (E[ZY] != E[Z]E[Y]), O(1/cells).
- Agents (1 year, cell scale 1, every cell an agent): 48 runs within 4 SE + 1 %.
- Kernel vs plain-Python reference, agents vs counts: chi-square homogeneity of binned counts
  at fixed days (2 x k table, bins from pooled quantiles; a 2 x 2 table at/above the median
  for counts that are mostly one value); pass if every p >= 1e-3.
- Mean map vs ODE: first-order convergence in dt (max relative error of X, Y, Z over a year
  3.9 % at dt = 0.04 day, 2.0 % at 0.02).
"""

import numba
import numpy as np
import pytest
from scipy import stats

from sim.engines import abm, rng
from sim.engines import stochastic as st
from sim.models import cml_immune as cm
from sim.run import schedule_row, simulate

MONTH = 365.25 / 12
NO_WINDOW = {"p_z": 100 / MONTH}  # below 2 a K_z: no immune window, T cells stay ~1e2


def chi2_homogeneity(a, b, n_bins=8):
    """p-value of the chi-square test that two samples of counts come from one distribution."""
    pooled = np.concatenate([a, b])
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, n_bins + 1)))
    if edges.size < 3:  # mostly one value (e.g. rare resistant cells): at it vs above it
        cut = np.median(pooled)
        ka, kb = int((a > cut).sum()), int((b > cut).sum())
        if ka + kb in (0, a.size + b.size):
            return 1.0
        return stats.chi2_contingency([[ka, a.size - ka], [kb, b.size - kb]])[1]
    ia = np.clip(np.searchsorted(edges, a, side="right") - 1, 0, edges.size - 2)
    ib = np.clip(np.searchsorted(edges, b, side="right") - 1, 0, edges.size - 2)
    table = np.array(
        [np.bincount(ia, minlength=edges.size - 1), np.bincount(ib, minlength=edges.size - 1)]
    )
    table = table[:, table.sum(axis=0) > 0]
    return stats.chi2_contingency(table)[1]


@pytest.mark.parametrize(
    "n, p", [(20, 0.3), (1000, 0.05), (1e9, 1e-6), (50, 0.9), (3e10, 0.4), (7, 0.5)]
)
def test_binomial_sampler_matches_the_pmf(n, p):
    s = rng.seed_states(17, 1)[0].copy()
    x = np.array([abm.binomial(s, float(n), p) for _ in range(20000)])
    assert np.all(x == np.round(x)) and x.min() >= 0 and x.max() <= n
    # bins between the exact quantiles of the binomial (10 bins, or one per value if fewer)
    edges = np.unique(stats.binom.ppf(np.linspace(0, 1, 11)[1:-1], n, p))
    cdf = np.concatenate([[0.0], stats.binom.cdf(edges, n, p), [1.0]])
    exp_k = np.diff(cdf) * x.size
    obs = np.diff(np.concatenate([[0], [np.sum(x <= e) for e in edges], [x.size]]))
    assert stats.chisquare(obs, exp_k).pvalue >= 1e-3


def test_register_stream_matches_the_rng_module():
    s = rng.seed_states(23, 1)[0].copy()
    words = s.copy()
    for _ in range(100):
        m, *new = abm._next53(*words)
        words = np.array(new, dtype=np.uint64)
        assert m == rng.next_u64(s) >> np.uint64(11)
    np.testing.assert_array_equal(words, s)


def birth_death(b, d):
    p = cm.PARAMS.vector({})
    for k in (cm.P_XY, cm.P_YX, cm.R_Z, cm.M_KILL, cm.M_N, cm.K_IY, cm.P_Z, cm.K_EX, cm.S_N):
        p[k] = 0.0
    p[cm.P_Y] = b
    p[cm.E_TKI] = d
    p[cm.K_Y] = 1e12
    return p


@pytest.mark.parametrize("max_agents", [1 << 20, 1])
def test_birth_death_extinction_matches_galton_watson(max_agents):
    # per step: division (2 cells) w.p. q b/lam, death (0) w.p. q d/lam, lam = b + d
    b, d, T, y0, n = 1.0, 0.8, 60, 5, 4000
    res = abm.simulate_abm(birth_death(b, d), None, np.array([0, y0, 0, 0, 0.0]), np.inf,
                           float(T), seed=11, n=n, t_out=np.array([0.0, T]),
                           max_agents=max_agents)  # fmt: skip
    lam = b + d
    q = -np.expm1(-lam)
    pi2, pi0 = q * b / lam, q * d / lam
    s = 0.0
    for _ in range(T):
        s = pi0 + (1 - pi0 - pi2) * s + pi2 * s * s
    q_T = s**y0
    k = int(res["eradicated"].sum())
    assert abs(k - n * q_T) <= 3.5 * np.sqrt(n * q_T * (1 - q_T)), (k / n, q_T)
    # the ultimate extinction probability pi0/pi2 = d/b, as in continuous time
    assert abs(s - d / b) < 1e-3
    assert np.all(res["t_eradication"][res["eradicated"]] <= T)
    assert np.median(res["y"][~res["eradicated"], -1, 1]) > 100  # survivors grew: a real test


def test_mean_matches_the_mean_map_over_five_years():
    p = cm.PARAMS.vector(NO_WINDOW)
    t = np.array([0, 30, 91, 182, 365, 730, 1095, 1126, 1276, 1826.0])
    n = 200
    r = abm.simulate_abm(p, {"cell_scale": 1e3}, None, 1096.0, 1826.0, seed=5, n=n, t_out=t,
                         max_agents=1000)  # fmt: skip
    m = abm.mean_map(p, {"cell_scale": 1e3}, None, 1096.0, 1826.0, t)["y"]
    mean = r["y"].mean(0)[:, :5]
    se = r["y"].std(0, ddof=1)[:, :5] / np.sqrt(n)
    band = 4 * se + 0.005 * np.abs(m[:, :5]) + 1e-12
    assert np.all(np.abs(mean - m[:, :5]) <= band), np.argwhere(np.abs(mean - m[:, :5]) > band)
    assert m[6, 1] < 1.5e-4 * m[0, 1] and m[-1, 1] > 1e8  # Y falls ~4 decades, relapses


def test_every_cell_an_agent_matches_the_mean_map():
    p = cm.PARAMS.vector(NO_WINDOW)
    t = np.array([0, 30, 91, 182, 365.0])
    n = 48
    r = abm.simulate_abm(p, None, None, np.inf, 365.0, seed=8, n=n, t_out=t)
    m = abm.mean_map(p, None, None, np.inf, 365.0, t)["y"][:, :5]
    mean = r["y"].mean(0)[:, :5]
    se = r["y"].std(0, ddof=1)[:, :5] / np.sqrt(n)
    assert np.all(np.abs(mean - m) <= 4 * se + 0.01 * np.abs(m) + 1e-12)
    assert r["updates"].min() > 1e7  # 3e5 cells at diagnosis, one update per cell and day


def test_mean_map_converges_to_the_ode():
    # the competing-risk step biases each rate by a factor ~ (1 - lam dt / 2): first order
    p = cm.PARAMS.vector({})
    sched = schedule_row(__import__("sim.therapy.drugs", fromlist=["x"]).get_drug("imatinib"),
                         pk="interval")[None, :]  # fmt: skip
    from sim.engines import ode

    pr = np.zeros(ode.PR_N)
    pr[ode.PR_HORIZON] = 365.0
    pr[ode.PR_STOP_KIND] = ode.STOP_NEVER
    pr[ode.PR_STOP_AT] = np.inf
    pr[ode.PR_DECIDE_TRUE] = 1
    t = np.array([0.0, 91, 182, 365])
    y0 = st.integer_state(cm.initial_state(p))
    y0[4] = round(y0[4] * 4) / 4  # NK agents are whole cells in nk_volume = 4 µL
    ref = simulate("cml_immune", p, sched, pr, t_out=t, y0=y0, rtol=1e-10)["y"]
    err = []
    for dt in (0.04, 0.02):
        m = abm.mean_map(p, None, y0, np.inf, 365.0, t, dt=dt)["y"][:, :5]
        err.append(np.max(np.abs(m[:, :3] - ref[:, :3]) / ref[:, :3]))
    assert err[1] < 0.025 and 1.6 < err[0] / err[1] < 2.4, err  # measured 3.9 %, 2.0 %


def small_system():
    """K_y = 1000, a small strongly killing T-cell pool: every channel fires in few events."""
    p = cm.PARAMS.vector({})
    p[cm.R_Z] = 0.5
    p[cm.A] = 0.05
    p[cm.M_KILL] = 0.005
    p[cm.P_Z] = 0.05 * 1e3
    p[cm.K_Z] = 5.0 * 1e3
    p[cm.P_XY] *= 20
    p[cm.P_YX] = 0.02
    abm_p = {"cell_scale": 1e-3, "nk_volume": 0.2, "sens_sd_log": 0.5, "mu_res": 0.01,
             "resist_factor": 0.2, "nk_activation_rate": 0.5}  # fmt: skip
    y0 = np.array([15.0, 25.0, 10.0, 0.2, 150.0])
    return p, abm_p, y0


def test_kernel_agrees_with_plain_python_reference():
    p, ap, y0 = small_system()
    on = np.array([0.5, 0.3, 0.4, 0.2, 0.1])
    t = np.array([0.0, 10.0, 20.0, 40.0])
    n = 400
    res = abm.simulate_abm(p, ap, y0, 20.0, 40.0, seed=7, n=n, t_out=t, drive_on=on)
    gen = np.random.default_rng(1234)
    ref = np.array([abm.simulate_reference(p, ap, y0, 20.0, 40.0, t, gen, drive_on=on)
                    for _ in range(n)])  # fmt: skip
    pv = {f"{abm.OUT_STATES[j]}({t[i]:g})": chi2_homogeneity(res["y"][:, i, j], ref[:, i, j])
          for i in (1, 2, 3) for j in (0, 1, 2, 5)}  # fmt: skip
    assert min(pv.values()) >= 1e-3, pv
    ev = res["events"].sum(0)
    assert ev[abm.EV_MUT] > 50 and ev[abm.EV_TDIV] > 50 and ev[abm.EV_DEACT] > 50
    np.testing.assert_allclose(res["y"][:, :, 3:5].mean(0), ref[:, :, 3:5].mean(0), rtol=0.05)


def test_counts_representation_is_exact_in_distribution():
    # the same patients held as agents (never collapsed) and as counts (max_agents = 8: the
    # phases switch between agents and counts as they cross 8 and 1; T cells as cohorts above
    # 4): same law, same mean
    p, ap, y0 = small_system()
    t = np.array([0.0, 10.0, 30.0])
    n = 600
    a = abm.simulate_abm(p, ap, y0, np.inf, 30.0, seed=1, n=n, t_out=t, u_tki=0.5)
    c = abm.simulate_abm(
        p, ap, y0, np.inf, 30.0, seed=2, n=n, t_out=t, u_tki=0.5, max_agents=8, max_t_agents=4
    )  # T cells as birth cohorts above 4 cells, too
    for i in (1, 2):
        for j in (0, 1, 2, 3, 5):
            assert chi2_homogeneity(a["y"][:, i, j], c["y"][:, i, j]) >= 1e-3, (i, j)
            diff = a["y"][:, i, j].mean() - c["y"][:, i, j].mean()
            se = np.sqrt(a["y"][:, i, j].var() / n + c["y"][:, i, j].var() / n)
            assert abs(diff) <= 4 * se + 1e-12


def test_chi2_check_can_fail():
    p, ap, y0 = small_system()
    q = p.copy()
    q[cm.P_Y] *= 1.3
    t = np.array([0.0, 30.0])
    a = abm.simulate_abm(p, ap, y0, np.inf, 30.0, seed=1, n=400, t_out=t, u_tki=0.5)
    b = abm.simulate_abm(q, ap, y0, np.inf, 30.0, seed=2, n=400, t_out=t, u_tki=0.5)
    assert chi2_homogeneity(a["y"][:, 1, 1], b["y"][:, 1, 1]) < 1e-3


@pytest.mark.parametrize("mode", ["agents", "counts", "lattice"])
def test_events_add_up_and_counts_stay_whole(mode):
    p, ap, y0 = small_system()
    kw = {"agents": {}, "counts": {"max_agents": 4, "max_t_agents": 3},
          "lattice": {"lattice": 12}}[mode]  # fmt: skip
    t = np.linspace(0, 60, 7)
    res = abm.simulate_abm(p, ap, y0, 30.0, 60.0, seed=3, n=16, t_out=t, **kw)
    y = res["y"]
    ev = res["events"]
    assert not res["overflow"].any()
    assert np.all(y[:, :, :3] >= 0) and np.all(y[:, :, :3] == np.round(y[:, :, :3]))
    x_end = res["y0"][:, 0] - ev[:, abm.EV_ACT] + ev[:, abm.EV_DEACT]
    y_end = (res["y0"][:, 1] + ev[:, abm.EV_DIV] - ev[:, abm.EV_DEACT] + ev[:, abm.EV_ACT]
             - ev[:, abm.EV_DEATH])  # fmt: skip
    z_end = res["y0"][:, 2] + ev[:, abm.EV_TDIV] + ev[:, abm.EV_TIN] - ev[:, abm.EV_TDEATH]
    np.testing.assert_array_equal(x_end, y[:, -1, 0])
    np.testing.assert_array_equal(y_end, y[:, -1, 1])
    np.testing.assert_array_equal(z_end, y[:, -1, 2])
    assert np.all((y[:, :, 3] >= 0) & (y[:, :, 3] <= 1))


def test_lattice_niches_and_local_killing():
    from sim.mesa_model import CMLModel

    p = cm.PARAMS.vector({})
    m = CMLModel(p, {"cell_scale": 0.01, "niche_fraction": 0.2}, lattice=30, seed=2)
    niche = m.lattice_counts()["niche"]
    assert niche.sum() == 180
    for _ in range(40):
        m.step()
        c = m.lattice_counts()
        assert c["quiescent"].max() <= 1 and np.all(c["quiescent"][niche == 0] == 0)
        assert c["quiescent"].sum() == m.X and c["active"].sum() == m.Y
    # immune cells kill only in their neighbourhood: with every T and NK cell gone (no influx,
    # none at the start) there is no immune kill, so a lattice without TKI loses cells only
    # by crowding, as the well-mixed model without immune cells
    q = p.copy()
    q[cm.R_Z] = 0.0
    q[cm.S_N] = 0.0
    y0 = np.array([10.0, 300.0, 0.0, 0.0, 0.0])
    lat = abm.simulate_abm(q, {"cell_scale": 0.01}, y0, np.inf, 20.0, seed=4, n=8,
                           t_out=np.array([0.0, 20.0]), u_tki=0.0, lattice=20)  # fmt: skip
    assert lat["events"][:, abm.EV_TDEATH].sum() == 0 and lat["y"][:, -1, 1].min() > 300


def test_same_seed_same_result_on_one_and_two_threads():
    p, ap, y0 = small_system()
    t = np.linspace(0, 40, 5)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = abm.simulate_abm(p, ap, y0, 20.0, 40.0, seed=5, n=8, t_out=t)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = abm.simulate_abm(p, ap, y0, 20.0, 40.0, seed=5, n=8, t_out=t)
    finally:
        numba.set_num_threads(before)
    for key in ("y", "events", "t_eradication", "t_relapse", "updates"):
        np.testing.assert_array_equal(a[key], b[key])
    c = abm.simulate_abm(p, ap, y0, 20.0, 40.0, seed=5, n=3, t_out=t)
    np.testing.assert_array_equal(a["y"][:3], c["y"])
    assert not np.array_equal(a["y"][0], a["y"][1])


def test_overflow_is_flagged_and_inputs_checked():
    p = cm.PARAMS.vector({})
    res = abm.simulate_abm(p, {"cell_scale": 0.01}, None, np.inf, 30.0, n=2, cap_immune=50)
    assert res["overflow"].all()
    with pytest.raises(ValueError, match="niches"):
        abm.simulate_abm(p, {"cell_scale": 1.0}, None, np.inf, 10.0, lattice=10)
    with pytest.raises(ValueError, match="dt"):
        abm.simulate_abm(p, dt=0.0)
    with pytest.raises(ValueError, match="bounds"):
        abm.simulate_abm(p, {"mu_res": 2.0})
    s = abm.class_sensitivities(0.5, 0.1, 8)
    assert s.size == 9 and s[:8].mean() == pytest.approx(1.0) and s[-1] == 0.1


def test_parameter_table_is_printed_by_cmlsim_models(capsys):
    from sim.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in abm.ABM_PARAMS.names:
        assert name in out


def test_benchmarks_run():
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks import bench_abm, cmp_abm

    b = bench_abm.AgentStep()
    b.setup(1000)
    b.time_agent_step(1000)
    assert b.track_agent_updates_per_s(1000) > 0
    pat = cmp_abm.NumbaPatient(2000)
    assert 1500 < pat.advance(1) < 4000  # the population holds its size (plus immune cells)
    rec = {"threads": 2, "load": 1.0, "floor_ns": 2.0, "numba_ns_per_update": {10_000: 4.0},
           "mesa_ns_per_update": {10_000: 4000.0}, "mesa_ratio": {10_000: 1000.0},
           "stochastic_s_per_10y": 0.05}  # fmt: skip
    text = "\n".join(cmp_abm.report_lines(rec))
    assert "1000x the numba engine" in text and "50.0 ms per 10-year" in text
