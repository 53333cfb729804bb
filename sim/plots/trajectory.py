"""The single-patient figure: BCR-ABL1 kinetics with monitoring and therapy, and the immune state.

Panel **a** follows the way CML papers plot molecular response: BCR-ABL1 on the International
Scale (%) on a log axis against time since diagnosis, dashed reference lines at the molecular
response levels MMR (0.1 %), MR4 (0.01 %), MR4.5 (0.0032 %) and MR5 (0.001 %) labelled at the right
edge (ELN 2020, Hochhaus et al. Leukemia 2020;34:966; MR4.5 ≤ 0.0032 %: Breccia et al. Oncotarget
2017), the qPCR measurements (filled when detected, open down-triangles at the sample's detection
limit when undetectable), TKI exposure as bars in a band above (bar height and shade = dose as a
fraction of the standard dose) and a vertical line at each TKI stop. Panel **b** shows the immune
cells: effector T cells Z (cells, left axis) and NK cells N (cells/µL, right axis); panel **c**
the exhausted fraction E of the T cells.

The figure is built at its print size with :mod:`sim.plots.style` and without ``pyplot``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory, offset_copy

from sim.params import DAYS_PER_MONTH, DAYS_PER_YEAR
from sim.plots.style import OKABE_ITO, default_height, figsize, mark_panel, use_style

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.lines import Line2D
    from matplotlib.text import Text

    from sim.results import RunResult

#: Molecular response levels, % IS (same values as ``sim.readout``: MMR, MR4, MR4.5, MR5).
MR_LINES: tuple[tuple[str, float], ...] = (
    ("MMR", 0.1),
    ("MR4", 0.01),
    ("MR4.5", 0.0032),
    ("MR5", 0.001),
)

#: Default lower limit of the BCR-ABL1 axis, % IS: a decade below MR5 and below the detection
#: limit of any realistic sample (100/ABL1 with ABL1 <= 1e6 copies).
BCR_ABL_FLOOR = 1e-5

#: Spans up to this many years are drawn in months, longer ones in years.
MONTHS_UP_TO_YEARS = 8.0

COLORS = {
    "model": OKABE_ITO["blue"],
    "qpcr": OKABE_ITO["vermillion"],
    "tki": OKABE_ITO["bluish_green"],
    "stop": OKABE_ITO["black"],
    "Z": OKABE_ITO["orange"],
    "N": OKABE_ITO["reddish_purple"],
    "E": OKABE_ITO["sky_blue"],
    "mr": "0.45",
}


def _time_axis(t_days: np.ndarray, unit: str) -> tuple[float, str, float | None]:
    """(days per unit, axis word, major tick step) for ``unit`` in {"auto", "months", "years"}."""
    span_y = (t_days[-1] - t_days[0]) / DAYS_PER_YEAR if len(t_days) else 0.0
    if unit == "auto":
        unit = "months" if span_y <= MONTHS_UP_TO_YEARS else "years"
    if unit == "months":
        span_mo = span_y * 12.0
        step = next((s for s in (3.0, 6.0, 12.0, 24.0) if span_mo / s <= 12), None)
        return DAYS_PER_MONTH, "months", step
    if unit == "years":
        # whole-year ticks: short labels ("0", not "0.0") keep clear of the y tick labels
        step = next((s for s in (1.0, 2.0, 5.0, 10.0, 20.0) if span_y / s <= 8), None)
        return DAYS_PER_YEAR, "years", step
    raise ValueError(f"time unit must be 'auto', 'months' or 'years', got {unit!r}")


def tki_alpha(frac: float, top_dose: float) -> float:
    """Opacity of a TKI bar of dose fraction ``frac`` (the full dose ``top_dose`` is opaque)."""
    return 0.3 + 0.7 * min(frac / top_dose, 1.0)


def tki_legend_patch(periods: Sequence[tuple[float, float, float]], label: str) -> Patch:
    """The legend swatch of the TKI bars: the shade of the largest dose drawn."""
    top_dose = max([1.0] + [f for _, _, f in periods])
    largest = max(f for _, _, f in periods)
    return Patch(color=COLORS["tki"], alpha=tki_alpha(largest, top_dose), linewidth=0, label=label)


def _stop_times(result: RunResult) -> list[float]:
    """TKI stops (days): visits with action "stop", the summary stop time, and ends of TKI
    periods that are followed by a gap before the end of the run."""
    from sim.results import ACTIONS

    stop_code = next(k for k, v in ACTIONS.items() if v == "stop")
    found: list[float] = []
    v = result.visits
    if "action" in v and "time" in v:
        found += [float(x) for x in np.asarray(v["time"])[np.asarray(v["action"]) == stop_code]]
    s = result.summary.get("stop_time", np.nan)
    if np.isfinite(s):
        found.append(float(s))
    periods = sorted(result.tki_periods)
    t_end = float(result.t[-1]) if len(result.t) else 0.0
    for i, (_, end, _) in enumerate(periods):
        nxt = periods[i + 1][0] if i + 1 < len(periods) else np.inf
        if end < t_end - 0.5 and nxt > end + 0.5:
            found.append(float(end))
    stops: list[float] = []
    for x in sorted(found):
        if not stops or x - stops[-1] > 1.0:  # within a day: the same stop
            stops.append(x)
    return stops


def _bcr_abl_limits(result: RunResult) -> tuple[float, float]:
    """Log-axis limits that show every measurement and the curve down to BCR_ABL_FLOOR."""
    v = result.visits
    shown = [result.bcr_abl[np.isfinite(result.bcr_abl) & (result.bcr_abl > 0)]]
    for key in ("measured_pct", "lod_pct"):
        if key in v:
            a = np.asarray(v[key], dtype=np.float64)
            shown.append(a[np.isfinite(a) & (a > 0)])
    values = np.concatenate(shown) if shown else np.array([])
    measured = np.concatenate(shown[1:]) if len(shown) > 1 else np.array([])
    bottom = BCR_ABL_FLOOR
    if measured.size and measured.min() < bottom:  # never hide a measurement
        bottom = 10.0 ** np.floor(np.log10(measured.min()))
    top = max(100.0, 1.5 * values.max()) if values.size else 100.0
    return bottom, top


#: A stretch of the true BCR-ABL1 curve is labelled as flat when it stays within this many
#: decades of one level (about ±5 %) for at least :data:`FLAT_MIN_YEARS`.
FLAT_DECADES = 0.02
FLAT_MIN_YEARS = 2.0


def flat_stretch(t: np.ndarray, values: np.ndarray) -> tuple[float, float, float] | None:
    """The longest stretch where ``values`` stay within :data:`FLAT_DECADES` of one level.

    A model steady state (in ``cml_immune``, T-cell control pins the leukemic cells at the lower
    root of the immune window) can hold the true BCR-ABL1 flat for years; on a log axis it then
    reads like a floor or a clamp, all the more when it lies on a molecular-response line.

    Parameters
    ----------
    t : ndarray
        Times (days), increasing.
    values : ndarray
        BCR-ABL1 (%), same length.

    Returns
    -------
    (float, float, float) or None
        ``(start, end, level)`` in days and % (the median over the stretch) of the longest
        stretch of at least :data:`FLAT_MIN_YEARS`, or None.
    """
    ok = np.isfinite(values) & (values > 0)
    if ok.sum() < 2:
        return None
    tt, lv = t[ok], np.log10(values[ok])
    best: tuple[int, int] | None = None
    i = 0
    while i < len(lv):
        j, lo, hi = i, lv[i], lv[i]
        # extend while the stretch's range stays within twice the tolerance
        while j + 1 < len(lv) and max(hi, lv[j + 1]) - min(lo, lv[j + 1]) <= 2 * FLAT_DECADES:
            j += 1
            lo, hi = min(lo, lv[j]), max(hi, lv[j])
        if best is None or tt[j] - tt[i] > tt[best[1]] - tt[best[0]]:
            best = (i, j)
        i = j + 1
    a, b = best
    if tt[b] - tt[a] < FLAT_MIN_YEARS * DAYS_PER_YEAR:
        return None
    return float(tt[a]), float(tt[b]), float(10.0 ** np.median(lv[a : b + 1]))


def draw_bcr_abl(ax: Axes, result: RunResult, scale: float) -> tuple[list, list[Text]]:
    """Draw BCR-ABL1 kinetics on ``ax``: the model curve, the qPCR measurements and the
    molecular-response levels.

    The y axis is BCR::ABL1 IS (%) on a log scale from :data:`BCR_ABL_FLOOR` (or lower, so that
    no measurement is hidden) to at least 100 %; dashed grey lines at :data:`MR_LINES` are
    labelled just right of the axis; detected samples are filled circles, undetectable ones open
    down-triangles at the sample's detection limit (100/ABL1 copies). A stretch where the curve
    stays flat for years (:func:`flat_stretch`) is labelled with its level just below it, so
    that a model steady state lying on an MR line does not read as a clamp.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    result : RunResult
        The run.
    scale : float
        Days per unit of the time axis.

    Returns
    -------
    (list, list of Text)
        Legend handles (curve, detected, undetectable) and the MR level labels (pass them to
        :func:`_spread_labels` after the layout is final).
    """
    handles: list = []
    tx = result.t / scale
    bottom, top = _bcr_abl_limits(result)
    finite = result.bcr_abl[np.isfinite(result.bcr_abl)]
    off_scale = finite.size and finite.min() < bottom
    label = "model, true BCR::ABL1"
    if off_scale:
        # bottom is a power of ten (BCR_ABL_FLOOR or a decade below a measurement)
        label += f" (below $10^{{{round(np.log10(bottom))}}}$ % off scale)"
    (line,) = ax.plot(tx, result.bcr_abl, color=COLORS["model"], label=label, zorder=2.5)
    handles.append(line)
    flat = flat_stretch(result.t, result.bcr_abl)
    if flat is not None:
        start, end, level = flat
        ax.annotate(
            f"flat at {level:.3g} % for {(end - start) / DAYS_PER_YEAR:.1f} years\n"
            "(model steady state)",
            xy=(0.5 * (start + end) / scale, level),
            xytext=(0, -2.5),
            textcoords="offset points",
            ha="center",
            va="top",
            color=COLORS["model"],
            fontsize="small",
        )
    ax.set_yscale("log", nonpositive="mask")
    ax.set_ylim(bottom, top)
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10.0, numticks=20))
    ax.yaxis.set_minor_locator(
        ticker.LogLocator(base=10.0, subs=np.arange(2, 10) * 1.0, numticks=20)
    )
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_ylabel("BCR::ABL1 IS (%)")
    mr_transform = blended_transform_factory(ax.transAxes, ax.transData)
    mr_labels = []
    for name, level in MR_LINES:
        ax.axhline(level, color=COLORS["mr"], linestyle=(0, (4, 2)), linewidth=0.5, zorder=0)
        mr_labels.append(
            ax.text(
                1.008,
                level,
                name,
                transform=mr_transform,
                ha="left",
                va="center",
                color=COLORS["mr"],
                fontsize="small",
                clip_on=False,
            )
        )
    v = result.visits
    if result.n_visits and "time" in v:
        tv = np.asarray(v["time"], dtype=np.float64) / scale
        detected = np.asarray(v.get("detected", np.ones(len(tv))), dtype=np.float64) > 0.5
        measured = np.asarray(v.get("measured_pct", np.full(len(tv), np.nan)), np.float64)
        lod = np.asarray(v.get("lod_pct", np.full(len(tv), np.nan)), dtype=np.float64)
        pos = detected & (measured > 0)
        if pos.any():
            (h,) = ax.plot(
                tv[pos],
                measured[pos],
                "o",
                color=COLORS["qpcr"],
                markeredgewidth=0.5,
                label="qPCR, detected",
                zorder=3,
            )
            handles.append(h)
        und = ~detected
        if und.any():
            (h,) = ax.plot(
                tv[und],
                lod[und],
                "v",
                markerfacecolor="white",
                markeredgecolor=COLORS["qpcr"],
                markeredgewidth=0.6,
                label="qPCR, undetectable (at detection limit)",
                zorder=3,
            )
            handles.append(h)
    return handles, mr_labels


def draw_stops(
    axes: Sequence[Axes], result: RunResult, scale: float, label_ax: Axes
) -> Line2D | None:
    """A vertical dash-dot line at each TKI stop (:func:`_stop_times`) on every axes.

    Returns the line labelled "TKI stop" on ``label_ax`` (for the legend), or None without a
    stop.
    """
    first = None
    for i, ts in enumerate(_stop_times(result)):
        for ax in axes:
            h = ax.axvline(
                ts / scale,
                color=COLORS["stop"],
                linestyle=(0, (5, 1.5, 1, 1.5)),
                linewidth=0.7,
                label="TKI stop" if i == 0 and ax is label_ax else None,
            )
            if i == 0 and ax is label_ax:
                first = h
    return first


def plot_trajectory(
    result: RunResult,
    path_stem: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    *,
    kind: str = "nature",
    width: str | float = "double",
    height_mm: float | None = None,
    time_unit: str = "auto",
) -> Figure:
    """Draw the single-patient figure (see the module docstring) and optionally save it.

    Parameters
    ----------
    result : RunResult
        The run (model states must include Z, E and N for panel b; missing ones are skipped).
    path_stem : path, optional
        If given, the figure is written to ``<path_stem>.<fmt>`` for each format.
    formats : sequence of str
        File formats (matplotlib extensions: "png", "pdf", "svg", ...).
    kind : {"nature", "blood", "poster"}
        Style, see :func:`sim.plots.style.use_style`.
    width : {"single", "double"} or float
        Column span or width in mm (:func:`sim.plots.style.figsize`).
    height_mm : float, optional
        Height; default two thirds of the width, at least 100 mm (scaled with the text size:
        :func:`sim.plots.style.default_height`).
    time_unit : {"auto", "months", "years"}
        Time axis unit; "auto" uses months up to 8 years, years beyond.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (with an Agg canvas). Save it again inside
        ``sim.plots.style.use_style(kind)`` to keep the TrueType font embedding.
    """
    scale, unit_word, step = _time_axis(result.t, time_unit)
    states = result.model.states
    with use_style(kind):
        w_in, _ = figsize(width, journal=kind)
        w_mm = w_in * 25.4
        if height_mm is None:
            height_mm = default_height(w_mm, lambda w: max(100.0, 2.0 / 3.0 * w), kind)
        fig = Figure(figsize=figsize(width, height_mm, journal=kind))
        FigureCanvasAgg(fig)
        ax_tki, ax_a, ax_z, ax_e = fig.subplots(
            4, 1, sharex=True, gridspec_kw={"height_ratios": [0.08, 1.0, 0.55, 0.4]}
        )
        tx = result.t / scale
        handles: list = []

        # ---- therapy band
        top_dose = max([1.0] + [f for _, _, f in result.tki_periods])
        for start, end, frac in result.tki_periods:
            ax_tki.bar(
                start / scale,
                frac,
                width=(end - start) / scale,
                align="edge",
                color=COLORS["tki"],
                alpha=tki_alpha(frac, top_dose),
                linewidth=0,
            )
        ax_tki.set_ylim(0, top_dose)
        ax_tki.set_yticks([])
        ax_tki.tick_params(axis="x", bottom=False)
        for side in ("left", "bottom"):
            ax_tki.spines[side].set_visible(False)
        ax_tki.set_ylabel("TKI", rotation=0, ha="right", va="center")
        if result.tki_periods:
            handles.append(tki_legend_patch(result.tki_periods, "TKI (bar height: dose fraction)"))

        # ---- panel a: BCR-ABL1
        h_a, mr_labels = draw_bcr_abl(ax_a, result, scale)
        handles += h_a
        mark_panel(ax_tki, ax_a, letter="a")

        # ---- panel b: immune state
        def state(name: str) -> np.ndarray | None:
            return result.y[:, states.index(name)] if name in states else None

        z, n, e = state("Z"), state("N"), state("E")
        mark_panel(ax_z, letter="b")
        mark_panel(ax_e, letter="c")
        if z is not None:
            (h,) = ax_z.plot(tx, z, color=COLORS["Z"], label="effector T cells Z")
            handles.append(h)
            zpos = z[np.isfinite(z) & (z > 0)]
            if zpos.size and zpos.max() / zpos.min() > 20.0:
                ax_z.set_yscale("log")
                ax_z.yaxis.set_minor_formatter(ticker.NullFormatter())
            else:
                ax_z.set_ylim(bottom=0)
            ax_z.set_ylabel(f"T cells Z\n({_unit(result, 'Z')})", color=COLORS["Z"])
        if n is not None:
            ax_n = ax_z.twinx()
            ax_n.spines["right"].set_visible(True)
            (h,) = ax_n.plot(tx, n, color=COLORS["N"], linestyle=(0, (3, 1.5)), label="NK cells N")
            handles.append(h)
            ax_n.set_ylim(bottom=0)
            ax_n.set_ylabel(f"NK cells N\n({_unit(result, 'N')})", color=COLORS["N"])
        if e is not None:
            (h,) = ax_e.plot(tx, e, color=COLORS["E"], label="exhausted fraction E")
            handles.append(h)
        ax_e.set_ylim(0, 1)  # E is a fraction: nothing lies outside
        ax_e.set_yticks([0, 0.5, 1])
        ax_e.set_ylabel("Exhausted\nE (fraction)", color=COLORS["E"])

        # ---- stops, time axis, legend
        h = draw_stops([ax_tki, ax_a, ax_z, ax_e], result, scale, label_ax=ax_a)
        if h is not None:
            handles.append(h)
        if len(result.t):
            ax_e.set_xlim(tx[0], tx[-1])
        if step is not None:
            ax_e.xaxis.set_major_locator(ticker.MultipleLocator(step))
        ax_e.set_xlabel(f"Time since diagnosis ({unit_word})")
        fig.align_ylabels([ax_a, ax_z, ax_e])
        fit_legend(fig, handles, 4 if w_mm >= 150 else 2)  # also makes the final layout
        _spread_labels(fig, mr_labels)
        if path_stem is not None:
            save_figure(fig, path_stem, formats, result)
    return fig


def fit_legend(fig: Figure, handles: list, max_cols: int, loc: str = "outside upper center"):
    """A figure legend with as many columns (at most ``max_cols``) as fit the figure's width.

    Tries ``max_cols``, ``max_cols - 1``, ... columns and keeps the first legend no wider than
    the figure, so that no entry is cut off at the edge (one column when none fits).
    """
    for ncols in range(max(1, min(max_cols, len(handles))), 0, -1):
        legend = fig.legend(handles=handles, loc=loc, ncols=ncols)
        fig.draw_without_rendering()
        if ncols == 1 or legend.get_window_extent().width <= 0.98 * fig.bbox.width:
            return legend
        legend.remove()
    return legend


def _spread_labels(fig: Figure, texts: list[Text], gap_pt: float = 0.5) -> None:
    """Move vertically stacked labels (top to bottom in ``texts``) down just enough that none
    overlaps the one above; a no-op when the axis leaves room (the usual case)."""
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    floor = np.inf
    for text in sorted(texts, key=lambda t: -t.get_window_extent(renderer).y1):
        box = text.get_window_extent(renderer)
        shift_px = max(0.0, box.y1 - (floor - gap_pt * px_per_pt))
        if shift_px > 0:
            text.set_transform(
                offset_copy(text.get_transform(), fig=fig, y=-shift_px / px_per_pt, units="points")
            )
        floor = box.y0 - shift_px


def _unit(result: RunResult, state: str) -> str:
    m = result.model
    return m.state_units[m.states.index(state)]


def save_figure(
    fig: Figure,
    path_stem: str | os.PathLike,
    formats: Sequence[str] = ("png", "pdf"),
    result: RunResult | None = None,
    *,
    title: str | None = None,
) -> list[str]:
    """Write ``<path_stem>.<fmt>`` for each format, with provenance in the file metadata.

    Call inside :func:`sim.plots.style.use_style` so the font embedding settings apply.
    ``title`` defaults to "cmlsim <run name>".

    Returns
    -------
    list of str
        The paths written.
    """
    import sim

    if title is None:
        title = f"cmlsim {result.name}" if result is not None else "cmlsim"
    creator = f"cmlsim {sim.__version__}"
    if result is not None and "git_revision" in result.provenance:
        creator += f" ({result.provenance['git_revision']}, seed {result.provenance.get('seed')})"
    written = []
    for fmt in formats:
        path = f"{os.fspath(path_stem)}.{fmt}"
        if fmt in ("pdf", "svg"):
            metadata = {"Title": title, "Creator": creator}
        elif fmt == "png":
            metadata = {"Title": title, "Software": creator}
        else:
            metadata = None
        fig.savefig(path, format=fmt, metadata=metadata)
        written.append(path)
    return written


def save_with_data(
    fig: Figure,
    path_stem: str | os.PathLike,
    formats: Sequence[str],
    data: Mapping[str, pd.DataFrame] | pd.DataFrame,
    result: RunResult | None = None,
    *,
    title: str | None = None,
) -> list[str]:
    """Write the figure (:func:`save_figure`) and the numbers it shows beside it.

    Parameters
    ----------
    fig, path_stem, formats, result, title
        As :func:`save_figure`.
    data : DataFrame or mapping of str to DataFrame
        One table is written as ``<path_stem>_data.csv``; a mapping writes ``<path_stem>_<key>.csv``
        per entry (``"data"`` gives ``<path_stem>_data.csv``). Missing values are written "NaN".

    Returns
    -------
    list of str
        The paths written (figures, then tables).
    """
    written = save_figure(fig, path_stem, formats, result, title=title)
    tables = {"data": data} if not isinstance(data, Mapping) else data
    for key, table in tables.items():
        path = f"{os.fspath(path_stem)}_{key}.csv"
        table.to_csv(path, index=False, na_rep="NaN")
        written.append(path)
    return written


def _drawn_texts(fig: Figure) -> tuple[list[Text], list]:
    """The text artists a draw of ``fig`` actually renders (non-empty), with their extents."""
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    drawn: dict[int, Text] = {}

    def recorder(method):
        def record(gc, x, y, s, prop, angle, *args, mtext=None, **kwargs):
            if mtext is not None and str(s).strip():
                drawn[id(mtext)] = mtext
            return method(gc, x, y, s, prop, angle, *args, mtext=mtext, **kwargs)

        return record

    renderer.draw_text = recorder(type(renderer).draw_text.__get__(renderer))
    renderer.draw_tex = recorder(type(renderer).draw_tex.__get__(renderer))
    try:
        fig.draw(renderer)
    finally:
        del renderer.draw_text, renderer.draw_tex
    texts = list(drawn.values())
    return texts, [t.get_window_extent(renderer) for t in texts]


def text_problems(fig: Figure, tol_px: float = 0.5) -> tuple[list[tuple[Text, Text]], list[Text]]:
    """Overlapping text pairs and texts cut off at the figure's edge, from one draw.

    The figure is drawn once with a renderer that records every text it actually draws (tick
    labels of visible ticks, axis labels, titles, legend entries, annotations); then the window
    extents of all pairs are compared, and each extent with the figure's.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (its layout is computed by the draw).
    tol_px : float
        Overlaps and overhangs of at most this many pixels are ignored (touching boxes).

    Returns
    -------
    (list of (Text, Text), list of Text)
        Overlapping pairs, and texts not wholly inside the figure; both empty for a clean figure.
    """
    texts, boxes = _drawn_texts(fig)
    overlaps = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            a, b = boxes[i], boxes[j]
            dx = min(a.x1, b.x1) - max(a.x0, b.x0)
            dy = min(a.y1, b.y1) - max(a.y0, b.y0)
            if dx > tol_px and dy > tol_px:
                overlaps.append((texts[i], texts[j]))
    w, h = fig.bbox.width, fig.bbox.height
    outside = [
        t
        for t, b in zip(texts, boxes)
        if b.x0 < -tol_px or b.y0 < -tol_px or b.x1 > w + tol_px or b.y1 > h + tol_px
    ]
    return overlaps, outside


def check_no_overlap(fig: Figure, tol_px: float = 0.5) -> list[tuple[Text, Text]]:
    """Pairs of drawn text artists whose rendered extents overlap (:func:`text_problems`).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (its layout is computed by the draw).
    tol_px : float
        Overlaps of at most this many pixels in either direction are ignored (touching boxes).

    Returns
    -------
    list of (Text, Text)
        Overlapping pairs; empty when no two texts collide.
    """
    return text_problems(fig, tol_px)[0]


def check_text_inside(fig: Figure, tol_px: float = 0.5) -> list[Text]:
    """Drawn text artists that reach beyond the figure's edges, so are cut off in the saved file
    (:func:`text_problems`).

    Returns
    -------
    list of Text
        The texts not wholly inside the figure; empty when all are.
    """
    return text_problems(fig, tol_px)[1]


__all__ = [
    "MR_LINES",
    "check_no_overlap",
    "check_text_inside",
    "draw_bcr_abl",
    "draw_stops",
    "fit_legend",
    "plot_trajectory",
    "save_figure",
    "save_with_data",
    "text_problems",
]
