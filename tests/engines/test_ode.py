"""The DP5 engine against SciPy, its dense output and its solver statistics."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from sim import models
from sim.engines import ode
from sim.models import cml_immune as cm
from sim.run import schedule_row, simulate
from sim.therapy import drive as dv
from sim.therapy.drugs import get_drug

MONTH = 365.25 / 12


def kill_schedule(dose_fraction=1.0, start=0.0, end=None):
    drug = get_drug("imatinib")
    row = schedule_row(drug, drug.standard_dose * dose_fraction, start=start, end=end, pk="kill")
    return row[None, :]


def fixed_stop_protocol(stop_at, horizon, every=0.0):
    pr = np.zeros(ode.PR_N)
    pr[ode.PR_HORIZON] = horizon
    pr[ode.PR_STOP_KIND] = ode.STOP_FIXED if np.isfinite(stop_at) else ode.STOP_NEVER
    pr[ode.PR_STOP_AT] = stop_at
    pr[ode.PR_RELAPSE_RULE] = 1
    pr[ode.PR_RESTART] = 0
    pr[ode.PR_MAX_STOPS] = 1
    pr[ode.PR_DECIDE_TRUE] = 1
    pr[ode.PR_MONITOR_EVERY] = every
    return pr


def scipy_reference(p, y0, pieces, t_eval, rtol=1e-10, atol_scale=None):
    """solve_ivp DOP853 over pieces [(t0, t1, u)], a plain-NumPy right-hand side."""
    atol = rtol * np.asarray(atol_scale if atol_scale is not None else cm.SPEC.atol_scale)
    out = []
    y = np.array(y0, dtype=float)
    for t0, t1, u in pieces:
        sel = t_eval[(t_eval >= t0) & (t_eval <= t1)]
        sol = solve_ivp(
            rhs_reference, (t0, t1), y, method="DOP853", rtol=rtol, atol=atol,
            args=(p, u), dense_output=True,
        )  # fmt: skip
        assert sol.success
        out.append((sel, sol.sol(sel).T))
        y = sol.y[:, -1]
    t = np.concatenate([o[0] for o in out])
    Y = np.concatenate([o[1] for o in out])
    t, idx = np.unique(t, return_index=True)
    return t, Y[idx]


def rhs_reference(t, s, p, u, I=0.0, B=0.0, vac=0.0, ex=0.0):
    """The canonical model written out plainly from DESIGN.md section 4 (no numba)."""
    X, Y, Z, E, N = s
    g = dict(zip(cm.PARAMS.names, p))
    F = 1 - E * (1 - B)
    A_N = (1 + g["kappa_N"] * I) * (1 + ex) / (1 + Y / g["K_NS"])
    act = g["p_xy"] * (1 + g["alpha_I"] * I)
    r_z = g["r_z"] * (1 + vac)
    win = g["p_z"] * F * Y / (g["K_z"] ** 2 + Y**2)
    return np.array(
        [
            -act * X + g["p_yx"] * Y,
            act * X - g["p_yx"] * Y + g["p_y"] * Y * (1 - Y / g["K_y"]) - g["e_tki"] * u * Y
            - g["m"] * F * Z * Y - g["m_N"] * A_N * N * Y - g["k_IY"] * I * Y,
            r_z - g["a"] * Z + win * Z,
            g["k_E"] * Y / (Y + g["K_E"]) * (1 - E) - g["delta_E"] * E - E * (r_z / Z + win),
            g["s_N"] * (1 + g["sigma_N"] * I) - g["d_N"] * N * (1 + Y / g["K_ND"]),
        ]
    )  # fmt: skip


def test_rhs_matches_plain_reference():
    rng = np.random.default_rng(1)
    p = cm.PARAMS.vector()
    for _ in range(200):
        s = np.abs(rng.lognormal(3, 4, 5))
        s[3] = rng.uniform()
        drive = rng.uniform(0, 1, dv.N_DRIVE)
        dy = np.empty(5)
        cm.rhs(0.0, s, p, drive, dy)
        ref = rhs_reference(0.0, s, p, drive[0], *drive[1:])
        np.testing.assert_allclose(dy, ref, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("preset", [None, "hahnel2020"])
def test_dp5_matches_scipy_dop853(preset):
    """Max relative error <= 1e-6 at rtol 1e-8 against DOP853 at rtol 1e-10, over 10 years with a
    stop at 5 years, on states above 1e-6 of their peak."""
    over = cm.PRESETS[preset] if preset else {}
    p = cm.PARAMS.vector(over)
    y0 = cm.initial_state(p)
    horizon = 10 * 365.25
    stop = 5 * 365.25
    t_out = np.linspace(0, horizon, 2001)
    raw = simulate(
        "cml_immune", p, kill_schedule(), fixed_stop_protocol(stop, horizon),
        rtol=1e-8, t_out=t_out,
    )  # fmt: skip
    t_ref, y_ref = scipy_reference(p, y0, [(0, stop, 1.0), (stop, horizon, 0.0)], t_out)
    np.testing.assert_array_equal(t_ref, t_out)
    y = raw["y"]
    for i, name in enumerate(cm.STATES):
        peak = np.max(np.abs(y_ref[:, i]))
        if peak == 0:
            continue
        sel = np.abs(y_ref[:, i]) > 1e-6 * peak
        rel = np.abs(y[sel, i] - y_ref[sel, i]) / np.abs(y_ref[sel, i])
        assert rel.max() <= 1e-6, (name, rel.max())
    st = raw["stats"]
    assert st[ode.ST_FAILURES] == 0
    assert st[ode.ST_STEPS] > 0 and st[ode.ST_RHS] >= 6 * st[ode.ST_STEPS]
    assert st[ode.ST_REJECTED] >= 0


def test_dense_output_is_fourth_order_on_exponential():
    """Dense output of a single step of y' = -y against exp(-t), error O(h^5) per step."""
    from sim.engines import dp5

    errs = []
    for h in (0.4, 0.2, 0.1):
        y0 = np.array([1.0])
        K = np.empty((7, 1))
        c = [0, dp5.C2, dp5.C3, dp5.C4, dp5.C5, 1.0, 1.0]
        # for a linear ODE the stages are exact polynomials in h; build them directly
        a = [
            [],
            [dp5.A21],
            [dp5.A31, dp5.A32],
            [dp5.A41, dp5.A42, dp5.A43],
            [dp5.A51, dp5.A52, dp5.A53, dp5.A54],
            [dp5.A61, dp5.A62, dp5.A63, dp5.A64, dp5.A65],
            [dp5.B1, 0.0, dp5.B3, dp5.B4, dp5.B5, dp5.B6],
        ]
        for s in range(7):
            ys = y0[0] + h * sum(a[s][j] * K[j, 0] for j in range(len(a[s])))
            K[s, 0] = -ys
        del c
        theta = np.linspace(0, 1, 11)
        dense = np.array([dp5.dense_component(0, th, h, y0, K) for th in theta])
        errs.append(np.max(np.abs(dense - np.exp(-theta * h))))
    order = np.log2(errs[0] / errs[1]), np.log2(errs[1] / errs[2])
    assert min(order) > 4.5, order


def test_states_stay_non_negative_and_solver_stats_recorded():
    # very strong kill, no stem-cell reservoir: Y -> 0 fast, far below its absolute tolerance
    p = cm.PARAMS.vector({"p_xy": 0.0, "p_yx": 0.0, "e_tki": 2.0})
    raw = simulate(
        "cml_immune", p, kill_schedule(), fixed_stop_protocol(np.inf, 3 * 365.25), rtol=1e-6,
    )  # fmt: skip
    assert np.all(np.isfinite(raw["y"]))
    assert np.all(raw["y"] >= 0)
    assert raw["y"][-1, 1] < 10 * cm.SPEC.atol(1e-6)[1]  # gone, to within its tolerance
    assert raw["stats"][ode.ST_FAILURES] == 0


def test_non_finite_initial_state_is_a_flagged_failure_not_a_hang():
    p = cm.PARAMS.vector({"p_xy": 0.0, "p_yx": 1e-4})  # X0 = p_yx y0 / p_xy is infinite
    raw = simulate("cml_immune", p, kill_schedule(), fixed_stop_protocol(np.inf, 365.0))
    assert raw["stats"][ode.ST_FAILURES] == 1
    assert np.all(np.isnan(raw["y"][1:]))


def test_restarts_at_discontinuities_not_at_visits_and_eln_schedule():
    p = cm.PARAMS.vector()
    horizon = 4 * 365.25
    raw = simulate("cml_immune", p, kill_schedule(), fixed_stop_protocol(2 * 365.25, horizon))
    # the integrator restarts at the start and at the stop only: visits that change nothing read
    # the state from the dense output and do not cut a step
    assert raw["stats"][ode.ST_VISITS] > 15
    assert raw["stats"][ode.ST_RESTARTS] == 2
    # ELN schedule: 3-monthly on TKI for 2 years, then monthly for months 1-6 after the stop,
    # every 2 months for months 7-12, then every 3 months
    vt = raw["visits"][:, ode.V_TIME] / MONTH
    on = vt[vt < 24 - 1e-6]
    np.testing.assert_allclose(np.diff(on), 3.0, atol=1e-9)
    off = vt[vt > 24 + 1e-6] - 24
    np.testing.assert_allclose(off[:6], np.arange(1, 7), atol=1e-9)
    np.testing.assert_allclose(off[6:9], [8, 10, 12], atol=1e-9)
    np.testing.assert_allclose(np.diff(off[8:]), 3.0, atol=1e-9)


def test_ensemble_equals_single_runs_and_is_thread_independent():
    import numba

    from sim import readout
    from sim.engines import rng

    base = cm.PARAMS.vector()
    m = 6
    P = np.tile(base, (m, 1))
    P[:, cm.P_XY] *= np.linspace(0.5, 2.0, m)
    Y0 = np.array([cm.initial_state(p) for p in P])
    horizon = 8 * 365.25
    sched = kill_schedule()
    proto = fixed_stop_protocol(5 * 365.25, horizon)
    proto[ode.PR_DECIDE_TRUE] = 0  # measured decisions: uses the random streams
    t_out = np.linspace(0, horizon, 97)
    q = readout.QPCR.defaults()
    atol = cm.SPEC.atol(1e-6)
    no_iv = np.zeros((0, ode.IV_N))

    def run(threads):
        numba.set_num_threads(threads)
        states = rng.seed_states(7, m)
        y_out = np.full((m, t_out.size, 5), np.nan)
        d_out = np.full((m, t_out.size, dv.N_DRIVE), np.nan)
        vis = np.full((m, 200, ode.V_N), np.nan)
        ev = np.full((m, 50, 3), np.nan)
        ivo = np.full((m, 0, ode.IVO_N), np.nan)
        summ = np.full((m, ode.S_N), np.nan)
        st = np.zeros((m, ode.ST_N), dtype=np.int64)
        ode.simulate_ensemble(
            Y0, P, sched, proto, q, no_iv, states, 1e-6, atol, t_out, y_out, d_out, vis, ev, ivo,
            summ, st,
        )  # fmt: skip
        return y_out, vis, summ

    threads = numba.get_num_threads()
    try:
        a = run(1)
        b = run(max(2, threads))
    finally:
        numba.set_num_threads(threads)
    for x, z in zip(a, b):
        np.testing.assert_array_equal(x, z)
    single = simulate("cml_immune", P[3], sched, proto, qpcr=q, seed=0, t_out=t_out)
    assert np.all(np.isfinite(single["y"]))
    # row 3 of the ensemble uses stream 3 of seed 7; a single run with the same stream matches
    st3 = rng.seed_states(7, m)[3]
    y1 = np.full((t_out.size, 5), np.nan)
    d1 = np.full((t_out.size, dv.N_DRIVE), np.nan)
    v1 = np.full((200, ode.V_N), np.nan)
    e1 = np.full((50, 3), np.nan)
    s1 = np.full(ode.S_N, np.nan)
    k1 = np.zeros(ode.ST_N, dtype=np.int64)
    o1 = np.full((0, ode.IVO_N), np.nan)
    ode.simulate_one(
        Y0[3], P[3], sched, proto, q, no_iv, st3, 1e-6, atol, t_out, y1, d1, v1, e1, o1, s1, k1
    )
    np.testing.assert_array_equal(y1, a[0][3])
    np.testing.assert_array_equal(s1, a[2][3])


def test_model_binding_generates_a_kernel_for_another_module(tmp_path, monkeypatch):
    from sim.engines import binding

    monkeypatch.setenv("CMLSIM_KERNEL_DIR", str(tmp_path))
    text = binding.kernel_source("some.model")
    assert "from some.model import N_STATE, readout, rhs  # model-binding" in text
    assert text.count("# model-binding") == 1
    assert binding.kernels(models.get("cml_immune")) is ode


def test_vectorised_readout_equals_the_jitted_one():
    rng = np.random.default_rng(5)
    p = cm.PARAMS.vector()
    y = np.abs(rng.lognormal(3, 4, (50, 5)))
    expected = np.array([cm.readout(row, p) for row in y])
    np.testing.assert_array_equal(cm.SPEC.readout_array(y, p), expected)
