"""Tests of the ``[cohort]`` and ``[trial]`` sections of scenario files (sim.scenario)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim import readout
from sim.engines import ode
from sim.run import compile_protocol
from sim.scenario import ScenarioError, load, loads

MONTH = 365.25 / 12.0
YEAR = 365.25
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

HEAD = """\
[scenario]
name = "c"
horizon = "12y"
seed = 7

[[therapy]]
drug = "imatinib"
"""


def _sc(extra: str, protocol: str = ""):
    return loads(HEAD + protocol + extra, "t.toml")


def test_shipped_cohort_scenario():
    sc = load(SCENARIOS / "cohort-euro-ski.toml")
    assert sc.cohort is not None and sc.cohort.size == 10_000
    assert sc.cohort.base == "hahnel2020" and sc.cohort.spread == 0.1
    assert sc.trial is not None and sc.trial.design == "euro-ski"
    assert sc.trial.arm == "imatinib-stop"
    assert sc.trial.follow_up == pytest.approx(24 * MONTH)


@pytest.mark.parametrize(
    ("design", "after", "depth", "sustained", "lead", "dose", "rule"),
    [
        ("euro-ski", 3 * YEAR, readout.DEPTH_MR4, 1 * YEAR, 0.0, 1.0, 1),
        ("stim", 3 * YEAR, readout.DEPTH_MR45, 2 * YEAR, 0.0, 1.0, 1),
        ("destiny", 3 * YEAR, readout.DEPTH_MMR, 1 * YEAR, 12 * MONTH, 0.5, 2),
    ],
)
def test_designs_map_to_protocol_arrays(design, after, depth, sustained, lead, dose, rule):
    sc = _sc(f'[trial]\ndesign = "{design}"\n')
    pr = compile_protocol(sc.protocol, sc.horizon)
    assert pr[ode.PR_STOP_KIND] == ode.STOP_CRITERIA
    assert pr[ode.PR_STOP_AFTER] == pytest.approx(after)
    assert pr[ode.PR_STOP_DEPTH] == depth
    assert pr[ode.PR_STOP_FOR] == pytest.approx(sustained)
    assert pr[ode.PR_LEAD_IN] == pytest.approx(lead)
    assert pr[ode.PR_LEAD_DOSE] == pytest.approx(dose)
    assert pr[ode.PR_RELAPSE_RULE] == rule
    assert pr[ode.PR_RESTART] == 1.0
    assert pr[ode.PR_MAX_STOPS] == 1
    assert sc.trial.arm == "c"  # default: the scenario name


def test_design_overrides_and_custom():
    sc = _sc('[trial]\ndesign = "euro-ski"\nmin_tki = "5y"\nsustained = "MR4.5"\n')
    assert sc.protocol.stop_after == pytest.approx(5 * YEAR)
    assert sc.protocol.stop_depth == readout.DEPTH_MR45
    sc = _sc(
        '[trial]\ndesign = "custom"\nfollow_up = "36mo"\n',
        '[protocol]\nstop = { after = "4y", sustained = "MMR", for = "6mo" }\n'
        'restart = "two_consecutive"\n',
    )
    assert sc.protocol.stop_after == pytest.approx(4 * YEAR)
    assert sc.protocol.restart == "two_consecutive"
    assert sc.trial.follow_up == pytest.approx(36 * MONTH)


def test_distributions_parse_in_table_units():
    sc = _sc(
        """[cohort]
size = 10
base = "none"
p_xy = { dist = "lognormal", median = "0.05/mo", sd_log = 0.5 }
e_tki = { dist = "normal", mean = "2.5/mo", sd = "0.5/mo", lower = 0.01 }
m_N = { dist = "uniform", low = 0, high = 2e-4 }
K_z = { dist = "truncated", of = "normal", mean = 100, sd = 50, lower = 10, upper = 500 }
y0 = 3e5
correlation = { params = ["p_xy", "e_tki"], matrix = [[1, 0.3], [0.3, 1]] }
"""
    )
    d = {p.name: p for p in sc.cohort.params}
    assert d["p_xy"].dist == "lognormal"
    assert d["p_xy"].a == pytest.approx(math.log(0.05 / MONTH))
    assert d["e_tki"].a == pytest.approx(2.5 / MONTH) and d["e_tki"].b == pytest.approx(0.5 / MONTH)
    assert d["e_tki"].lower == 0.01
    assert (d["m_N"].a, d["m_N"].b) == (0.0, 2e-4)
    assert (d["K_z"].dist, d["K_z"].lower, d["K_z"].upper) == ("normal", 10, 500)
    assert d["y0"].dist == "fixed" and d["y0"].a == 3e5
    assert sc.cohort.correlations[0].params == ("p_xy", "e_tki")
    assert sc.cohort.correlations[0].matrix[0][1] == 0.3


def test_empirical_relative_to_scenario(tmp_path):
    (tmp_path / "nk.csv").write_text("id,level\n1,0.01\n2,0.02\n3,5\n", encoding="utf-8")
    f = tmp_path / "s.toml"
    f.write_text(
        HEAD + '[cohort]\nsize = 3\nd_N = { dist = "empirical", file = "nk.csv", column = "level",'
        " upper = 1 }\n",
        encoding="utf-8",
    )
    d = load(f).cohort.params[0]
    assert d.values == (0.01, 0.02)  # 5 is outside upper = 1: dropped


BAD = {
    "unknown cohort key": (
        '[cohort]\nsize = 10\nszie = 3\n', "cohort.szie", 10, "did you mean 'size'"),
    "size zero": ("[cohort]\nsize = 0\n", "cohort.size", 9, "an integer from 1"),
    "size missing": ("[cohort]\nbase = \"none\"\n", "cohort.size", None, "key is missing"),
    "bad base": ('[cohort]\nsize = 3\nbase = "hahnel"\n', "cohort.base", 10, "hahnel2020"),
    "bad dist": (
        '[cohort]\nsize = 3\np_xy = { dist = "lognorm", median = 0.001, sd_log = 0.5 }\n',
        "cohort.p_xy.dist", 10, "did you mean 'lognormal'",
    ),
    "dist key of another dist": (
        '[cohort]\nsize = 3\np_xy = { dist = "normal", median = 0.001, sd = 0.5 }\n',
        "cohort.p_xy.median", 10, "one of dist, mean, sd",
    ),
    "negative sd_log": (
        '[cohort]\nsize = 3\np_xy = { dist = "lognormal", median = 0.001, sd_log = -1 }\n',
        "cohort.p_xy.sd_log", 10, "> 0",
    ),
    "uniform reversed": (
        '[cohort]\nsize = 3\nm_N = { dist = "uniform", low = 2e-4, high = 1e-4 }\n',
        "cohort.m_N.high", 10, "low < high",
    ),
    "truncated without bounds": (
        '[cohort]\nsize = 3\nK_z = { dist = "truncated", of = "normal", mean = 1, sd = 1 }\n',
        "cohort.K_z.lower", 10, "lower and/or upper",
    ),
    "fixed out of bounds": (
        "[cohort]\nsize = 3\np_xy = 5.0\n", "cohort.p_xy", 10, "bounds of p_xy"),
    "empty truncation": (
        '[cohort]\nsize = 3\nK_z = { dist = "normal", mean = 1, sd = 1, lower = 5, upper = 2 }\n',
        "cohort.K_z.upper", 10, "lower < upper",
    ),
    "unknown parameter": (
        '[cohort]\nsize = 3\np_xyy = 0.1\n', "cohort.p_xyy", 10, "did you mean 'p_xy'"),
    "correlation without distribution": (
        '[cohort]\nsize = 3\np_xy = { dist = "lognormal", median = 0.001, sd_log = 0.5 }\n'
        'correlation = { params = ["p_xy", "e_tki"], matrix = [[1, 0.3], [0.3, 1]] }\n',
        "cohort.correlation.params", 11, "no distribution",
    ),
    "correlation not positive definite": (
        '[cohort]\nsize = 3\np_xy = { dist = "lognormal", median = 0.001, sd_log = 0.5 }\n'
        'e_tki = { dist = "lognormal", median = 0.08, sd_log = 0.5 }\n'
        'correlation = { params = ["p_xy", "e_tki"], matrix = [[1, 1.5], [1.5, 1]] }\n',
        "cohort.correlation.matrix", 12, "positive-definite",
    ),
    "bad design": ('[trial]\ndesign = "euroski"\n', "trial.design", 9, "did you mean 'euro-ski'"),
    "bad follow-up": (
        '[trial]\ndesign = "stim"\nfollow_up = "-3mo"\n', "trial.follow_up", 10, "duration"),
    "custom with overrides": (
        '[trial]\ndesign = "custom"\nmin_tki = "3y"\n', "trial.min_tki", 10, "custom"),
    "custom without stop": ('[trial]\ndesign = "custom"\n', "trial.design", 9, "stop rule"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_clear_error(case):
    extra, key, line, words = BAD[case]
    with pytest.raises(ScenarioError) as info:
        _sc(extra)
    err = info.value
    assert err.key == key, str(err)
    if line is not None:
        assert err.line == line, str(err)
    assert words in str(err), str(err)
    assert str(err).startswith("t.toml:")


def test_named_design_rejects_protocol_stop():
    with pytest.raises(ScenarioError) as info:
        _sc(
            '[trial]\ndesign = "destiny"\n',
            '[protocol]\nstop = { after = "4y", sustained = "MMR", for = "6mo" }\n',
        )
    assert info.value.key == "protocol.stop"
    assert info.value.line == 9
    assert 'design = "custom"' in str(info.value)


def test_trial_horizon_too_short():
    text = (HEAD + '[trial]\ndesign = "euro-ski"\n').replace('"12y"', '"2y"')
    with pytest.raises(ScenarioError) as info:
        loads(text, "t.toml")
    assert info.value.key == "trial.design" and "horizon" in str(info.value)


def test_cohort_defaults_and_no_cohort():
    sc = _sc("[cohort]\nsize = 5\n")
    assert sc.cohort.base == "hahnel2020" and sc.cohort.params == ()
    assert sc.cohort.trajectory_every is None and not sc.cohort.store_visits
    assert _sc("").cohort is None and _sc("").trial is None
    assert np.isfinite(sc.param_vector()).sum() > 0
