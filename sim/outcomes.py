"""Cohort outcomes: treatment-free remission (Kaplan–Meier), paired arm comparisons and biomarkers.

Every function here works on the per-patient **outcome table** of a virtual cohort (one row per
patient, a :class:`pandas.DataFrame`; columns listed in :data:`OUTCOME_COLUMNS`). Time after TKI
stop is in months (``months_to_relapse_or_censor``), other times are in days.

Who is analysed
    The TFR analyses use the patients who were **eligible and stopped** TKI (``eligible`` true
    and ``stop_time`` finite) with a finite ``months_to_relapse_or_censor``; the others are
    counted by :func:`km_table` but not analysed.

Kaplan–Meier (:func:`km`, :func:`tfr_at`, :func:`km_table`)
    Molecular relapse-free survival after stop, fitted with :class:`lifelines.KaplanMeierFitter`
    (duration = ``months_to_relapse_or_censor``, event = ``event``). The 95 % confidence
    interval is lifelines' exponential Greenwood interval (log(−log) transform; Kalbfleisch &
    Prentice 2002), which stays inside [0, 1].

Paired arms (:func:`paired_difference`)
    Two arms run on the same virtual patients with common random numbers (the same ``patient``
    ids, e.g. no intervention vs interferon after stop) are compared patient by patient: see the
    function for the censoring rule and the confidence interval.

Biomarkers (:func:`biomarker_auc`, :func:`marker_source`, :func:`roc_curve`)
    ROC AUC of each measurement at stop for relapse, its DeLong confidence interval, and a
    decomposition of a marker into the part explained by a sampled host parameter and the rest.

``lifelines`` is imported inside the functions that need it, so ``import sim.outcomes`` is cheap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from sim.params import DAYS_PER_MONTH

if TYPE_CHECKING:
    from lifelines import KaplanMeierFitter

#: Columns of the outcome table this module reads (others are carried along untouched).
OUTCOME_COLUMNS = (
    "patient",
    "arm",
    "eligible",
    "eligible_time",
    "stop_time",
    "time_on_tki",
    "time_in_mr4_before_stop",
    "depth_at_stop",
    "relapse",
    "relapse_time",
    "months_to_relapse_or_censor",
    "event",
    "bcr_abl_at_stop",
    "Z_at_stop",
    "E_at_stop",
    "N_at_stop",
    "X_at_stop",
    "Y_at_stop",
)

#: Default biomarkers: immune state and BCR-ABL1 at stop, time on TKI, time in MR4 before stop.
DEFAULT_MARKERS = (
    "N_at_stop",
    "Z_at_stop",
    "E_at_stop",
    "bcr_abl_at_stop",
    "time_on_tki",
    "time_in_mr4_before_stop",
)

#: Readable names of the outcome-table columns, for tables and figure legends.
MARKER_LABELS = {
    "N_at_stop": "NK cells N at stop",
    "Z_at_stop": "Effector T cells Z at stop",
    "E_at_stop": "Exhausted fraction E at stop",
    "X_at_stop": "Quiescent leukemic X at stop",
    "Y_at_stop": "Proliferating leukemic Y at stop",
    "bcr_abl_at_stop": "BCR::ABL1 at stop",
    "time_on_tki": "Time on TKI",
    "time_in_mr4_before_stop": "Time in MR4 before stop",
    "depth_at_stop": "Depth of response at stop",
}

#: Default time points (months after stop) of :func:`km_table`.
DEFAULT_MONTHS = (6, 12, 24, 60)


# ---------------------------------------------------------------------------------------------
# selection
# ---------------------------------------------------------------------------------------------


def _check_columns(table: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"outcome table lacks column(s) {', '.join(missing)}")


def _select_arm(table: pd.DataFrame, arm: str | None) -> pd.DataFrame:
    if arm is None:
        return table
    _check_columns(table, ["arm"])
    sel = table[table["arm"] == arm]
    if sel.empty:
        from sim.params import did_you_mean

        arms = [str(a) for a in pd.unique(table["arm"])]
        raise ValueError(f"no patients in arm {arm!r}{did_you_mean(arm, arms)}; arms: {arms}")
    return sel


def stopped(table: pd.DataFrame, arm: str | None = None) -> pd.DataFrame:
    """Rows of the patients who were eligible and stopped TKI, with a finite follow-up after stop.

    Parameters
    ----------
    table : DataFrame
        Outcome table.
    arm : str, optional
        Keep only this arm (``None``: all rows).
    """
    _check_columns(table, ["eligible", "stop_time", "months_to_relapse_or_censor", "event"])
    t = _select_arm(table, arm)
    stop = pd.to_numeric(t["stop_time"], errors="coerce").to_numpy(np.float64)
    months = pd.to_numeric(t["months_to_relapse_or_censor"], errors="coerce").to_numpy(np.float64)
    keep = t["eligible"].fillna(False).astype(bool).to_numpy() & np.isfinite(stop)
    keep &= np.isfinite(months)
    return t[keep]


def _arms(table: pd.DataFrame) -> list[Any]:
    if "arm" not in table.columns:
        return [None]
    return list(pd.unique(table["arm"]))


# ---------------------------------------------------------------------------------------------
# Kaplan–Meier
# ---------------------------------------------------------------------------------------------


def km(
    table: pd.DataFrame, arm: str | None = None, *, label: str | None = None, alpha: float = 0.05
) -> KaplanMeierFitter:
    """Kaplan–Meier fit of molecular relapse-free survival after TKI stop.

    Parameters
    ----------
    table : DataFrame
        Outcome table.
    arm : str, optional
        Fit this arm only (``None``: every row, arms pooled).
    label : str, optional
        Fitter label; default the arm name (or "all").
    alpha : float
        1 − confidence level of the interval (lifelines' exponential Greenwood interval).

    Returns
    -------
    lifelines.KaplanMeierFitter
        Fitted on the eligible, stopped patients: duration = ``months_to_relapse_or_censor``
        (months after stop), event = ``event`` (molecular relapse).
    """
    from lifelines import KaplanMeierFitter

    s = stopped(table, arm)
    if s.empty:
        raise ValueError(f"no eligible patients stopped TKI{'' if arm is None else f' in {arm!r}'}")
    kmf = KaplanMeierFitter(alpha=alpha)
    kmf.fit(
        durations=s["months_to_relapse_or_censor"].to_numpy(np.float64),
        event_observed=s["event"].fillna(False).astype(bool).to_numpy(),
        label=label if label is not None else ("all" if arm is None else str(arm)),
    )
    return kmf


def _step_value(frame: pd.DataFrame | pd.Series, t: float) -> np.ndarray:
    """Value of a right-continuous step function (lifelines' index = times) at ``t``."""
    index = frame.index.to_numpy(np.float64)
    i = int(np.searchsorted(index, t, side="right")) - 1
    values = frame.to_numpy(np.float64)
    if i < 0:
        return np.ones(values.shape[1:]) if values.ndim > 1 else np.array(1.0)
    return values[i]


def _km_at(kmf: KaplanMeierFitter, months: float) -> tuple[float, float, float]:
    """(estimate, lower, upper) of a fitted KM at ``months``; NaN beyond the last follow-up
    time unless the curve already reached 0 (the estimate is not defined there)."""
    durations = np.asarray(kmf.durations, dtype=np.float64)
    est = float(_step_value(kmf.survival_function_, months)[0])
    if months > durations.max() and est > 0.0:
        return math.nan, math.nan, math.nan
    ci = _step_value(kmf.confidence_interval_survival_function_, months)
    lo, hi = (float(ci[0]), float(ci[1])) if months >= durations.min() else (1.0, 1.0)
    if not np.isfinite(lo):  # lifelines gives NaN where S = 1 exactly (log(-log 1))
        lo, hi = (1.0, 1.0) if est == 1.0 else (lo, hi)
    return est, lo, hi


def tfr_at(
    table: pd.DataFrame, months: float, arm: str | None = None, *, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Molecular relapse-free survival (TFR) ``months`` after stop, with its confidence interval.

    Returns
    -------
    (float, float, float)
        ``(estimate, lower, upper)`` from :func:`km`: the KM estimate and lifelines' exponential
        Greenwood ``1 − alpha`` interval. NaN when ``months`` lies beyond the longest follow-up
        (and the curve has not reached 0).
    """
    return _km_at(km(table, arm, alpha=alpha), float(months))


def km_table(
    table: pd.DataFrame,
    months: Sequence[float] = DEFAULT_MONTHS,
    arms: Sequence[str] | None = None,
    *,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """TFR at fixed times after stop, per arm, with counts.

    Parameters
    ----------
    table : DataFrame
        Outcome table.
    months : sequence of float
        Times after stop (months).
    arms : sequence of str, optional
        Arms to report; default every arm in the table, in order of appearance (or one row per
        time for a table without an ``arm`` column).

    Returns
    -------
    DataFrame
        One row per arm and time: ``arm, months, n_patients`` (rows of the arm),
        ``n_eligible, n_stopped`` (eligible and stopped, analysed), ``n_at_risk`` (still in
        follow-up and relapse-free at that time: duration >= months), ``n_events`` (relapses up
        to that time), ``tfr, ci_low, ci_high``.
    """
    rows = []
    for arm in list(arms) if arms is not None else _arms(table):
        t = _select_arm(table, arm)
        s = stopped(t)
        kmf = km(t, label=str(arm)) if len(s) else None
        d = s["months_to_relapse_or_censor"].to_numpy(np.float64)
        e = s["event"].fillna(False).astype(bool).to_numpy()
        for m in months:
            est, lo, hi = _km_at(kmf, float(m)) if kmf is not None else (np.nan,) * 3
            rows.append(
                {
                    "arm": arm,
                    "months": m,
                    "n_patients": len(t),
                    "n_eligible": int(t["eligible"].fillna(False).astype(bool).sum()),
                    "n_stopped": len(s),
                    "n_at_risk": int((d >= m).sum()),
                    "n_events": int((e & (d <= m)).sum()),
                    "tfr": est,
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# paired arms
# ---------------------------------------------------------------------------------------------


def relapse_by(table: pd.DataFrame, months: float) -> pd.Series:
    """Relapse status ``months`` after stop per patient of ``table`` (index = table index).

    ``1.0``: relapsed at or before ``months``; ``0.0``: relapse-free and followed for at least
    ``months``; NaN: not evaluable (not stopped, or censored before ``months`` without relapse).
    """
    out = pd.Series(np.nan, index=table.index, dtype=np.float64)
    s = stopped(table)
    d = s["months_to_relapse_or_censor"].to_numpy(np.float64)
    e = s["event"].fillna(False).astype(bool).to_numpy()
    status = np.where(e & (d <= months), 1.0, np.where(d >= months, 0.0, np.nan))
    out.loc[s.index] = status
    return out


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for ``b`` and ``c`` discordant pairs.

    Under H0 the ``b`` pairs are Binomial(b + c, 1/2); the two-sided p-value is
    ``min(1, 2 P(X <= min(b, c)))``, equal to :func:`scipy.stats.binomtest`'s for p = 1/2.
    """
    n = int(b) + int(c)
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * stats.binom.cdf(min(b, c), n, 0.5)))


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_paired_ci(a: int, b: int, c: int, d: int, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10, no continuity correction) for the difference
    of two paired proportions ``p1 − p2 = (b − c) / n``.

    ``a``: success in both; ``b``: success in 1 only; ``c``: success in 2 only; ``d``: neither.
    Newcombe RG, *Stat Med* 1998;17:2635–2650: Wilson intervals of the two marginal proportions
    combined with the phi correlation of the 2×2 table. Good coverage down to few discordant
    pairs, and it never collapses to a point as a percentile bootstrap does when b = c = 0.
    """
    n = a + b + c + d
    if n == 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(1 - alpha / 2))
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson(a + b, n, z)
    l2, u2 = _wilson(a + c, n, z)
    denom = math.sqrt(float(a + b) * (c + d) * (a + c) * (b + d))
    phi = (a * d - b * c) / denom if denom > 0 else 0.0
    diff = p1 - p2
    dl = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    du = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return max(-1.0, diff - dl), min(1.0, diff + du)


def paired_difference(
    table_a: pd.DataFrame,
    table_b: pd.DataFrame,
    months: float,
    *,
    ci: str = "newcombe",
    alpha: float = 0.05,
    n_boot: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired difference in TFR ``months`` after stop between two arms on the same patients.

    Patients are matched on ``patient``. **Censoring rule**: a patient enters when, in *both*
    arms, they were eligible and stopped and their status at ``months`` is known, i.e. they
    relapsed at or before ``months`` or were followed relapse-free for at least ``months``
    (:func:`relapse_by`). Patients censored earlier in either arm are excluded and counted
    (``n_not_evaluable``); with a common fixed horizon in a simulation, that removes only
    patients who stopped too late to be followed ``months``. This is a complete-case
    comparison, exact for the paired question "same patient, other arm", and unbiased for the
    TFR difference when censoring is unrelated to outcome (administrative end of follow-up).

    Parameters
    ----------
    table_a, table_b : DataFrame
        Outcome tables of arm A (reference, e.g. no intervention) and arm B.
    months : float
        Time after stop (months).
    ci : {"newcombe", "bootstrap"}
        Interval for the difference: Newcombe's hybrid score interval for paired proportions
        (:func:`newcombe_paired_ci`, deterministic, default) or a percentile paired bootstrap
        (patients resampled with replacement, ``n_boot`` draws, generator seeded by ``seed``).
    alpha : float
        1 − confidence level.

    Returns
    -------
    dict
        ``months``; ``n_pairs`` (evaluable in both arms); ``n_not_evaluable`` (patients in both
        tables not evaluable in at least one arm); ``n_only_in_one`` (ids in one table only);
        ``tfr_a``, ``tfr_b`` (relapse-free proportions among the pairs); ``difference`` =
        ``tfr_b − tfr_a``; ``ci_low``, ``ci_high``, ``ci_method``; ``relapse_a_only`` (relapsed
        in A, not in B: B helped), ``relapse_b_only`` (relapsed in B, not in A: B harmed),
        ``relapse_both``, ``relapse_neither``; ``mcnemar_p`` (exact McNemar on the discordant
        pairs); ``censoring`` (the rule, in words).
    """
    if ci not in ("newcombe", "bootstrap"):
        raise ValueError(f"ci must be 'newcombe' or 'bootstrap', got {ci!r}")
    for t in (table_a, table_b):
        _check_columns(t, ["patient"])
        if t["patient"].duplicated().any():
            raise ValueError("patient ids must be unique within an arm's table")
    ra = pd.Series(relapse_by(table_a, months).to_numpy(), index=table_a["patient"].to_numpy())
    rb = pd.Series(relapse_by(table_b, months).to_numpy(), index=table_b["patient"].to_numpy())
    common = ra.index.intersection(rb.index)
    n_only = len(ra.index.union(rb.index)) - len(common)
    xa, xb = ra.loc[common].to_numpy(), rb.loc[common].to_numpy()
    ok = np.isfinite(xa) & np.isfinite(xb)
    xa, xb = xa[ok].astype(bool), xb[ok].astype(bool)
    n = int(ok.sum())
    both = int((xa & xb).sum())
    a_only = int((xa & ~xb).sum())
    b_only = int((~xa & xb).sum())
    neither = n - both - a_only - b_only
    if n == 0:
        tfr_a = tfr_b = diff = lo = hi = math.nan
    else:
        tfr_a, tfr_b = 1.0 - xa.mean(), 1.0 - xb.mean()
        diff = (a_only - b_only) / n  # = tfr_b - tfr_a
        if ci == "newcombe":
            # "success" = relapse-free; proportion 1 = arm B, proportion 2 = arm A
            lo, hi = newcombe_paired_ci(neither, a_only, b_only, both, alpha)
        else:
            rng = np.random.default_rng(seed)
            draws = rng.multinomial(n, np.array([a_only, b_only, both + neither]) / n, n_boot)
            boot = (draws[:, 0] - draws[:, 1]) / n
            lo, hi = (float(q) for q in np.quantile(boot, [alpha / 2, 1 - alpha / 2]))
    return {
        "months": months,
        "n_pairs": n,
        "n_not_evaluable": int(len(common) - n),
        "n_only_in_one": int(n_only),
        "tfr_a": float(tfr_a),
        "tfr_b": float(tfr_b),
        "difference": float(diff),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "ci_method": (
            "Newcombe hybrid score (method 10)"
            if ci == "newcombe"
            else f"paired percentile bootstrap ({n_boot} draws, seed {seed})"
        ),
        "relapse_a_only": a_only,
        "relapse_b_only": b_only,
        "relapse_both": both,
        "relapse_neither": neither,
        "mcnemar_p": mcnemar_exact(a_only, b_only),
        "censoring": (
            f"patients stopped in both arms whose status at {months:g} months is known in both "
            "(relapsed by then, or followed relapse-free at least that long); others excluded"
        ),
    }


# ---------------------------------------------------------------------------------------------
# ROC / AUC
# ---------------------------------------------------------------------------------------------


def _midranks(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def auc_delong(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """AUC = P(score of a positive > score of a negative) + ½ P(tie), and its DeLong variance.

    DeLong, DeLong & Clarke-Pearson, *Biometrics* 1988;44:837, with the midrank computation of
    Sun & Xu, *IEEE Signal Process Lett* 2014;21:1389 (O(n log n)).

    Returns
    -------
    (float, float)
        ``(auc, variance)``; NaN if either class is empty (variance NaN with one member).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    pos, neg = scores[labels], scores[~labels]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        return math.nan, math.nan
    r_all = _midranks(np.concatenate([pos, neg]))
    r_pos, r_neg = _midranks(pos), _midranks(neg)
    auc = (r_all[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (r_all[:m] - r_pos) / n  # per positive: fraction of negatives below (ties ½)
    v01 = 1.0 - (r_all[m:] - r_neg) / m  # per negative: fraction of positives above
    if m < 2 or n < 2:
        return float(auc), math.nan
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n
    return float(auc), float(var)


def _outcome_labels(table: pd.DataFrame, outcome: str) -> pd.Series:
    """Binary outcome per row (1 relapse, 0 not, NaN not evaluable) for an outcome spec."""
    spec = outcome.strip().lower()
    match = re.fullmatch(
        r"(?:event|relapse)\s+(?:at|by|within)\s+([0-9.]+)\s*(?:months?|mo)?", spec
    )
    if match:
        return relapse_by(table, float(match.group(1)))
    if spec in ("event", "relapse", "event ever"):
        s = stopped(table)
        out = pd.Series(np.nan, index=table.index, dtype=np.float64)
        out.loc[s.index] = s["event"].fillna(False).astype(bool).astype(np.float64)
        return out
    raise ValueError(
        f"unknown outcome {outcome!r}; use 'event at <m> months' (relapse within m months of "
        "stop, patients censored earlier excluded) or 'event' (relapse at any time after stop)"
    )


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Empirical ROC curve: one point per distinct threshold (score >= threshold → positive).

    Returns
    -------
    DataFrame
        ``threshold, fpr, tpr`` from (0, 0) (threshold +inf) to (1, 1).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    p, n = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return pd.DataFrame(
        {
            "threshold": np.r_[np.inf, s[last]],
            "fpr": np.r_[0.0, fp / n],
            "tpr": np.r_[0.0, tp / p],
        }
    )


def _auc_row(x: np.ndarray, y: np.ndarray, alpha: float) -> dict[str, Any]:
    z = float(stats.norm.ppf(1 - alpha / 2))
    raw, var = auc_delong(x, y)
    se = math.sqrt(var) if np.isfinite(var) else math.nan
    lo_raw, hi_raw = max(0.0, raw - z * se), min(1.0, raw + z * se)
    if raw >= 0.5 or not np.isfinite(raw):
        auc, lo, hi, direction = raw, lo_raw, hi_raw, "higher in relapsers"
    else:
        auc, lo, hi, direction = 1.0 - raw, 1.0 - hi_raw, 1.0 - lo_raw, "lower in relapsers"
    p = 2.0 * stats.norm.sf(abs(raw - 0.5) / se) if se > 0 else math.nan
    return {
        "auc": auc,
        "ci_low": lo,
        "ci_high": hi,
        "direction": direction,
        "auc_raw": raw,
        "se": se,
        "p_value": p,
        "n": len(y),
        "n_relapse": int(y.sum()),
        "n_no_relapse": int((~y).sum()),
    }


def biomarker_auc(
    table: pd.DataFrame,
    markers: Sequence[str] = DEFAULT_MARKERS,
    outcome: str = "event at 12 months",
    *,
    arm: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """How well each measurement at stop predicts relapse: ROC AUC with a DeLong interval.

    Parameters
    ----------
    table : DataFrame
        Outcome table.
    markers : sequence of str
        Columns to assess (missing values are dropped per marker).
    outcome : str
        ``"event at <m> months"``: relapse within ``m`` months of stop (1) vs followed relapse-free
        for at least ``m`` months (0); patients censored earlier are excluded. ``"event"``: relapse
        at any time in follow-up. Only eligible, stopped patients enter.
    arm : str, optional
        Restrict to one arm.
    alpha : float
        1 − confidence level.

    Returns
    -------
    DataFrame
        One row per marker (index = marker): ``label``; ``auc`` oriented so that it is >= 0.5
        (the marker separates in its better direction); ``ci_low, ci_high`` (DeLong variance,
        normal interval on the AUC scale clipped to [0, 1], flipped with the orientation);
        ``direction`` ("higher in relapsers" or "lower in relapsers"); ``auc_raw`` = P(marker of
        a relapser > marker of a non-relapser) + ½ P(tie) before orientation; ``se``; ``p_value``
        (two-sided z test of AUC = 0.5); ``n, n_relapse, n_no_relapse``.

    Notes
    -----
    Choosing the direction after seeing the data biases the oriented ``auc`` upwards for a
    useless marker (it is ``0.5 + |auc_raw − 0.5|``); ``auc_raw``, its interval and ``p_value``
    carry no such bias. For NK cells the expected direction is "lower in relapsers" (Ilander
    2017; IMMUNOSTIM).
    """
    t = _select_arm(table, arm)
    _check_columns(t, list(markers))
    labels = _outcome_labels(t, outcome)
    rows = {}
    for marker in markers:
        x = pd.to_numeric(t[marker], errors="coerce").to_numpy(np.float64)
        ok = np.isfinite(x) & np.isfinite(labels.to_numpy())
        row = _auc_row(x[ok], labels.to_numpy()[ok].astype(bool), alpha)
        rows[marker] = {"label": MARKER_LABELS.get(marker, marker), **row}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "marker"
    out.attrs["outcome"] = outcome
    out.attrs["ci_method"] = "DeLong"
    return out


def _log_if_positive(x: np.ndarray) -> tuple[np.ndarray, bool]:
    if np.all(x > 0):
        return np.log(x), True
    return x, False


def marker_source(
    table: pd.DataFrame,
    marker: str = "N_at_stop",
    host_param: str | Sequence[str] = "param_s_N",
    outcome: str = "event at 12 months",
    *,
    arm: str | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Split a marker's predictive power into a host-parameter part and a disease-course part.

    Method
        On the evaluable patients, the marker (log scale when positive) is regressed by least
        squares on the sampled host parameter(s) (log scale when positive):
        ``log marker = a + b · log host + residual``. The **fitted value** is the part of the
        marker a patient carries from the start (set by the host parameter drawn for them); the
        **residual** is what the disease course (response, immune dynamics during therapy) added.
        The AUC of each part for the outcome is reported with a DeLong interval, next to the
        marker's own AUC and the share of the marker's variance the host explains (``r2``).

    Interpretation
        ``auc_host ≈ auc_marker`` and ``auc_course ≈ 0.5``: the marker predicts because it reads
        the host parameter; measuring it adds nothing a baseline measurement of that parameter
        would not give. ``auc_host ≈ 0.5`` and ``auc_course ≈ auc_marker``: its power comes from
        the disease course. ``host_share`` = excess AUC of the host part over the sum of both
        excesses, ``|auc_host − 0.5| / (|auc_host − 0.5| + |auc_course − 0.5|)``: a descriptive
        summary in [0, 1] (AUCs do not add, so it is not a variance decomposition). With one
        host parameter, ``auc_host`` is that parameter's own AUC (the fitted value is monotone
        in it). The split is linear on the log scale: a non-linear dependence left in the
        residual is counted as disease course.

    Returns
    -------
    dict
        ``marker, host_params, log_marker, log_host, n, r2, slope`` (per host parameter);
        ``auc_marker``, ``auc_host``, ``auc_course`` (oriented, >= 0.5) with ``*_ci`` tuples and
        ``*_direction``; ``host_share``; ``method`` (text).
    """
    hosts = [host_param] if isinstance(host_param, str) else list(host_param)
    t = _select_arm(table, arm)
    _check_columns(t, [marker, *hosts])
    labels = _outcome_labels(t, outcome).to_numpy()
    x = pd.to_numeric(t[marker], errors="coerce").to_numpy(np.float64)
    h = np.column_stack([pd.to_numeric(t[c], errors="coerce").to_numpy(np.float64) for c in hosts])
    ok = np.isfinite(labels) & np.isfinite(x) & np.all(np.isfinite(h), axis=1)
    y = labels[ok].astype(bool)
    xm, log_marker = _log_if_positive(x[ok])
    cols, log_host = [], []
    for j in range(h.shape[1]):
        col, logged = _log_if_positive(h[ok, j])
        cols.append(col)
        log_host.append(logged)
    design = np.column_stack([np.ones(len(xm)), *cols])
    coef, *_ = np.linalg.lstsq(design, xm, rcond=None)
    fitted = design @ coef
    resid = xm - fitted
    ss_tot = float(((xm - xm.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else math.nan
    parts = {"marker": xm, "host": fitted, "course": resid}
    out: dict[str, Any] = {
        "marker": marker,
        "host_params": hosts,
        "log_marker": log_marker,
        "log_host": log_host,
        "n": int(ok.sum()),
        "n_relapse": int(y.sum()),
        "r2": r2,
        "slope": dict(zip(hosts, (float(c) for c in coef[1:]))),
    }
    for name, values in parts.items():
        if np.ptp(values) == 0:  # constant part (e.g. marker = exact function of the host)
            row = {"auc": 0.5, "ci_low": math.nan, "ci_high": math.nan, "direction": "none"}
        else:
            row = _auc_row(values, y, alpha)
        out[f"auc_{name}"] = row["auc"]
        out[f"auc_{name}_ci"] = (row["ci_low"], row["ci_high"])
        out[f"auc_{name}_direction"] = row["direction"]
    e_host, e_course = abs(out["auc_host"] - 0.5), abs(out["auc_course"] - 0.5)
    out["host_share"] = e_host / (e_host + e_course) if e_host + e_course > 0 else math.nan
    out["method"] = (
        f"OLS of {'log ' if log_marker else ''}{marker} on "
        + ", ".join(f"{'log ' if lg else ''}{c}" for c, lg in zip(hosts, log_host))
        + "; AUC (DeLong CI) of the fitted value (host part) and of the residual (course part)"
    )
    return out


def response_slopes(
    t: np.ndarray,
    bcr_abl: np.ndarray,
    stop_time: np.ndarray | None = None,
    window_months: tuple[float, float] = (1.0, 3.0),
    detect: float = 1e-3,
    min_points: int = 3,
) -> np.ndarray:
    r"""Least-squares slope of ln BCR-ABL1 per patient over a window, in 1/day (Tang 2011).

    .. math:: \hat\beta_j = \frac{\sum_k (t_k - \bar t)(\ln B_{jk} - \overline{\ln B_j})}
              {\sum_k (t_k - \bar t)^2}

    over the times :math:`t_k` inside ``window_months`` where patient j is on therapy (before
    ``stop_time``) and detectable (:math:`B_{jk} >` ``detect`` % IS; 1e-3 % is MR5). Phase 1 of
    Tang et al. (Blood 2011;118:1622) is months 1-3, phase 2 months 6-24.

    Parameters
    ----------
    t : ndarray (n_t,)
        Days since diagnosis.
    bcr_abl : ndarray (n_patients, n_t)
        True BCR-ABL1, % IS.
    stop_time : ndarray (n_patients,), optional
        TKI stop (days); NaN or None = never stopped.
    window_months, detect, min_points
        The window (months), the detection threshold (% IS) and the fewest points for a slope.

    Returns
    -------
    ndarray (n_patients,)
        The slope (1/day), NaN where fewer than ``min_points`` points qualify.
    """
    t = np.asarray(t, dtype=float)
    B = np.atleast_2d(np.asarray(bcr_abl, dtype=float))
    lo, hi = (w * DAYS_PER_MONTH for w in window_months)
    ok = (t >= lo) & (t <= hi) & (B > detect)
    if stop_time is not None:
        stop = np.asarray(stop_time, dtype=float)
        ok &= ~(t[None, :] >= np.where(np.isnan(stop), np.inf, stop)[:, None])
    w = ok.astype(float)
    n = w.sum(axis=1)
    lnB = np.log(np.where(ok, B, 1.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        tm = (w * t).sum(axis=1) / n
        ym = (w * lnB).sum(axis=1) / n
        dt = np.where(ok, t[None, :] - tm[:, None], 0.0)
        slope = (dt * (lnB - ym[:, None]) * w).sum(axis=1) / (dt * dt).sum(axis=1)
    return np.where(n >= min_points, slope, np.nan)


__all__ = [
    "DEFAULT_MARKERS",
    "DEFAULT_MONTHS",
    "MARKER_LABELS",
    "OUTCOME_COLUMNS",
    "auc_delong",
    "biomarker_auc",
    "km",
    "km_table",
    "marker_source",
    "mcnemar_exact",
    "newcombe_paired_ci",
    "paired_difference",
    "relapse_by",
    "response_slopes",
    "roc_curve",
    "stopped",
    "tfr_at",
]
