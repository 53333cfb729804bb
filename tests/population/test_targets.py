"""Published calibration targets and TKI potency data: the shipped files load, are consistent
with their own sources and intervals, and the scoring rule behaves as documented."""

from __future__ import annotations

import math
import re
from importlib import resources

import pytest

from sim.population import targets as tg
from sim.population.targets import (
    Target,
    TargetsError,
    load_potency,
    load_targets,
    score,
    wilson_interval,
)

HEADER = ",".join(tg._TARGET_COLUMNS)
GOOD = (
    "mmr_x,major molecular response,imatinib 400 mg QD,12mo,ENESTnd,0.22,0.1757,0.2718,"
    "binomial,283,proportion,fraction,Some A. J 2010;1:1-2,yes,"
)


def _make(value=0.25, lo=0.2, hi=0.3, kind="proportion", interval="published"):
    return Target(
        target="t", quantity="q", arm="a", time="12mo", time_days=365.25, trial="T",
        value=value, lo=lo, hi=hi, interval=interval, n=100, kind=kind, unit="fraction",
        source="S", verified="yes", note="",
    )  # fmt: skip


def _parse(*rows: str):
    return tg._targets_from_text("# comment\n" + HEADER + "\n" + "\n".join(rows) + "\n", "f.csv")


def test_files_are_installed_as_package_data():
    data = resources.files("sim") / "data"
    assert (data / "calibration_targets.csv").is_file()
    assert (data / "tki_potency.csv").is_file()


def test_targets_load_with_unique_ids_and_sources():
    ts = load_targets()
    ids = [t.target for t in ts]
    assert len(ids) == len(set(ids))
    for t in ts:
        # a citation has a year, or is a web page with its address
        assert re.search(r"(19|20)\d\d|https://", t.source), t.target
        if t.verified == "no":
            assert "unverified" in t.note, t.target


ISSUE_TARGETS = (
    "tang_phase1_slope_imatinib",
    "tang_phase1_slope_nilotinib",
    "tang_phase2_slope_imatinib",
    "tang_phase2_slope_nilotinib",
    "euroski_mrfs_6mo",
    "euroski_mrfs_24mo",
    "euroski_mrfs_6mo_imatinib_gt5.8y",
    "euroski_mrfs_6mo_imatinib_le5.8y",
    "nordic_mmr_12mo_imatinib",
    "nordic_mmr_12mo_imatinib_pegifn2b",
    "spirit_mmr_12mo_imatinib",
    "spirit_mmr_12mo_imatinib_pegifn2a",
    "iris_ccyr_18mo_imatinib",
    "iris_ccyr_18mo_ifn_arac",
    "destiny_mmr_loss_halfdose_mr4",
    "stim1_mrfs_6mo",
    "stim1_mrfs_60mo",
    "nk_healthy_range",
    "pd1_cd8_raised_at_diagnosis",
    "pd1_cd8_falls_on_tki",
    "nk_at_stop_predicts_tfr",
)


def test_issue_targets_are_all_present():
    ids = {t.target for t in load_targets()}
    arms = ("imatinib_enestnd", "nilotinib_enestnd", "imatinib_dasision", "dasatinib_dasision")
    for arm in arms:
        for what in ("bcrabl_le10pct_3mo", "mmr_12mo", "mr45_5y"):
            assert f"{what}_{arm}" in ids
    assert set(ISSUE_TARGETS) <= ids


def test_hand_checked_rows():
    by_id = {t.target: t for t in load_targets()}
    d = by_id["destiny_mmr_loss_halfdose_mr4"]
    assert d.n == 121 and d.value == pytest.approx(3 / 121, abs=1e-4)
    assert by_id["iris_ccyr_18mo_imatinib"].value == 0.762
    assert by_id["iris_ccyr_18mo_ifn_arac"].value == 0.145
    nk = by_id["nk_healthy_range"]
    assert (nk.lo, nk.hi, nk.unit) == (90, 600, "cells/uL")
    assert by_id["mr45_5y_nilotinib_enestnd"].time_days == pytest.approx(5 * 365.25)
    assert by_id["pd1_cd8_falls_on_tki"].value == -1


def test_binomial_intervals_recomputed_from_n():
    rows = [t for t in load_targets() if t.interval == "binomial"]
    assert len(rows) >= 15
    for t in rows:
        lo, hi = wilson_interval(t.value, t.n)
        assert abs(lo - t.lo) <= 5e-5 and abs(hi - t.hi) <= 5e-5, t.target


def test_published_intervals_agree_with_n():
    # A published 95 % CI of a proportion should be close to the binomial one for the stated n;
    # a wrong n (or a CI of another level) shows up as a mismatch of several points.
    rows = [t for t in load_targets() if t.interval == "published" and t.kind == "proportion"]
    assert len(rows) >= 8
    for t in rows:
        lo, hi = wilson_interval(t.value, t.n)
        assert abs(lo - t.lo) < 0.02 and abs(hi - t.hi) < 0.02, t.target


def test_wilson_interval_known_value():
    # 0.22 of 283 by hand: z^2/n = 0.013574, centre 0.226787/1.013574 = 0.223750,
    # half-width 1.959964 * sqrt(0.00060636 + 0.00001199) / 1.013574 = 0.048086
    lo, hi = wilson_interval(0.22, 283)
    assert lo == pytest.approx(0.175665, abs=1e-5) and hi == pytest.approx(0.271836, abs=1e-5)
    assert wilson_interval(0.0, 10)[0] == 0.0


@pytest.mark.parametrize(
    ("simulated", "n_sim", "within", "tolerance"),
    [
        (0.25, 100, True, 1.959964 * math.sqrt(0.25 * 0.75 / 100)),  # inside: q = p
        (0.35, 100, True, 1.959964 * math.sqrt(0.3 * 0.7 / 100)),  # 0.35 <= 0.3 + 0.0898
        (0.40, 100, False, 1.959964 * math.sqrt(0.3 * 0.7 / 100)),  # 0.40 > 0.3898
        (0.35, 10_000, False, 1.959964 * math.sqrt(0.3 * 0.7 / 10_000)),  # 0.35 > 0.3090
        (0.125, 100, True, 1.959964 * math.sqrt(0.2 * 0.8 / 100)),  # 0.125 >= 0.2 - 0.0784
        (0.12, 100, False, 1.959964 * math.sqrt(0.2 * 0.8 / 100)),  # 0.12 < 0.1216
        (0.12, 1_000, False, 1.959964 * math.sqrt(0.2 * 0.8 / 1_000)),  # 0.12 < 0.1752
    ],
)
def test_score_rule(simulated, n_sim, within, tolerance):
    s = score(_make(), simulated, n_sim)
    assert s.within is within
    assert s.tolerance == pytest.approx(tolerance, rel=1e-6)


def test_score_at_the_edges_of_zero_and_one():
    t = _make(value=0.02, lo=0.01, hi=0.05)
    assert score(t, 0.0, 50).within  # tolerance 1.96 sqrt(0.01 * 0.99 / 50) = 0.0276 > 0.01
    assert not score(t, 0.0, 5_000).within  # 0.00276 < 0.01
    assert score(_make(value=1.0, lo=0.9, hi=1.0), 1.0, 10**6).within


def test_score_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match="expected 'proportion'"):
        score(_make(value=-0.05, lo=-0.07, hi=-0.03, kind="slope"), -0.05, 100)
    with pytest.raises(ValueError, match="no interval"):
        score(_make(lo=None, hi=None, interval="none"), 0.3, 100)
    with pytest.raises(ValueError, match="positive integer"):
        score(_make(), 0.3, 0)
    with pytest.raises(ValueError, match="0 <= p <= 1"):
        score(_make(), 1.2, 100)


def test_every_scorable_shipped_target_scores_its_own_value():
    for t in load_targets():
        if t.kind == "proportion" and t.has_interval:
            assert score(t, t.value, 1000).within, t.target


def test_a_valid_row_parses():
    (t,) = _parse(GOOD)
    assert t.time_days == pytest.approx(365.25) and t.n == 283 and t.lo == 0.1757


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (",proportion,", ",ratio,", "column kind: found 'ratio', expected one of proportion"),
        (",0.22,0.1757,", ",0.15,0.1757,", "column value: found 0.15 outside [0.1757, 0.2718]"),
        (",0.2718,binomial", ",1.2718,binomial", "column hi: found 1.2718, expected a fraction"),
        (",12mo,", ",12,", "column time: found '12', expected a duration with its unit"),
        (",12mo,", ",12 yeras,", "column time: found"),
        (",Some A. J 2010;1:1-2,", ",,", "column source: found an empty field"),
        (",283,", ",,", "column n: found an empty field, expected the number of patients"),
        (",binomial,", ",cheap,", "column interval: found 'cheap'"),
        (",0.22,", ",abc,", "column value: found 'abc', expected a number"),
    ],
)
def test_invalid_rows_give_one_clear_error(old, new, message):
    assert old in GOOD
    with pytest.raises(TargetsError, match=re.escape(message)) as e:
        _parse(GOOD.replace(old, new, 1))
    assert str(e.value).startswith("f.csv, line 3, ")


def test_duplicate_ids_and_bad_header_are_refused():
    with pytest.raises(TargetsError, match=r"line 4, column target: found 'mmr_x' again"):
        _parse(GOOD, GOOD)
    with pytest.raises(TargetsError, match="found columns"):
        tg._targets_from_text("target,value\nx,1\n", "f.csv")
    with pytest.raises(TargetsError, match="found 3 fields"):
        _parse("a,b,c")


def test_potency_loads_and_orders_the_drugs():
    pot = load_potency()
    assert list(pot) == ["imatinib", "nilotinib", "dasatinib"]
    with pytest.raises(TypeError):  # the cached result is read-only
        pot["imatinib"] = pot["dasatinib"]  # type: ignore[index]
    for p in pot.values():
        assert 0 < p.fraction_unbound <= 1 and p.ic50_nM > 0 and p.c_avg_ng_ml > 0
        assert all(p.sources.values())
    im = pot["imatinib"]
    # 0.05 * 1166 ng/mL / 493.6 g/mol * 1000 = 118.1 nM unbound; / 260 nM = 0.454
    assert im.unbound_c_avg_nM == pytest.approx(118.11, abs=0.01)
    assert im.exposure_over_ic50 == pytest.approx(0.4543, abs=1e-4)
    assert pot["nilotinib"].interval_days == pytest.approx(0.5)
    # Per standard dose both second-generation drugs are more potent than imatinib.
    assert pot["nilotinib"].exposure_over_ic50 > pot["dasatinib"].exposure_over_ic50
    assert pot["dasatinib"].exposure_over_ic50 > 2 * im.exposure_over_ic50


def test_potency_errors_name_file_line_and_column():
    text = tg._data_text(tg.POTENCY_FILE)
    bad = text.replace("imatinib,400mg,24h,260,", "imatinib,400mg,24h,-260,", 1)
    assert bad != text
    with pytest.raises(TargetsError, match=r"p\.csv, line \d+, column ic50_nM: found '-260'"):
        tg._potency_from_text(bad, "p.csv")
    bad = text.replace(',0.05,"Peng', ',5,"Peng', 1)
    assert bad != text
    with pytest.raises(TargetsError, match=r"column fraction_unbound: found 5\.0"):
        tg._potency_from_text(bad, "p.csv")
