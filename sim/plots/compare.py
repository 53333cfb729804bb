"""The comparison figure: several scenarios of one patient on shared axes.

Layout (double column, top to bottom, shared time axis):

- **a**, band: one lane per scenario (labelled with the scenario, in its colour). Upper half: TKI
  exposure (``RunResult.tki_periods``), grey, darker for a higher dose fraction; lower half:
  immune interventions (``RunResult.interventions``) from the first dose to one dosing interval
  after the last, one colour per kind (interferon, checkpoint, vaccine, exercise).
- **a**, main: true BCR-ABL1 (% IS, log axis) of every scenario, each in its own Okabe–Ito colour
  *and* line style (readable in greyscale and by colour-blind readers), with dashed grey reference
  lines at MMR (0.1 %), MR4 (0.01 %), MR4.5 (0.0032 %) and MR5 (0.001 %) labelled at the right
  edge (ELN 2020, Hochhaus et al. Leukemia 2020;34:966), and a thin vertical line plus a
  triangle at the top at each scenario's TKI stop(s).
- **b**: effector T cells Z (cells, log axis), per scenario, same colours and styles.
- **c**: NK cells N (cells/µL).
- **d**: exhausted fraction E of the T cells.

The same curves and bars are written as ``figure_data.csv`` and ``figure_bars.csv`` by
:func:`sim.compare.write_comparison`, so an author can restyle the figure elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory, offset_copy

from sim.plots.style import OKABE_ITO, default_height, figsize, mark_panel, use_style
from sim.plots.trajectory import (
    BCR_ABL_FLOOR,
    MR_LINES,
    _spread_labels,
    _stop_times,
    _time_axis,
)

if TYPE_CHECKING:
    from sim.results import RunResult

#: Scenario colours, in order (Okabe–Ito; yellow left out: too light for thin lines on white).
SCENARIO_COLORS: tuple[str, ...] = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["black"],
)

#: Scenario line styles, in order; combined with the colours, the first 12 scenarios differ in
#: colour or style or both, and the first six differ in style alone.
SCENARIO_STYLES: tuple = (
    "-",
    "--",
    ":",
    "-.",
    (0, (5, 1, 1, 1, 1, 1)),
    (0, (9, 2.5)),
)

#: Bar colour of each intervention kind (``sim.therapy.interventions.KIND_CODES``).
KIND_COLORS: dict[str, str] = {
    "interferon": OKABE_ITO["orange"],
    "checkpoint": OKABE_ITO["reddish_purple"],
    "vaccine": OKABE_ITO["sky_blue"],
    "exercise": OKABE_ITO["yellow"],
}

#: TKI bar colour (shade: alpha grows with the dose fraction).
TKI_COLOR = "0.25"
MR_COLOR = "0.45"
LANE_MM = 4.5
#: Longest lane label in the bar band (characters); longer scenario labels are cut with "…".
LANE_LABEL_MAX = 28


def scenario_style(i: int) -> dict[str, object]:
    """Colour and line style of the ``i``-th scenario (0-based)."""
    return {
        "color": SCENARIO_COLORS[i % len(SCENARIO_COLORS)],
        "linestyle": SCENARIO_STYLES[i % len(SCENARIO_STYLES)],
    }


def _tki_alpha(frac: float, top: float) -> float:
    return 0.25 + 0.75 * min(max(frac / top, 0.0), 1.0)


def plot_comparison(
    results: Sequence[RunResult],
    path_stem: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    *,
    labels: Sequence[str] | None = None,
    kind: str = "nature",
    width: str | float = "double",
    height_mm: float | None = None,
    time_unit: str = "auto",
) -> Figure:
    """Draw the comparison figure (see the module docstring) and optionally save it.

    Parameters
    ----------
    results : sequence of RunResult
        The runs, in column order (at least one).
    path_stem : path, optional
        If given, the figure is written to ``<path_stem>.<fmt>`` for each format.
    formats : sequence of str
        File formats (matplotlib extensions).
    labels : sequence of str, optional
        Scenario labels; default the names made unique (:func:`sim.compare.unique_labels`).
    kind : {"nature", "blood", "poster"}
        Style (:func:`sim.plots.style.use_style`).
    width : {"single", "double"} or float
        Column span or width in mm; default double column.
    height_mm : float, optional
        Height; default 125 mm plus one lane per scenario, scaled with the text size
        (:func:`sim.plots.style.default_height`; at most the journal maximum).
    time_unit : {"auto", "months", "years"}
        Time axis unit; "auto" uses months up to 8 years, years beyond.

    Returns
    -------
    matplotlib.figure.Figure
        With an Agg canvas; save it again inside ``use_style(kind)`` to keep embedded TrueType
        fonts.
    """
    from sim.compare import intervention_periods, unique_labels

    results = list(results)
    if not results:
        raise ValueError("plot_comparison needs at least one run")
    labels = list(labels) if labels is not None else unique_labels([r.name for r in results])
    if len(labels) != len(results):
        raise ValueError(f"{len(labels)} labels for {len(results)} runs")
    n = len(results)
    t_all = np.unique(np.concatenate([r.t for r in results]))
    scale, unit_word, step = _time_axis(t_all, time_unit)
    t_end = float(t_all[-1])
    periods = [intervention_periods(r) for r in results]
    any_iv = any(iv["start"] < t_end for ivs in periods for iv in ivs)

    with use_style(kind):
        if height_mm is None:
            w_mm = figsize(width, journal=kind)[0] * 25.4
            height_mm = default_height(w_mm, lambda w: 125.0 + LANE_MM * n, kind)
        fig = Figure(figsize=figsize(width, height_mm, journal=kind))
        FigureCanvasAgg(fig)
        w_mm = fig.get_figwidth() * 25.4
        band_ratio = LANE_MM * n / 55.0  # panel a main axis is ~55 mm tall at the default size
        ax_band, ax_a, ax_z, ax_n, ax_e = fig.subplots(
            5,
            1,
            sharex=True,
            gridspec_kw={"height_ratios": [band_ratio, 1.0, 0.5, 0.38, 0.3]},
        )
        handles: list = []

        # ---- band: TKI and intervention bars, one lane per scenario (first on top)
        top_dose = max([1.0] + [f for r in results for _, _, f in r.tki_periods])
        full = False
        reduced: list[float] = []  # reduced dose fractions drawn
        kinds_seen: list[str] = []
        for i, (r, ivs) in enumerate(zip(results, periods)):
            y = n - 1 - i
            tki_y, tki_h = (y + 0.52, 0.4) if any_iv else (y + 0.15, 0.7)
            for start, end, frac in r.tki_periods:
                if frac < top_dose - 1e-9:
                    reduced.append(frac)
                else:
                    full = True
                ax_band.barh(
                    tki_y,
                    (end - start) / scale,
                    left=start / scale,
                    height=tki_h,
                    align="edge",
                    color=TKI_COLOR,
                    alpha=_tki_alpha(frac, top_dose),
                    linewidth=0,
                    gid="tki",
                )
            # interventions share the lower half of the lane, one sub-row each, so that
            # overlapping courses (e.g. interferon with a vaccine) stay visible
            ivs = [iv for iv in ivs if iv["start"] < t_end]
            sub = 0.4 / max(len(ivs), 1)
            for k, iv in enumerate(ivs):
                color = KIND_COLORS.get(iv["kind"], OKABE_ITO["black"])
                ax_band.barh(
                    y + 0.08 + (len(ivs) - 1 - k) * sub,
                    (min(iv["end"], t_end) - iv["start"]) / scale,
                    left=iv["start"] / scale,
                    height=sub,
                    align="edge",
                    color=color,
                    edgecolor="0.3",
                    linewidth=0.3,
                    gid=f"intervention:{iv['kind']}",
                )
                if iv["kind"] not in kinds_seen:
                    kinds_seen.append(iv["kind"])
        ax_band.set_ylim(0, n)
        # lane labels are kept short (the legend has the full names; the colour tells them apart)
        short = [
            lb if len(lb) <= LANE_LABEL_MAX else lb[: LANE_LABEL_MAX - 1] + "…" for lb in labels
        ]
        ax_band.set_yticks(np.arange(n) + 0.5, labels=short[::-1])
        for tick, i in zip(ax_band.get_yticklabels(), range(n - 1, -1, -1)):
            tick.set_color(scenario_style(i)["color"])
        ax_band.tick_params(axis="y", length=0)
        ax_band.tick_params(axis="x", bottom=False)
        for side in ("left", "bottom"):
            ax_band.spines[side].set_visible(False)
        mark_panel(ax_band, ax_a, letter="a")  # the lanes belong to the BCR-ABL1 plot below

        # ---- panel a: BCR-ABL1 of every scenario
        finite = np.concatenate([r.bcr_abl[np.isfinite(r.bcr_abl)] for r in results])
        top = max(100.0, 1.5 * finite.max()) if finite.size else 100.0
        for i, (r, label) in enumerate(zip(results, labels)):
            (line,) = ax_a.plot(r.t / scale, r.bcr_abl, label=label, **scenario_style(i))
            handles.append(line)
        ax_a.set_yscale("log", nonpositive="mask")
        ax_a.set_ylim(BCR_ABL_FLOOR, top)
        ax_a.yaxis.set_major_locator(ticker.LogLocator(base=10.0, numticks=20))
        ax_a.yaxis.set_minor_locator(
            ticker.LogLocator(base=10.0, subs=np.arange(2, 10) * 1.0, numticks=20)
        )
        ax_a.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax_a.set_ylabel("BCR::ABL1 IS (%)")
        if finite.size and finite[finite > 0].min(initial=np.inf) < BCR_ABL_FLOOR:
            ax_a.text(
                0.005,
                0.02,
                f"below $10^{{{round(np.log10(BCR_ABL_FLOOR))}}}$ % not shown",
                transform=ax_a.transAxes,
                fontsize="small",
                color=MR_COLOR,
                ha="left",
                va="bottom",
            )
        mr_transform = blended_transform_factory(ax_a.transAxes, ax_a.transData)
        mr_labels = []
        for name, level in MR_LINES:
            ax_a.axhline(level, color=MR_COLOR, linestyle=(0, (4, 2)), linewidth=0.5, zorder=0)
            mr_labels.append(
                ax_a.text(
                    1.008,
                    level,
                    name,
                    transform=mr_transform,
                    ha="left",
                    va="center",
                    color=MR_COLOR,
                    fontsize="small",
                    clip_on=False,
                )
            )

        # ---- panels b and c: immune cells
        def state(r: RunResult, name: str) -> np.ndarray | None:
            return r.y[:, r.model.states.index(name)] if name in r.model.states else None

        def unit(name: str) -> str:
            for r in results:
                if name in r.model.states:
                    return r.model.state_units[r.model.states.index(name)]
            return ""

        e_max = 0.0
        for i, r in enumerate(results):
            st = scenario_style(i)
            z, nk, e = state(r, "Z"), state(r, "N"), state(r, "E")
            if z is not None:
                ax_z.plot(r.t / scale, z, **st)
            if nk is not None:
                ax_n.plot(r.t / scale, nk, **st)
            if e is not None:
                ax_e.plot(r.t / scale, e, **st)
                e_max = max(e_max, float(np.nanmax(e, initial=0.0)))
        ax_z.set_yscale("log", nonpositive="mask")
        ax_z.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax_z.set_ylabel(f"Effector T cells\nZ ({unit('Z')})")
        mark_panel(ax_z, letter="b")
        ax_n.set_ylim(bottom=0)
        ax_n.set_ylabel(f"NK cells\nN ({unit('N')})")
        ax_n.yaxis.set_major_locator(ticker.MaxNLocator(3))
        mark_panel(ax_n, letter="c")
        ax_e.set_ylim(0, min(1.0, max(0.1, 1.15 * e_max)))
        ax_e.yaxis.set_major_locator(ticker.MaxNLocator(3))
        ax_e.set_ylabel("Exhausted\nE (fraction)")
        mark_panel(ax_e, letter="d")

        # ---- stops
        stop_transform = blended_transform_factory(ax_a.transData, ax_a.transAxes)
        stop_markers: dict[int, Line2D] = {}  # legend: one triangle per scenario with a stop
        placed: list[float] = []
        for i, r in enumerate(results):
            st = scenario_style(i)
            for ts in _stop_times(r):
                if not t_all[0] <= ts <= t_end:
                    continue
                # stops at (nearly) the same time: stack their triangles downwards
                near = sum(abs(ts - x) < 0.01 * (t_end - t_all[0]) for x in placed)
                placed.append(ts)
                for ax in (ax_a, ax_z, ax_n, ax_e):
                    ax.axvline(
                        ts / scale,
                        color=st["color"],
                        linestyle=st["linestyle"],
                        linewidth=0.6,
                        alpha=0.7,
                        zorder=1,
                        label=f"_stop {labels[i]}",
                    )
                (marker,) = ax_a.plot(
                    [ts / scale],
                    [1.0],
                    marker="v",
                    color=st["color"],
                    markersize=4,
                    transform=offset_copy(stop_transform, fig=fig, y=-4.5 * near, units="points"),
                    clip_on=False,
                    label=f"_stop marker {labels[i]}",
                )
                stop_markers.setdefault(i, marker)

        # ---- legend
        if full:
            handles.append(Patch(color=TKI_COLOR, alpha=1.0, label="TKI, standard dose"))
        if reduced:  # the shade of the largest reduced dose drawn
            alpha = _tki_alpha(max(reduced), top_dose)
            handles.append(Patch(color=TKI_COLOR, alpha=alpha, label="TKI, reduced dose"))
        for k in kinds_seen:
            handles.append(
                Patch(
                    facecolor=KIND_COLORS.get(k, OKABE_ITO["black"]),
                    edgecolor="0.3",
                    linewidth=0.3,
                    label=k,
                )
            )
        if stop_markers:
            handles.append(
                tuple(
                    Line2D([], [], color=m.get_color(), marker="v", markersize=3, linestyle="none")
                    for _, m in sorted(stop_markers.items())
                )
            )

        # ---- time axis and layout
        ax_e.set_xlim(t_all[0] / scale, t_all[-1] / scale)
        if step is not None:
            ax_e.xaxis.set_major_locator(ticker.MultipleLocator(step))
        ax_e.set_xlabel(f"Time since diagnosis ({unit_word})")
        fig.align_ylabels([ax_a, ax_z, ax_n, ax_e])
        # as many legend columns as fit the figure width (long scenario names need fewer)
        for ncols in range(min(len(handles), 8 if w_mm >= 150 else 3), 0, -1):
            legend = fig.legend(
                handles=handles,
                labels=[h.get_label() if not isinstance(h, tuple) else "TKI stop" for h in handles],
                loc="outside upper center",
                ncols=ncols,
                handler_map={tuple: HandlerTuple(ndivide=None, pad=0.0)},
                handlelength=2.4,  # room for one stop triangle per scenario
            )
            fig.draw_without_rendering()
            if ncols == 1 or legend.get_window_extent().width <= 0.98 * fig.bbox.width:
                break
            legend.remove()
        _spread_labels(fig, mr_labels)
        if path_stem is not None:
            save_comparison(fig, path_stem, formats, results)
    return fig


def save_comparison(
    fig: Figure,
    path_stem: str | os.PathLike,
    formats: Sequence[str] = ("png", "pdf"),
    results: Sequence[RunResult] = (),
) -> list[str]:
    """Write ``<path_stem>.<fmt>`` for each format with provenance in the file metadata (the first
    run's), titled "cmlsim compare A vs B ...".

    Call inside :func:`sim.plots.style.use_style` so the font embedding settings apply.
    """
    from sim.plots.trajectory import save_figure

    title = f"cmlsim compare {' vs '.join(r.name for r in results)}".strip()
    return save_figure(fig, path_stem, formats, results[0] if results else None, title=title)


__all__ = [
    "KIND_COLORS",
    "SCENARIO_COLORS",
    "SCENARIO_STYLES",
    "plot_comparison",
    "save_comparison",
    "scenario_style",
]
