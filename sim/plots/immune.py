"""The immune state of one patient over time, one panel per quantity, with the therapy drive.

Panels (shared time axis, letters a–d):

- **a** effector T cells Z (cells, the cell units of Hähnel et al. 2020; log axis when they span
  more than a factor 20);
- **b** NK cells N (cells/µL of blood);
- **c** the exhausted fraction E of the effector T cells (the PD-1 axis; from 0 to 1 or to just
  above its largest value);
- **d** the therapy drive the model reads (:mod:`sim.therapy.drive`): the relative TKI effect
  u(t), the interferon effect I(t) and the anti-PD-1 receptor occupancy B(t) (fractions), and
  the vaccine and exercise boosts (relative rises); a drive that is zero throughout is left out.

A vertical line marks each TKI stop in every panel. :func:`plot_immune` writes the curves as
``<stem>_data.csv`` beside the figure.
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

from sim.params import DAYS_PER_MONTH
from sim.plots.compare import KIND_COLORS
from sim.plots.style import default_height, figsize, use_style
from sim.plots.trajectory import COLORS, _time_axis, draw_stops, fit_legend, save_with_data
from sim.therapy import drive as _drive

if TYPE_CHECKING:
    from sim.results import RunResult

#: The immune states drawn, in panel order: (state, axis label without unit, colour).
PANELS: tuple[tuple[str, str, str], ...] = (
    ("Z", "Effector T cells Z", COLORS["Z"]),
    ("N", "NK cells N", COLORS["N"]),
    ("E", "Exhausted fraction E", COLORS["E"]),
)

#: Drive slots drawn in panel d: (slot, legend label, colour, line style).
DRIVES: tuple[tuple[int, str, str, object], ...] = (
    (_drive.TKI, "TKI effect u", COLORS["tki"], "-"),
    (_drive.IFN, "interferon effect I", KIND_COLORS["interferon"], (0, (4, 1.5))),
    (_drive.PD1, "anti-PD-1 occupancy B", KIND_COLORS["checkpoint"], (0, (1, 1))),
    (_drive.VACCINE, "vaccine boost", KIND_COLORS["vaccine"], (0, (5, 1.5, 1, 1.5))),
    (_drive.EXERCISE, "exercise boost", "0.35", (0, (2, 1))),
)

#: A Z curve spanning more than this factor is drawn on a log axis.
LOG_SPAN = 20.0


def _unit(result: RunResult, state: str) -> str:
    m = result.model
    return m.state_units[m.states.index(state)]


def immune_data(result: RunResult) -> pd.DataFrame:
    """The curves of the immune figure: time, each immune state the model has, each drive slot.

    Columns ``time_days``, ``time_months``, ``<state>_<unit>`` (e.g. ``Z_cells``,
    ``N_cells_per_uL``, ``E_fraction``) and ``drive_<name>`` (:data:`sim.therapy.drive.NAMES`).
    """
    cols: dict[str, np.ndarray] = {
        "time_days": result.t,
        "time_months": result.t / DAYS_PER_MONTH,
    }
    for state, _, _ in PANELS:
        if state in result.model.states:
            unit = _unit(result, state).replace("/", "_per_").replace("µ", "u").replace(" ", "")
            cols[f"{state}_{unit or '1'}"] = result.y[:, result.model.states.index(state)]
    for slot, name in enumerate(_drive.NAMES):
        cols[f"drive_{name}"] = result.drive[:, slot]
    return pd.DataFrame(cols)


def plot_immune(
    result: RunResult,
    path_stem: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    *,
    kind: str = "nature",
    width: str | float = "single",
    height_mm: float | None = None,
    time_unit: str = "auto",
) -> Figure:
    """Draw the immune panels (see the module docstring) and optionally save them.

    Parameters
    ----------
    result : RunResult
        The run; immune states the model lacks are left out (at least one drive panel remains).
    path_stem : path, optional
        Write ``<path_stem>.<fmt>`` for each format and ``<path_stem>_data.csv``
        (:func:`immune_data`).
    formats : sequence of str
        File formats.
    kind : {"nature", "blood", "poster"}
        Style (:func:`sim.plots.style.use_style`).
    width : {"single", "double"} or float
        Column span or width in mm; default single column.
    height_mm : float, optional
        Height; default 24 mm per panel plus 20 mm, more for double columns (scaled with the
        text size: :func:`sim.plots.style.default_height`).
    time_unit : {"auto", "months", "years"}
        Time axis unit.

    Returns
    -------
    matplotlib.figure.Figure
        With an Agg canvas.
    """
    scale, unit_word, step = _time_axis(result.t, time_unit)
    panels = [p for p in PANELS if p[0] in result.model.states]
    n = len(panels) + 1
    tx = result.t / scale
    with use_style(kind):
        w_mm = figsize(width, journal=kind)[0] * 25.4
        if height_mm is None:
            height_mm = default_height(
                w_mm, lambda w: (20.0 + 24.0 * n) * max(1.0, w / 120.0), kind
            )
        fig = Figure(figsize=figsize(width, height_mm, journal=kind))
        FigureCanvasAgg(fig)
        axes = list(np.atleast_1d(fig.subplots(n, 1, sharex=True)))
        handles: list = []
        for ax, letter, (state, label, color) in zip(axes, "abcdefgh", panels):
            values = result.y[:, result.model.states.index(state)]
            ax.plot(tx, values, color=color)
            unit = _unit(result, state)
            ax.set_ylabel(f"{label}\n({unit})")
            ax.set_title(letter)
            ok = values[np.isfinite(values) & (values > 0)]
            if unit in ("1", "fraction"):
                # a fraction: from 0, up to 1 or just above the largest value (E is often small)
                top = float(np.nanmax(values, initial=0.0))
                ax.set_ylim(0, min(1.0, max(0.1, 1.15 * top)))
                ax.yaxis.set_major_locator(ticker.MaxNLocator(3))
            elif ok.size and ok.max() / ok.min() > LOG_SPAN:
                ax.set_yscale("log")
                ax.yaxis.set_minor_formatter(ticker.NullFormatter())
            else:
                ax.set_ylim(bottom=0, top=1.1 * ok.max() if ok.size else 1.0)
                ax.yaxis.set_major_locator(ticker.MaxNLocator(4))
        ax_d = axes[-1]
        top = 1.0
        for slot, label, color, ls in DRIVES:
            d = result.drive[:, slot]
            if not np.any(np.nan_to_num(d) != 0):
                continue
            (h,) = ax_d.plot(tx, d, color=color, linestyle=ls, label=label)
            handles.append(h)
            top = max(top, float(np.nanmax(d)))
        ax_d.set_ylim(0, 1.05 * top)
        ax_d.yaxis.set_major_locator(ticker.MaxNLocator(3))
        ax_d.set_ylabel("Therapy drive\n(relative)")
        ax_d.set_title("abcdefgh"[n - 1])
        h_stop = draw_stops(axes, result, scale, label_ax=ax_d)
        if h_stop is not None:
            handles.append(h_stop)
        if len(result.t):
            ax_d.set_xlim(tx[0], tx[-1])
        if step is not None:
            ax_d.xaxis.set_major_locator(ticker.MultipleLocator(step))
        ax_d.set_xlabel(f"Time since diagnosis ({unit_word})")
        fig.align_ylabels(axes)
        fit_legend(fig, handles, 3 if w_mm >= 150 else 2)
        if path_stem is not None:
            save_with_data(fig, path_stem, formats, immune_data(result), result)
    return fig


__all__ = ["DRIVES", "PANELS", "immune_data", "plot_immune"]
