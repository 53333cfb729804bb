"""Cohort figures: Kaplan–Meier TFR curves, a swimmer plot of sample patients, biomarker ROC.

Each ``plot_*`` function builds the figure at print size in the package style
(:mod:`sim.plots.style`, no ``pyplot``), and with ``path_stem`` writes ``<stem>.png``,
``<stem>.pdf`` and the plotted numbers as ``<stem>_data.csv`` beside them, so every curve in a
paper can be re-drawn or checked without re-running the cohort.

- :func:`plot_km`: molecular relapse-free survival after TKI stop per arm (KM step curve, 95 %
  exponential Greenwood band, censor ticks) with a numbers-at-risk table under the axis.
- :func:`plot_swimmer`: one bar per patient from diagnosis: TKI, stop, time off TKI coloured by
  outcome, relapse and restart.
- :func:`plot_roc`: one ROC curve per biomarker (oriented so that AUC >= 0.5), AUC and its
  DeLong 95 % interval in the legend, and the chance diagonal.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sim import outcomes
from sim.params import DAYS_PER_MONTH, DAYS_PER_YEAR
from sim.plots.style import OKABE_ITO, default_height, figsize, use_style
from sim.plots.trajectory import save_figure

#: Line styles cycled with the colours, so arms stay apart in grey print.
LINESTYLES = ("-", (0, (4, 1.5)), (0, (1, 1)), (0, (5, 1.5, 1, 1.5)), (0, (2, 1)), "-")
ARM_COLORS = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["orange"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["sky_blue"],
)
#: Opacity of the Kaplan–Meier confidence band.
KM_BAND_ALPHA = 0.18

SWIM_COLORS = {
    "tki": "0.55",
    "free": OKABE_ITO["bluish_green"],
    "relapsed": OKABE_ITO["vermillion"],
    "restart": OKABE_ITO["blue"],
    "stop": OKABE_ITO["black"],
}


def _save(fig: Figure, path_stem, formats, data: pd.DataFrame) -> list[str]:
    written = save_figure(fig, path_stem, formats)
    csv = f"{os.fspath(path_stem)}_data.csv"
    data.to_csv(csv, index=False)
    return [*written, csv]


def _tick_points(axis: str) -> float:
    """Tick label size (pt) of the active style."""
    import matplotlib as mpl
    from matplotlib.font_manager import FontProperties

    return float(FontProperties(size=mpl.rcParams[f"{axis}tick.labelsize"]).get_size_in_points())


def _new_figure(kind: str, width, height_mm: float | None, base_height: float) -> Figure:
    """A figure at ``height_mm``, or ``base_height`` scaled with the style's text size."""
    if height_mm is None:
        w_mm = figsize(width, journal=kind)[0] * 25.4
        height_mm = default_height(w_mm, lambda w: base_height, kind)
    fig = Figure(figsize=figsize(width, height_mm, journal=kind))
    FigureCanvasAgg(fig)
    return fig


# ---------------------------------------------------------------------------------------------
# Kaplan–Meier
# ---------------------------------------------------------------------------------------------


def _month_step(max_months: float) -> float:
    return next((s for s in (3.0, 6.0, 12.0, 24.0, 60.0) if max_months / s <= 8), 120.0)


def plot_km(
    table: pd.DataFrame,
    path_stem: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    *,
    arms: Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
    max_months: float | None = None,
    kind: str = "nature",
    width: str | float = "single",
    height_mm: float | None = None,
    alpha: float = 0.05,
) -> Figure:
    """Kaplan–Meier molecular relapse-free survival after TKI stop, one curve per arm.

    Parameters
    ----------
    table : DataFrame
        Outcome table (:mod:`sim.outcomes`).
    path_stem : path, optional
        Write ``<stem>.<fmt>`` and ``<stem>_data.csv`` (per arm and event time: ``arm, months,
        survival, ci_low, ci_high, at_risk, events, censored``).
    arms : sequence of str, optional
        Arms to draw (default: all, in order of appearance).
    labels : dict, optional
        Legend / table names of the arms (default the arm names).
    max_months : float, optional
        Right end of the time axis (default: longest follow-up).
    kind, width, height_mm
        Style and size (:func:`sim.plots.style.use_style`, :func:`~sim.plots.style.figsize`);
        the height defaults to 70 mm plus 3.5 mm per arm for the at-risk table.
    alpha : float
        1 − confidence level of the band.

    Notes
    -----
    The numbers at risk are drawn in a separate axes under the plot rather than with lifelines'
    ``add_at_risk_counts``, whose twin axis is offset by a fixed distance tuned for 6-inch
    figures and which reaches for ``pyplot``; the counts are the same as lifelines' with
    ``at_risk_count_from_start_of_period=True`` (patients with follow-up >= t).
    """
    arm_list = list(arms) if arms is not None else outcomes._arms(table)
    labels = labels or {}
    fitters = []
    for arm in arm_list:
        name = labels.get(arm, "all" if arm is None else str(arm))
        fitters.append((arm, name, outcomes.km(table, arm, label=name, alpha=alpha)))
    t_max = max_months or max(float(np.max(f.durations)) for _, _, f in fitters)
    step = _month_step(t_max)
    ticks = np.arange(0.0, t_max + 1e-9, step)

    with use_style(kind):
        fig = _new_figure(kind, width, height_mm, 70.0 + 3.5 * len(fitters))
        ax, ax_tab = fig.subplots(
            2,
            1,
            sharex=True,
            gridspec_kw={"height_ratios": [1.0, 0.06 + 0.07 * len(fitters)]},
        )
        rows = []
        for i, (_, name, kmf) in enumerate(fitters):
            color = ARM_COLORS[i % len(ARM_COLORS)]
            ls = LINESTYLES[i % len(LINESTYLES)]
            sf = kmf.survival_function_.iloc[:, 0]
            ci = kmf.confidence_interval_survival_function_
            x = sf.index.to_numpy(np.float64)
            ax.step(x, sf.to_numpy(), where="post", color=color, linestyle=ls, label=name)
            lo = ci.iloc[:, 0].to_numpy(np.float64)
            hi = ci.iloc[:, 1].to_numpy(np.float64)
            lo = np.where(np.isfinite(lo), lo, sf.to_numpy())
            hi = np.where(np.isfinite(hi), hi, sf.to_numpy())
            ax.fill_between(x, lo, hi, step="post", color=color, alpha=KM_BAND_ALPHA, linewidth=0)
            et = kmf.event_table
            cens_t = et.index[et["censored"] > 0].to_numpy(np.float64)
            if cens_t.size:
                ax.plot(
                    cens_t,
                    [float(outcomes._step_value(sf.to_frame(), c)[0]) for c in cens_t],
                    linestyle="none",
                    marker="|",
                    markersize=3,
                    markeredgewidth=0.6,
                    color=color,
                )
            rows.append(
                pd.DataFrame(
                    {
                        "arm": name,
                        "months": x,
                        "survival": sf.to_numpy(),
                        "ci_low": lo,
                        "ci_high": hi,
                        "at_risk": et["at_risk"].reindex(sf.index).to_numpy(),
                        "events": et["observed"].reindex(sf.index).to_numpy(),
                        "censored": et["censored"].reindex(sf.index).to_numpy(),
                    }
                )
            )
            # numbers at risk: patients still followed and relapse-free at each tick
            d = np.asarray(kmf.durations, dtype=np.float64)
            y_row = len(fitters) - 1 - i
            for tk in ticks:
                ax_tab.text(
                    tk,
                    y_row,
                    f"{int((d >= tk).sum())}",
                    ha="center",
                    va="center",
                    color=color,
                    fontsize=_tick_points("x"),
                )
        ax.set_xlim(0, t_max)
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
        ax.set_ylabel("Molecular relapse-free survival (%)")
        ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
        ax.tick_params(axis="x", labelbottom=True)
        ax.set_xlabel("Time since TKI stop (months)")
        handles: list = [
            Line2D([], [], color=ARM_COLORS[i % 6], linestyle=LINESTYLES[i % 6], label=name)
            for i, (_, name, _) in enumerate(fitters)
        ]
        # the band and the censor ticks in each arm's colour, side by side in one entry
        colors = [ARM_COLORS[i % 6] for i in range(len(fitters))]
        handles.append(tuple(Patch(color=c, alpha=KM_BAND_ALPHA, linewidth=0) for c in colors))
        handles.append(
            tuple(
                Line2D([], [], color=c, marker="|", linestyle="none", markersize=3) for c in colors
            )
        )
        names = [name for _, name, _ in fitters]
        names += [f"{100 * (1 - alpha):g} % confidence band", "censored"]
        ax.legend(
            handles=handles,
            labels=names,
            loc="lower left",
            handler_map={tuple: HandlerTuple(ndivide=None, pad=0.0)},
        )

        ax_tab.set_ylim(-0.6, len(fitters) - 0.4)
        ax_tab.set_yticks(range(len(fitters)))
        ax_tab.set_yticklabels([name for _, name, _ in reversed(fitters)])
        for lbl, i in zip(ax_tab.get_yticklabels(), reversed(range(len(fitters)))):
            lbl.set_color(ARM_COLORS[i % 6])
        # counts are centred on the ticks, the one at 0 reaches left of the axis: pad the names
        digits = max(len(str(len(f.durations))) for _, _, f in fitters)
        pad = 0.35 * digits * _tick_points("x") + 3.0
        ax_tab.tick_params(axis="both", length=0, labelbottom=False, pad=pad)
        for side in ("left", "bottom", "top", "right"):
            ax_tab.spines[side].set_visible(False)
        ax_tab.set_title("Number at risk", loc="left", fontweight="normal", fontsize="small")
        if path_stem is not None:
            _save(fig, path_stem, formats, pd.concat(rows, ignore_index=True))
    return fig


# ---------------------------------------------------------------------------------------------
# swimmer plot
# ---------------------------------------------------------------------------------------------


def swimmer_data(
    table: pd.DataFrame, n: int = 30, seed: int = 0, horizon_days: float | None = None
) -> pd.DataFrame:
    """Segments of the swimmer plot for a random sample of stopped patients (days).

    The end of follow-up of a patient without relapse is ``stop_time +
    months_to_relapse_or_censor``; after a relapse TKI is restarted at ``relapse_time`` (or at
    ``restart_time`` when the table has it) and runs to ``horizon_days`` (default: the latest end
    of follow-up of any patient in the table).
    """
    s = outcomes.stopped(table)
    if s.empty:
        raise ValueError("no eligible patients stopped TKI: nothing to draw")
    rng = np.random.default_rng(seed)
    pick = s.iloc[np.sort(rng.choice(len(s), size=min(n, len(s)), replace=False))]
    stop = pick["stop_time"].to_numpy(np.float64)
    follow = stop + pick["months_to_relapse_or_censor"].to_numpy(np.float64) * DAYS_PER_MONTH
    if horizon_days is None:
        all_end = (
            s["stop_time"].to_numpy(np.float64)
            + s["months_to_relapse_or_censor"].to_numpy(np.float64) * DAYS_PER_MONTH
        )
        horizon_days = float(np.max(all_end))
    event = pick["event"].fillna(False).astype(bool).to_numpy()
    rel = np.where(event, pick["relapse_time"].to_numpy(np.float64), np.nan)
    rel = np.where(event & ~np.isfinite(rel), follow, rel)
    restart = (
        pick["restart_time"].to_numpy(np.float64) if "restart_time" in pick.columns else rel.copy()
    )
    restart = np.where(event, restart, np.nan)
    out = pd.DataFrame(
        {
            "patient": pick["patient"].to_numpy() if "patient" in pick else pick.index,
            "arm": pick["arm"].to_numpy() if "arm" in pick else None,
            "stop_time": stop,
            "relapse_time": rel,
            "restart_time": restart,
            "end_of_follow_up": np.where(event, horizon_days, follow),
            "relapse": event,
        }
    )
    out["off_tki_end"] = np.where(event, out["relapse_time"], out["end_of_follow_up"])
    # relapsed first (shortest time off TKI at the top), then relapse-free by time off TKI
    out["_off"] = out["off_tki_end"] - out["stop_time"]
    out = out.sort_values(["relapse", "_off"], ascending=[True, False]).drop(columns="_off")
    return out.reset_index(drop=True)


def plot_swimmer(
    table: pd.DataFrame,
    path_stem: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    *,
    n: int = 30,
    seed: int = 0,
    horizon_days: float | None = None,
    kind: str = "nature",
    width: str | float = "single",
    height_mm: float | None = None,
) -> Figure:
    """Swimmer plot of ``n`` randomly chosen stopped patients (see :func:`swimmer_data`).

    One horizontal bar per patient against years since diagnosis: TKI (grey) up to the stop
    (black tick), time off TKI coloured by outcome (green: relapse-free to the end of follow-up,
    vermillion: up to the relapse, marked by a cross), then TKI restarted (blue). The CSV holds
    the segments drawn.
    """
    data = swimmer_data(table, n=n, seed=seed, horizon_days=horizon_days)
    k = len(data)
    with use_style(kind):
        fig = _new_figure(kind, width, height_mm, min(40.0 + 2.2 * k, 170.0))
        ax = fig.add_subplot()
        y = np.arange(k)[::-1]
        yr = 1.0 / DAYS_PER_YEAR
        h = 0.7
        stop = data["stop_time"].to_numpy() * yr
        off_end = data["off_tki_end"].to_numpy() * yr
        relapse = data["relapse"].to_numpy(bool)
        ax.barh(y, stop, left=0, height=h, color=SWIM_COLORS["tki"], linewidth=0)
        ax.barh(
            y,
            off_end - stop,
            left=stop,
            height=h,
            color=np.where(relapse, SWIM_COLORS["relapsed"], SWIM_COLORS["free"]),
            linewidth=0,
        )
        rs = data["restart_time"].to_numpy() * yr
        end = data["end_of_follow_up"].to_numpy() * yr
        if relapse.any():
            ax.barh(
                y[relapse],
                (end - rs)[relapse],
                left=rs[relapse],
                height=h,
                color=SWIM_COLORS["restart"],
                linewidth=0,
            )
            ax.plot(
                data["relapse_time"].to_numpy()[relapse] * yr,
                y[relapse],
                "X",
                color="black",
                markersize=3.5,
                markeredgewidth=0,
                linestyle="none",
            )
        ax.plot(
            stop,
            y,
            "|",
            color=SWIM_COLORS["stop"],
            markersize=5,
            markeredgewidth=0.9,
            linestyle="none",
        )
        ax.set_ylim(-0.7, k - 0.3)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xlim(0, float(np.nanmax(end)) * 1.01)
        ax.set_xlabel("Time since diagnosis (years)")
        ax.set_ylabel(f"Patients (random sample of {k})")
        handles = [
            Patch(color=SWIM_COLORS["tki"], label="TKI"),
            Line2D([], [], color="black", marker="|", linestyle="none", label="TKI stop"),
            Patch(color=SWIM_COLORS["free"], label="off TKI, relapse-free"),
            Patch(color=SWIM_COLORS["relapsed"], label="off TKI, until relapse"),
            Line2D(
                [],
                [],
                color="black",
                marker="X",
                markeredgewidth=0,
                linestyle="none",
                label="molecular relapse",
            ),
            Patch(color=SWIM_COLORS["restart"], label="TKI restarted"),
        ]
        fig.legend(handles=handles, loc="outside upper center", ncols=3)
        if path_stem is not None:
            csv = data.copy()
            for col in ("stop_time", "relapse_time", "restart_time", "end_of_follow_up"):
                csv[f"{col}_years"] = csv[col] * yr
            _save(fig, path_stem, formats, csv)
    return fig


# ---------------------------------------------------------------------------------------------
# ROC
# ---------------------------------------------------------------------------------------------


def plot_roc(
    table: pd.DataFrame,
    path_stem: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    *,
    markers: Sequence[str] = outcomes.DEFAULT_MARKERS,
    outcome: str = "event at 12 months",
    arm: str | None = None,
    kind: str = "nature",
    width: str | float = "single",
    height_mm: float | None = None,
) -> Figure:
    """ROC curves of biomarkers at stop for relapse (:func:`sim.outcomes.biomarker_auc`).

    Each marker is oriented in its better direction (a marker lower in relapsers is drawn as
    −marker), so every curve lies above the diagonal; the legend gives the AUC, its DeLong
    95 % interval and the direction. The CSV holds ``marker, threshold, fpr, tpr, auc`` (the
    threshold on the original marker scale).
    """
    res = outcomes.biomarker_auc(table, markers, outcome, arm=arm)
    t = outcomes._select_arm(table, arm)
    y_all = outcomes._outcome_labels(t, outcome).to_numpy()
    with use_style(kind):
        fig = _new_figure(kind, width, height_mm, 105.0)
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="0.6", linestyle=(0, (3, 2)), linewidth=0.6, label="chance")
        rows = []
        for i, marker in enumerate(markers):
            r = res.loc[marker]
            x = pd.to_numeric(t[marker], errors="coerce").to_numpy(np.float64)
            ok = np.isfinite(x) & np.isfinite(y_all)
            sign = -1.0 if r["direction"] == "lower in relapsers" else 1.0
            curve = outcomes.roc_curve(sign * x[ok], y_all[ok].astype(bool))
            arrow = "↓" if sign < 0 else "↑"
            name = str(r["label"]).removesuffix(" at stop")  # the legend title says "at the stop"
            label = f"{name} {arrow} {r['auc']:.2f} ({r['ci_low']:.2f}–{r['ci_high']:.2f})"
            ax.plot(
                curve["fpr"],
                curve["tpr"],
                drawstyle="steps-post",
                color=ARM_COLORS[i % 6] if i < 6 else "0.2",
                linestyle=LINESTYLES[i % 6],
                label=label,
            )
            rows.append(
                curve.assign(marker=marker, threshold=sign * curve["threshold"], auc=r["auc"])
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        for side in ("left", "bottom"):  # keeps the two "0.0" labels at the corner apart
            ax.spines[side].set_position(("outward", 2))
        ax.set_xlabel("1 − specificity (false-positive rate)")
        ax.set_ylabel("Sensitivity (true-positive rate)")
        n_rel, n = int(res["n_relapse"].max()), int(res["n"].max())
        handles, labels_ = ax.get_legend_handles_labels()
        # under the plot, compact: short entries, a two-line title, tight spacing
        fig.legend(
            handles[1:] + handles[:1],
            labels_[1:] + labels_[:1],
            loc="outside lower center",
            ncols=1,
            title=f"Marker at the stop: AUC (95 % CI, DeLong); n = {n}, {n_rel} relapses\n"
            "↑/↓ higher/lower in relapsers",
            alignment="left",
            labelspacing=0.15,
            borderaxespad=0.0,
        )
        if path_stem is not None:
            data = pd.concat(rows, ignore_index=True)[["marker", "threshold", "fpr", "tpr", "auc"]]
            _save(fig, path_stem, formats, data)
    return fig


__all__ = ["plot_km", "plot_roc", "plot_swimmer", "swimmer_data"]
