"""BCR-ABL1 kinetics of one patient, with therapy and interventions: the figure CML papers show.

Layout (single column by default): a band on top with one lane for TKI (bar height and shade =
dose as a fraction of the standard dose) and one lane per kind of immune intervention (interferon,
checkpoint, vaccine, exercise; Okabe–Ito colours shared with :mod:`sim.plots.compare`), then
BCR::ABL1 IS (%) on a log axis against time since diagnosis with dashed reference lines at MMR
(0.1 %), MR4 (0.01 %), MR4.5 (0.0032 %) and MR5 (0.001 %) labelled at the right edge (ELN 2020,
Hochhaus et al. Leukemia 2020;34:966), the qPCR measurements (filled when detected, open
down-triangles at the sample's detection limit when undetectable) and a vertical line at each TKI
stop.

An intervention bar runs from the first dose to one dosing interval after the last
(:func:`sim.compare.intervention_periods`) when the run knows its doses; a stored run
(``trajectory.nc``) keeps the drive, not the dosing record, so there a bar marks where the
intervention's drive exceeds :data:`DRIVE_ON` (effect, occupancy or boost; the CSV says which).

:func:`plot_kinetics` writes ``<stem>.<fmt>`` and the plotted numbers beside it:
``<stem>_data.csv`` (the curve), ``<stem>_visits.csv`` (the qPCR points) and ``<stem>_bars.csv``
(the band).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from sim.params import DAYS_PER_MONTH
from sim.plots.compare import KIND_COLORS
from sim.plots.style import OKABE_ITO, default_height, figsize, mark_panel, use_style
from sim.plots.trajectory import (
    COLORS,
    _spread_labels,
    _time_axis,
    draw_bcr_abl,
    draw_stops,
    fit_legend,
    save_with_data,
    tki_alpha,
    tki_legend_patch,
)
from sim.therapy import drive as _drive

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from sim.results import RunResult

#: Drive slot of each intervention kind (:mod:`sim.therapy.drive`).
KIND_SLOTS: dict[str, int] = {
    "interferon": _drive.IFN,
    "checkpoint": _drive.PD1,
    "vaccine": _drive.VACCINE,
    "exercise": _drive.EXERCISE,
}

#: A stored run marks an intervention as acting where its drive exceeds this value (interferon
#: effect I, anti-PD-1 occupancy B: fractions; vaccine and exercise: relative boosts).
DRIVE_ON = 0.01


def _runs(on: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of each run of True in a boolean array."""
    edges = np.diff(np.r_[0, on.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def intervention_bars(result: RunResult) -> pd.DataFrame:
    """The intervention bars of a run: one row per course.

    Parameters
    ----------
    result : RunResult
        A run; with ``result.interventions`` (a fresh run) the bars come from the dosing record,
        otherwise (a run loaded from ``trajectory.nc``) from the drive.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind``, ``name``, ``start_days``, ``end_days``, ``source`` ("doses": first dose
        to last dose + one interval; or "drive > 0.01": where the drive acts).
    """
    rows = []
    if result.interventions:
        from sim.compare import intervention_periods

        for iv in intervention_periods(result):
            rows.append((iv["kind"], iv["name"], iv["start"], iv["end"], "doses"))
    elif len(result.t) > 1:
        t = result.t
        for kind, slot in KIND_SLOTS.items():
            on = np.nan_to_num(result.drive[:, slot]) > DRIVE_ON
            for a, b in _runs(on):
                end = t[min(b + 1, len(t) - 1)]
                rows.append((kind, kind, float(t[a]), float(end), f"drive > {DRIVE_ON:g}"))
    return pd.DataFrame(rows, columns=["kind", "name", "start_days", "end_days", "source"])


def draw_therapy_band(ax: Axes, result: RunResult, scale: float) -> list:
    """TKI and intervention lanes on ``ax`` (no x ticks): TKI on top, one lane per intervention
    kind below it, each labelled at the left in its colour.

    Returns
    -------
    list
        Legend handles: TKI, then one patch per intervention kind drawn.
    """
    bars = intervention_bars(result)
    kinds = [k for k in KIND_SLOTS if k in set(bars["kind"])]
    kinds += sorted(set(bars["kind"]) - set(kinds))
    lanes = ["TKI", *kinds]
    n = len(lanes)
    top_dose = max([1.0] + [f for _, _, f in result.tki_periods])
    y_tki = n - 1
    for start, end, frac in result.tki_periods:
        ax.bar(
            start / scale,
            0.8 * frac / top_dose,
            width=(end - start) / scale,
            bottom=y_tki + 0.1,
            align="edge",
            color=COLORS["tki"],
            alpha=tki_alpha(frac, top_dose),
            linewidth=0,
            gid="tki",
        )
    for i, kind in enumerate(kinds):
        y = n - 2 - i
        for row in bars[bars["kind"] == kind].itertuples():
            ax.bar(
                row.start_days / scale,
                0.8,
                width=(row.end_days - row.start_days) / scale,
                bottom=y + 0.1,
                align="edge",
                color=KIND_COLORS.get(kind, OKABE_ITO["black"]),
                edgecolor="0.3",
                linewidth=0.3,
                gid=f"intervention:{kind}",
            )
    ax.set_ylim(0, n)
    ax.set_yticks(np.arange(n) + 0.5, labels=lanes[::-1])
    colors = [COLORS["tki"], *(KIND_COLORS.get(k, OKABE_ITO["black"]) for k in kinds)]
    for tick, color in zip(ax.get_yticklabels(), colors[::-1]):
        tick.set_color(color if color != OKABE_ITO["yellow"] else "0.35")
    ax.tick_params(axis="y", length=0)
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    handles: list = []
    if result.tki_periods:
        handles.append(tki_legend_patch(result.tki_periods, "TKI (bar height: dose)"))
    for kind in kinds:
        handles.append(
            Patch(
                facecolor=KIND_COLORS.get(kind, OKABE_ITO["black"]),
                edgecolor="0.3",
                linewidth=0.3,
                label=kind,
            )
        )
    return handles


def kinetics_data(result: RunResult) -> dict[str, pd.DataFrame]:
    """The numbers of the kinetics figure: ``data`` (curve), ``visits`` (qPCR), ``bars``."""
    curve = pd.DataFrame(
        {
            "time_days": result.t,
            "time_months": result.t / DAYS_PER_MONTH,
            "bcr_abl_pct": result.bcr_abl,
        }
    )
    visits = pd.DataFrame({k: np.asarray(v) for k, v in result.visits.items()})
    if "time" in visits:
        visits.insert(1, "time_months", visits["time"] / DAYS_PER_MONTH)
    tki = pd.DataFrame(
        [("tki", "TKI", s, e, f) for s, e, f in result.tki_periods],
        columns=["kind", "name", "start_days", "end_days", "dose_fraction"],
    )
    ivs = intervention_bars(result)
    bars = pd.concat([b for b in (tki, ivs) if len(b)], ignore_index=True) if len(ivs) else tki
    return {"data": curve, "visits": visits, "bars": bars}


def plot_kinetics(
    result: RunResult,
    path_stem: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    *,
    kind: str = "nature",
    width: str | float = "single",
    height_mm: float | None = None,
    time_unit: str = "auto",
) -> Figure:
    """Draw the BCR-ABL1 kinetics figure (see the module docstring) and optionally save it.

    Parameters
    ----------
    result : RunResult
        The run.
    path_stem : path, optional
        Write ``<path_stem>.<fmt>`` for each format and the CSVs of :func:`kinetics_data`.
    formats : sequence of str
        File formats (matplotlib extensions: "png", "pdf", "svg").
    kind : {"nature", "blood", "poster"}
        Style (:func:`sim.plots.style.use_style`).
    width : {"single", "double"} or float
        Column span or width in mm; default single column.
    height_mm : float, optional
        Height; default 80 mm plus 4 mm per intervention lane, more for double columns (scaled
        with the text size: :func:`sim.plots.style.default_height`).
    time_unit : {"auto", "months", "years"}
        Time axis unit; "auto" uses months up to 8 years, years beyond.

    Returns
    -------
    matplotlib.figure.Figure
        With an Agg canvas.
    """
    scale, unit_word, step = _time_axis(result.t, time_unit)
    n_lanes = 1 + intervention_bars(result)["kind"].nunique()
    with use_style(kind):
        w_mm = figsize(width, journal=kind)[0] * 25.4
        if height_mm is None:
            lanes_mm = 80.0 + 4.0 * (n_lanes - 1)
            height_mm = default_height(w_mm, lambda w: lanes_mm * max(1.0, w / 120.0), kind)
        fig = Figure(figsize=figsize(width, height_mm, journal=kind))
        FigureCanvasAgg(fig)
        ax_band, ax = fig.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [0.07 * n_lanes, 1.0]}
        )
        handles = draw_therapy_band(ax_band, result, scale)
        mark_panel(ax_band, ax)  # the therapy lanes belong to the BCR-ABL1 plot below
        h_curve, mr_labels = draw_bcr_abl(ax, result, scale)
        handles = h_curve + handles
        h_stop = draw_stops([ax_band, ax], result, scale, label_ax=ax)
        if h_stop is not None:
            handles.append(h_stop)
        if len(result.t):
            ax.set_xlim(result.t[0] / scale, result.t[-1] / scale)
        if step is not None:
            ax.xaxis.set_major_locator(ticker.MultipleLocator(step))
        ax.set_xlabel(f"Time since diagnosis ({unit_word})")
        fit_legend(fig, handles, 3 if w_mm >= 150 else 2)
        _spread_labels(fig, mr_labels)
        if path_stem is not None:
            save_with_data(fig, path_stem, formats, kinetics_data(result), result)
    return fig


__all__ = [
    "DRIVE_ON",
    "KIND_COLORS",
    "draw_therapy_band",
    "intervention_bars",
    "kinetics_data",
    "plot_kinetics",
]
