"""Tests of sim.cohort: sampling laws, bounds, streams, outcome table, threads, CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim import cohort, models
from sim.cli import main
from sim.engines import ode
from sim.scenario import loads

MONTH = 365.25 / 12.0
MODEL = models.get("cml_immune")
N = 20_000

HEAD = """\
[scenario]
name = "t-cohort"
horizon = "8y"
seed = 11

[[therapy]]
drug = "imatinib"

[trial]
design = "euro-ski"
"""

# base "none" with moderate variation: fast, well-behaved patients for the kernel tests
SMALL = (
    HEAD
    + """
[cohort]
size = 40
base = "none"
e_tki = { dist = "lognormal", median = "2.4/mo", sd_log = 0.5 }
p_xy = { dist = "lognormal", median = "0.006/mo", sd_log = 0.5 }
s_N = { dist = "lognormal", median = 17, sd_log = 0.48 }
"""
)


def _sample(body: str, seed: int = 11, size: int = N):
    sc = loads(HEAD + "\n[cohort]\nsize = 10\n" + body, "t.toml")
    P, h = cohort.sample_parameters(sc.cohort, MODEL, sc.patient, seed, size)
    return P, h, sc


def _col(P, name):
    return P[:, MODEL.params.index(name)]


def test_normal_and_truncated_normal_moments():
    P, _, _ = _sample(
        'K_z = { dist = "normal", mean = 300, sd = 40 }\n'
        'p_z = { dist = "normal", mean = 1, sd = 2, lower = 0.5, upper = 4 }\n'
    )
    kz = _col(P, "K_z")
    assert abs(kz.mean() - 300) < 4 * 40 / math.sqrt(N)
    assert abs(kz.std() / 40 - 1) < 0.03
    pz = _col(P, "p_z")
    assert pz.min() >= 0.5 and pz.max() <= 4
    law = stats.truncnorm((0.5 - 1) / 2, (4 - 1) / 2, loc=1, scale=2)
    assert abs(pz.mean() - law.mean()) < 4 * law.std() / math.sqrt(N)
    assert stats.kstest(pz, law.cdf).pvalue > 1e-3


def test_lognormal_uniform_fixed_moments():
    P, _, _ = _sample(
        'p_xy = { dist = "lognormal", median = "0.05/mo", sd_log = 0.5 }\n'
        'm_N = { dist = "uniform", low = 1e-5, high = 3e-4 }\n'
        "y0 = 123456\n"
    )
    lx = np.log(_col(P, "p_xy"))
    assert abs(lx.mean() - math.log(0.05 / MONTH)) < 4 * 0.5 / math.sqrt(N)
    assert abs(lx.std() / 0.5 - 1) < 0.03
    m = _col(P, "m_N")
    assert m.min() >= 1e-5 and m.max() <= 3e-4
    assert stats.kstest(m, stats.uniform(1e-5, 2.9e-4).cdf).pvalue > 1e-3
    assert np.all(_col(P, "y0") == 123456)


def test_empirical_resamples_the_column(tmp_path: Path):
    (tmp_path / "v.csv").write_text("x\n1\n2\n2\n7\n", encoding="utf-8")
    f = tmp_path / "s.toml"
    f.write_text(
        HEAD + '\n[cohort]\nsize = 5\nK_z = { dist = "empirical", file = "v.csv", column = "x" }\n',
        encoding="utf-8",
    )
    from sim.scenario import load

    sc = load(f)
    P, _ = cohort.sample_parameters(sc.cohort, MODEL, sc.patient, 3, N)
    kz = _col(P, "K_z")
    assert set(np.unique(kz)) == {1.0, 2.0, 7.0}
    assert abs(np.mean(kz == 2.0) - 0.5) < 0.02
    assert abs(np.mean(kz == 7.0) - 0.25) < 0.02


def test_gaussian_copula_correlation():
    P, _, _ = _sample(
        'K_z = { dist = "normal", mean = 300, sd = 40 }\n'
        'p_z = { dist = "normal", mean = 50, sd = 5 }\n'
        'p_xy = { dist = "lognormal", median = "0.05/mo", sd_log = 0.5 }\n'
        'e_tki = { dist = "lognormal", median = "2.4/mo", sd_log = 0.3 }\n'
        "correlation = [\n"
        '  { params = ["K_z", "p_z"], matrix = [[1, 0.6], [0.6, 1]] },\n'
        '  { params = ["p_xy", "e_tki"], matrix = [[1, -0.4], [-0.4, 1]] },\n'
        "]\n"
    )
    r = np.corrcoef(_col(P, "K_z"), _col(P, "p_z"))[0, 1]
    assert abs(r - 0.6) < 0.03
    r_log = np.corrcoef(np.log(_col(P, "p_xy")), np.log(_col(P, "e_tki")))[0, 1]
    assert abs(r_log + 0.4) < 0.03
    # different groups stay independent
    assert abs(np.corrcoef(_col(P, "K_z"), _col(P, "e_tki"))[0, 1]) < 0.04


def test_bounds_respected_by_truncation():
    # a normal law with most of its mass below the lower bound 0 of p_yx
    P, _, _ = _sample('p_yx = { dist = "normal", mean = -0.001, sd = 0.001 }\n')
    v = _col(P, "p_yx")
    assert v.min() >= 0.0 and v.max() <= 1.0 and np.unique(v).size > N // 2
    P, _, _ = _sample('m_N = { dist = "lognormal", median = 5e-3, sd_log = 2 }\n')
    assert _col(P, "m_N").max() <= MODEL.params["m_N"].upper
    P, _, _ = _sample("spread = 2.0\n")
    lower = np.array([p.lower for p in MODEL.params])
    upper = np.array([p.upper for p in MODEL.params])
    assert np.all((P >= lower) & (P <= upper))


def test_default_cohort_hahnel_base():
    P, h, _ = _sample('calibration = "none"\n')
    assert h.min() == 1 and h.max() == 21
    counts = np.bincount(h, minlength=22)[1:]
    assert counts.min() > N / 21 * 0.8
    from sim.scenario import hahnel_patient

    for name in cohort.HAHNEL_PARAMS:
        ref = np.array([hahnel_patient(int(i))[name] for i in h[:500]])
        ratio = np.log(_col(P, name)[:500] / ref)
        assert abs(ratio.std() - 0.1) < 0.015
    level = _col(P, "s_N") / _col(P, "d_N")
    lo, hi = np.quantile(level, [0.025, 0.975])
    assert 80 < lo < 100 and 540 < hi < 660
    lm = np.log(_col(P, "m_N") / 1e-4)
    assert abs(lm.mean()) < 0.02 and abs(lm.std() - cohort.M_N_SD_LOG) < 0.02


def test_default_calibration_refits_tki_effect_and_load_keeping_the_reservoir():
    """calibration = "tang2011" (the default): e_tki x 1.45, y0/K_y lognormal (median 0.6, log-sd
    0.4) clipped to [0.1, 0.95], X0 capped at the Hähnel patient's own X0; the same patients and
    perturbations as without it (the calibration draws from its own stream)."""
    raw, h0, _ = _sample('calibration = "none"\n')
    P, h, _ = _sample("")
    np.testing.assert_array_equal(h, h0)
    cal = cohort.CALIBRATION
    np.testing.assert_allclose(_col(P, "e_tki"), cal.tki_effect_scale * _col(raw, "e_tki"))
    frac = _col(P, "y0") / _col(P, "K_y")
    assert frac.min() >= cal.y0_low and frac.max() <= cal.y0_high
    assert abs(np.median(frac) - cal.y0_median) < 0.02
    reservoir = _col(raw, "p_yx") / _col(raw, "p_xy") * _col(raw, "y0")
    np.testing.assert_allclose(_col(P, "x0_cap"), reservoir)
    X0 = MODEL.initial_state(P[0])[0]
    assert X0 <= reservoir[0] * (1 + 1e-12)
    for name in ("p_xy", "p_yx", "p_z", "K_z", "s_N", "m_N"):
        np.testing.assert_array_equal(_col(P, name), _col(raw, name))


def test_sampling_reproducible_and_seeded():
    a, ha, _ = _sample('p_xy = { dist = "lognormal", median = "0.05/mo", sd_log = 0.5 }\n', 5, 500)
    b, hb, _ = _sample('p_xy = { dist = "lognormal", median = "0.05/mo", sd_log = 0.5 }\n', 5, 500)
    c, _, _ = _sample('p_xy = { dist = "lognormal", median = "0.05/mo", sd_log = 0.5 }\n', 6, 500)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ha, hb)
    assert not np.array_equal(a, c)


def test_before_stop_from_visit_log():
    vis = np.full((2, 8, ode.V_N), np.nan)
    times = [90, 180, 270, 360, 450, 540]
    depths = [0, 3, 4, 3, 4, 5]
    for j, (t, d) in enumerate(zip(times, depths)):
        vis[0, j, ode.V_TIME] = t
        vis[0, j, ode.V_DEPTH] = d
        vis[0, j, ode.V_ON_TKI] = 1
    vis[0, 6, [ode.V_TIME, ode.V_DEPTH, ode.V_ON_TKI]] = (600, 0, 0)  # after the stop: ignored
    ev = np.full((2, 4, 3), np.nan)
    ev[:, 0] = (0.0, 1, 1.0)
    ev[0, 1] = (100.0, 1, 0.0)  # a 50-day gap
    ev[0, 2] = (150.0, 1, 1.0)
    out = cohort._before_stop(vis, ev, np.array([540.0, np.nan]))
    assert out[0, 0] == pytest.approx(540 - 50)
    assert out[0, 1] == pytest.approx(540 - 450)  # MR4 run: visits at 450 and 540
    assert out[0, 2] == 5
    assert np.isnan(out[1, 0]) and np.isnan(out[1, 1]) and out[1, 2] == -1


@pytest.fixture(scope="module")
def small_runs():
    sc = loads(SMALL, "small.toml")
    one = cohort.run_cohort(sc, threads=1)
    two = cohort.run_cohort(sc, threads=min(2, numba.config.NUMBA_NUM_THREADS), chunk=7)
    return sc, one, two


def test_same_table_on_one_and_two_threads(small_runs):
    _, one, two = small_runs
    pd.testing.assert_frame_equal(one.outcomes, two.outcomes)
    assert one.outcomes["eligible"].sum() > 5  # the comparison covers stops and relapses
    assert one.outcomes["stop_time"].notna().sum() > 5


def test_outcome_table_columns_and_consistency(small_runs):
    sc, res, _ = small_runs
    tab = res.outcomes
    assert len(tab) == sc.cohort.size
    assert tuple(tab.columns[: len(cohort.OUTCOME_COLUMNS)]) == cohort.OUTCOME_COLUMNS
    for c in ("t_mmr_measured", "t_mr4_measured", "t_mr45_measured", "N_at_stop", "E_at_stop"):
        assert c in tab
    assert {f"param_{n}" for n in MODEL.params.names} <= set(tab.columns)
    assert (tab["arm"] == sc.trial.arm).all()
    st = tab[tab["stop_time"].notna()]
    assert (st["time_on_tki"] >= 3 * 365.25 - 1e-6).all()
    assert (st["time_in_mr4_before_stop"] >= 365.25 - 1e-6).all()
    assert (st["depth_at_stop"] >= 4).all()
    assert (st["months_to_relapse_or_censor"] <= 24 + 1e-9).all()
    ev = st[st["event"]]
    np.testing.assert_allclose(
        ev["months_to_relapse_or_censor"], (ev["relapse_time"] - ev["stop_time"]) / MONTH
    )
    assert not tab.loc[tab["stop_time"].isna(), "relapse"].any()
    assert set(res.sampled) == {"e_tki", "p_xy", "s_N"}


def test_never_eligible_patients_are_counted():
    text = SMALL.replace('median = "2.4/mo", sd_log = 0.5', 'median = "0.05/mo", sd_log = 0.1')
    sc = loads(text.replace("size = 40", "size = 6"), "weak.toml")
    tab = cohort.run_cohort(sc).outcomes
    assert len(tab) == 6
    assert not tab["eligible"].any()
    assert tab["stop_time"].isna().all() and (tab["depth_at_stop"] == -1).all()
    assert np.isnan(cohort.tfr_fractions(tab)[6])


def test_tfr_fractions_simple():
    tab = pd.DataFrame(
        {
            "stop_time": [1.0, 1.0, 1.0, 1.0, np.nan],
            "months_to_relapse_or_censor": [3.0, 24.0, 10.0, 8.0, np.nan],
            "event": [True, False, True, False, False],
        }
    )
    f = cohort.tfr_fractions(tab, (6, 12, 24))
    assert f[6] == pytest.approx(3 / 4)
    assert f[12] == pytest.approx(1 / 3)  # the patient censored at 8 months is left out
    assert f[24] == pytest.approx(1 / 3)


def test_write_never_overwrites(small_runs, tmp_path):
    _, res, _ = small_runs
    a = cohort.write_cohort(res, tmp_path)
    b = cohort.write_cohort(res, tmp_path)
    assert a.name == "t-cohort" and b.name == "t-cohort.2"
    ds, tab = cohort.load_cohort(a)
    assert ds.sizes["patient"] == 40
    assert ds.attrs["design"] == "euro-ski" and "scenario" in ds.attrs
    np.testing.assert_allclose(ds["params"].values, res.params)
    np.testing.assert_array_equal(tab["eligible"].to_numpy(), res.outcomes["eligible"].to_numpy())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_end_to_end(tmp_path, capsys):
    f = tmp_path / "c.toml"
    f.write_text(SMALL.replace("[cohort]", "[cohort]\nstore_visits = true\n"), encoding="utf-8")
    code = main(["cohort", str(f), "--size", "50", "--results", str(tmp_path / "r"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "50 patients" in out and "eligible" in out and "6 mo" in out and "24 mo" in out
    d = tmp_path / "r" / "t-cohort"
    assert (d / "outcomes.csv").is_file() and (d / "cohort.nc").is_file()
    assert len(pd.read_csv(d / "outcomes.csv")) == 50
    ds, _ = cohort.load_cohort(d)
    assert ds["visits"].shape[:2] == (50, cohort.MAX_VISITS)
    # the analysis beside the data: KM table, and figures with their source data
    km = pd.read_csv(d / "km_table.csv")
    assert set(km["months"]) == {6, 12, 24, 60}
    stopped = int(pd.read_csv(d / "outcomes.csv")["stop_time"].notna().sum())
    if stopped:
        assert "Kaplan-Meier" in out
        for stem in ("km", "swimmer"):
            assert (d / f"{stem}.png").stat().st_size > 0 and (d / f"{stem}_data.csv").is_file()


def test_cli_bad_input(tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text(SMALL.replace("size = 40", "size = -1"), encoding="utf-8")
    assert main(["cohort", str(f), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cohort.size" in err and err.count("\n") == 1
    g = tmp_path / "nocohort.toml"
    g.write_text(HEAD, encoding="utf-8")
    assert main(["cohort", str(g), "--results", str(tmp_path)]) == 2
    assert "no [cohort]" in capsys.readouterr().err
