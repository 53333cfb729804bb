"""Tests of cohort outcomes: Kaplan–Meier TFR, paired arm comparison, biomarker AUC."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim import outcomes as o
from sim.params import DAYS_PER_MONTH

pytest.importorskip("lifelines")


def synthetic_table(
    n: int = 400,
    seed: int = 1,
    arm: str = "none",
    rate: float = 0.05,
    nk_effect: float = 1.5,
    max_follow: float = 60.0,
) -> pd.DataFrame:
    """Outcome table with exponential relapse after stop (rate per month), the hazard lowered by
    the sampled NK source rate ``param_s_N`` (hazard ∝ s_N^-nk_effect), N at stop a noisy copy of
    s_N, other markers independent noise; 80 % eligible; uniform censoring from 12 months."""
    rng = np.random.default_rng(seed)
    s_n = rng.lognormal(np.log(0.5), 0.4, n)
    nk = 300.0 * s_n * rng.lognormal(0.0, 0.1, n)
    eligible = rng.random(n) < 0.8
    stop = np.where(eligible, rng.uniform(3.0, 8.0, n) * 365.25, np.nan)
    hazard = rate * (s_n / 0.5) ** (-nk_effect)
    t_rel = rng.exponential(1.0 / hazard)
    follow = np.minimum(max_follow, rng.uniform(12.0, 120.0, n))
    event = (t_rel <= follow) & eligible
    months = np.where(eligible, np.minimum(t_rel, follow), np.nan)
    return pd.DataFrame(
        {
            "patient": np.arange(n),
            "arm": arm,
            "eligible": eligible,
            "eligible_time": stop,
            "stop_time": stop,
            "time_on_tki": stop,
            "time_in_mr4_before_stop": rng.uniform(365.0, 2000.0, n),
            "depth_at_stop": rng.integers(4, 6, n),
            "relapse": event,
            "relapse_time": np.where(event, stop + months * DAYS_PER_MONTH, np.nan),
            "months_to_relapse_or_censor": months,
            "event": event,
            "bcr_abl_at_stop": 10.0 ** rng.uniform(-4.0, -2.0, n),
            "Z_at_stop": rng.lognormal(0.0, 1.0, n),
            "E_at_stop": rng.uniform(0.0, 1.0, n),
            "N_at_stop": nk,
            "X_at_stop": 1.0,
            "Y_at_stop": 1.0,
            "param_s_N": s_n,
            "t_mmr_measured": 365.0,
            "t_mr4_measured": 700.0,
            "t_mr45_measured": np.nan,
        }
    )


def _tiny() -> pd.DataFrame:
    # six stopped patients + one ineligible + one eligible never stopped (both must be ignored)
    months = [2.0, 3.0, 3.0, 5.0, 8.0, 10.0, 1.0, 1.0]
    event = [True, True, False, True, False, True, True, True]
    eligible = [True] * 6 + [False, True]
    stop = [1000.0] * 6 + [1000.0, np.nan]
    return pd.DataFrame(
        {
            "patient": range(8),
            "arm": "a",
            "eligible": eligible,
            "stop_time": stop,
            "months_to_relapse_or_censor": months,
            "event": event,
        }
    )


# ---------------------------------------------------------------------------------------------
# Kaplan–Meier
# ---------------------------------------------------------------------------------------------


def test_km_matches_hand_computation():
    t = _tiny()
    kmf = o.km(t)
    assert len(kmf.durations) == 6  # the ineligible and the never-stopped patient are dropped
    # at risk 6, 5 (one event, one censored at 3: event first), 3, 1
    hand = {1.9: 1.0, 2.0: 5 / 6, 3.0: 5 / 6 * 4 / 5, 4.0: 2 / 3, 5.0: 2 / 3 * 2 / 3, 9.0: 4 / 9}
    for t_m, s in hand.items():
        assert o.tfr_at(t, t_m)[0] == pytest.approx(s, abs=1e-12), t_m
    assert o.tfr_at(t, 10.0)[0] == 0.0
    assert o.tfr_at(t, 15.0)[0] == 0.0  # curve reached 0: defined beyond the last time
    # exponential Greenwood (log(-log)) interval at 4 months, by hand
    s = 2 / 3
    greenwood = 1 / (6 * 5) + 1 / (5 * 4)
    sd = math.sqrt(greenwood / math.log(s) ** 2)
    z = stats.norm.ppf(0.975)
    _, lo, hi = o.tfr_at(t, 4.0)
    assert lo == pytest.approx(s ** math.exp(z * sd), rel=1e-9)
    assert hi == pytest.approx(s ** math.exp(-z * sd), rel=1e-9)
    assert o.tfr_at(t, 1.0) == (1.0, 1.0, 1.0)


def test_km_table_counts_and_nan_beyond_follow_up():
    t = _tiny()
    t.loc[5, "event"] = False  # last patient censored at 10: S undefined after 10
    kt = o.km_table(t, months=(0, 6, 12))
    row6 = kt.set_index("months").loc[6]
    assert (row6["n_patients"], row6["n_eligible"], row6["n_stopped"]) == (8, 7, 6)
    assert row6["n_at_risk"] == 2 and row6["n_events"] == 3
    assert row6["tfr"] == pytest.approx(4 / 9)
    assert np.isnan(kt.set_index("months").loc[12, "tfr"])
    assert kt.set_index("months").loc[0, "tfr"] == 1.0


def test_km_arms_and_errors():
    t = pd.concat([synthetic_table(50, arm="x"), synthetic_table(60, arm="y")], ignore_index=True)
    assert len(o.km(t, "y").durations) == o.stopped(t, "y").shape[0]
    assert list(o.km_table(t, months=(6,))["arm"]) == ["x", "y"]
    with pytest.raises(ValueError, match="no patients in arm"):
        o.km(t, "z")
    with pytest.raises(KeyError, match="event"):
        o.km(t.drop(columns="event"))


def test_tfr_ci_contains_true_value_exponential():
    rate = 0.04  # per month: S(12) = exp(-0.48)
    truth = math.exp(-12 * rate)
    cover = []
    for seed in range(60):
        t = synthetic_table(300, seed=seed, rate=rate, nk_effect=0.0)
        est, lo, hi = o.tfr_at(t, 12)
        cover.append(lo <= truth <= hi)
        if seed == 0:
            assert lo <= truth <= hi and abs(est - truth) < 0.08
    assert 0.85 <= np.mean(cover) <= 1.0


# ---------------------------------------------------------------------------------------------
# paired arms
# ---------------------------------------------------------------------------------------------


def _flipped(a: pd.DataFrame, months: float, k_helped: int, k_harmed: int):
    """Arm B = arm A with k_helped relapses by `months` turned relapse-free and k_harmed
    relapse-free patients turned into relapses at 5 months."""
    b = a.copy()
    status = o.relapse_by(a, months)
    relapsed = status.index[status == 1.0][:k_helped]
    free = status.index[status == 0.0][:k_harmed]
    b.loc[relapsed, ["event", "relapse"]] = False
    b.loc[relapsed, "months_to_relapse_or_censor"] = 60.0
    b.loc[free, ["event", "relapse"]] = True
    b.loc[free, "months_to_relapse_or_censor"] = 5.0
    return b, status


@pytest.mark.parametrize("k_helped,k_harmed", [(25, 7), (0, 0), (3, 11)])
def test_paired_difference_known_flips(k_helped, k_harmed):
    a = synthetic_table(400, seed=3, max_follow=40.0)
    a.loc[a.index[:5], "months_to_relapse_or_censor"] = 6.0  # censored before 12 months
    a.loc[a.index[:5], "event"] = False
    b, status = _flipped(a, 12, k_helped, k_harmed)
    n = int(np.isfinite(status).sum())
    res = o.paired_difference(a, b, 12)
    assert res["n_pairs"] == n
    assert res["n_not_evaluable"] == int(a["eligible"].sum() - n) + int((~a["eligible"]).sum())
    assert res["relapse_a_only"] == k_helped and res["relapse_b_only"] == k_harmed
    assert res["relapse_both"] == int((status == 1).sum()) - k_helped
    assert res["difference"] == pytest.approx((k_helped - k_harmed) / n, abs=1e-15)
    assert res["tfr_b"] - res["tfr_a"] == pytest.approx(res["difference"], abs=1e-12)
    expected_p = stats.binomtest(k_helped, k_helped + k_harmed, 0.5).pvalue if k_helped else 1.0
    assert res["mcnemar_p"] == pytest.approx(expected_p, rel=1e-10)
    assert res["ci_low"] <= res["difference"] <= res["ci_high"]
    assert res["ci_high"] > res["ci_low"]  # never collapses, even with no discordant pair
    boot = o.paired_difference(a, b, 12, ci="bootstrap", n_boot=4000, seed=7)
    assert boot == o.paired_difference(a, b, 12, ci="bootstrap", n_boot=4000, seed=7)
    assert boot["ci_low"] <= boot["difference"] <= boot["ci_high"]
    if k_helped + k_harmed > 10:
        assert boot["ci_low"] == pytest.approx(res["ci_low"], abs=0.015)
        assert boot["ci_high"] == pytest.approx(res["ci_high"], abs=0.015)


def test_mcnemar_matches_binomtest():
    for b, c in [(0, 5), (3, 9), (10, 10), (1, 30), (17, 4)]:
        assert o.mcnemar_exact(b, c) == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue)
    assert o.mcnemar_exact(0, 0) == 1.0


def test_newcombe_paired_coverage():
    # paired binary outcomes with P(b) = 0.08, P(c) = 0.03, n = 120: true difference 0.05
    rng = np.random.default_rng(11)
    probs = np.array([0.45, 0.08, 0.03, 0.44])
    hits = []
    for _ in range(1000):
        a, b, c, d = rng.multinomial(120, probs)
        lo, hi = o.newcombe_paired_ci(a, b, c, d)
        hits.append(lo <= 0.05 <= hi)
    assert 0.93 <= np.mean(hits) <= 0.975


def test_paired_difference_rejects_duplicates():
    a = synthetic_table(20)
    with pytest.raises(ValueError, match="unique"):
        o.paired_difference(pd.concat([a, a]), a, 12)
    with pytest.raises(ValueError, match="newcombe"):
        o.paired_difference(a, a, 12, ci="wald")


# ---------------------------------------------------------------------------------------------
# biomarkers
# ---------------------------------------------------------------------------------------------


def _brute_auc(x, y):
    p, n = x[y], x[~y]
    gt = (p[:, None] > n[None, :]).sum()
    eq = (p[:, None] == n[None, :]).sum()
    return (gt + 0.5 * eq) / (len(p) * len(n))


def test_auc_equals_mann_whitney_and_delong_variance():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 12, 90).astype(float)  # many ties
    y = rng.random(90) < 0.4
    x[y] += 2
    auc, var = o.auc_delong(x, y)
    assert auc == pytest.approx(_brute_auc(x, y), abs=1e-14)
    u = stats.mannwhitneyu(x[y], x[~y]).statistic
    assert auc == pytest.approx(u / (y.sum() * (~y).sum()), abs=1e-14)
    # DeLong structural components by brute force
    p, n = x[y], x[~y]
    psi = (p[:, None] > n[None, :]) + 0.5 * (p[:, None] == n[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    brute_var = v10.var(ddof=1) / len(p) + v01.var(ddof=1) / len(n)
    assert var == pytest.approx(brute_var, rel=1e-12)
    # the ROC curve's trapezoid area is the same AUC (ties give half credit)
    curve = o.roc_curve(x, y)
    assert np.trapezoid(curve["tpr"], curve["fpr"]) == pytest.approx(auc, abs=1e-12)


def test_biomarker_auc_orientation_and_ci():
    t = synthetic_table(500, seed=2, nk_effect=2.0)
    res = o.biomarker_auc(t)
    assert list(res.index) == list(o.DEFAULT_MARKERS)
    nk = res.loc["N_at_stop"]
    assert nk["direction"] == "lower in relapsers"
    assert nk["auc"] == pytest.approx(1.0 - nk["auc_raw"])
    assert nk["ci_low"] > 0.5 and nk["auc"] > 0.65 and nk["p_value"] < 1e-6
    for marker in ("Z_at_stop", "E_at_stop", "bcr_abl_at_stop", "time_in_mr4_before_stop"):
        r = res.loc[marker]
        assert r["ci_low"] <= 0.5 <= r["ci_high"], marker  # noise markers (seed fixed)
    assert (res["auc"] >= 0.5).all()
    y = o.relapse_by(t, 12)
    ok = np.isfinite(y.to_numpy())
    assert nk["n"] == ok.sum() and nk["n_relapse"] == (y == 1).sum()
    x = t["N_at_stop"].to_numpy()[ok]
    assert nk["auc_raw"] == pytest.approx(_brute_auc(x, y.to_numpy()[ok].astype(bool)))
    ever = o.biomarker_auc(t, ["N_at_stop"], outcome="event")
    assert ever.loc["N_at_stop", "n"] == len(o.stopped(t))
    with pytest.raises(ValueError, match="unknown outcome"):
        o.biomarker_auc(t, outcome="death")


def test_marker_source_host_vs_course():
    t = synthetic_table(800, seed=4, nk_effect=2.0)
    host = o.marker_source(t, "N_at_stop", "param_s_N")
    assert host["r2"] > 0.8 and host["log_marker"] and host["log_host"] == [True]
    assert host["host_share"] > 0.8
    assert host["auc_host"] == pytest.approx(
        o.biomarker_auc(t, ["param_s_N"]).loc["param_s_N", "auc"]
    )
    assert host["auc_course_ci"][0] <= 0.5 <= host["auc_course_ci"][1]

    # a marker made by the disease course: relapse driven by a course variable the host does
    # not set; s_N independent of outcome
    rng = np.random.default_rng(9)
    c = synthetic_table(800, seed=4, nk_effect=0.0)
    course = rng.lognormal(0.0, 0.5, len(c))
    months = c["months_to_relapse_or_censor"].to_numpy()
    c["months_to_relapse_or_censor"] = months * course**1.5
    c["event"] = c["event"] & (c["months_to_relapse_or_censor"] <= 60.0)
    c["marker"] = course * rng.lognormal(0.0, 0.1, len(c))
    src = o.marker_source(c, "marker", "param_s_N")
    assert src["auc_marker"] > 0.6
    assert src["host_share"] < 0.2
    assert src["auc_host_ci"][0] <= 0.5 <= src["auc_host_ci"][1]
    assert src["auc_course"] == pytest.approx(src["auc_marker"], abs=0.03)
    assert src["r2"] < 0.05
