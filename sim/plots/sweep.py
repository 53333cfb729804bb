"""Sweep figures: sensitivity indices as bars, and a phase diagram of TFR over two parameters.

Each ``plot_*`` function builds the figure at print size in the package style
(:mod:`sim.plots.style`, no ``pyplot``) and, with ``path_stem``, writes ``<stem>.png``,
``<stem>.pdf`` and the plotted numbers as ``<stem>_data.csv`` beside them.

- :func:`plot_indices`: one row per parameter, sorted by influence. Sobol: total index S_T and
  first-order index S_1 with their confidence intervals (the gap between them is what the
  parameter does through interactions). Morris: μ* with its interval, and σ.
- :func:`plot_phase_diagram`: the probability of treatment-free remission m months after the stop
  (colour) over two swept parameters, in cells of the design (or the grid's own points), with the
  regions where most runs end in relapse, control (no relapse, leukemic cells remain) or cure (no
  relapse, fewer than one leukemic cell at the horizon) outlined and hatched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.patches import Patch, Rectangle

from sim.params import DAYS_PER_MONTH, DAYS_PER_YEAR
from sim.plots.style import OKABE_ITO, figsize, use_style
from sim.plots.trajectory import save_figure

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "FIGURES",
    "OUTCOME_STYLE",
    "phase_table",
    "plot_indices",
    "plot_phase_diagram",
    "render",
]

#: Figures of a sweep folder (``cmlsim plot`` draws them through :func:`render`).
FIGURES = ("indices", "phase")

#: Hatch and label of each outcome region (``sim.sweep.metrics.OUTCOME_CODES``).
OUTCOME_STYLE: dict[str, dict[str, str]] = {
    "relapse": {"hatch": "", "label": "relapse"},
    "control": {"hatch": "////", "label": "control"},
    "cure": {"hatch": "....", "label": "cure"},
    "no stop": {"hatch": "xxxx", "label": "never stopped"},
}
#: Colour of the region hatches, drawn over the probability colours.
_HATCH_COLOR = (1.0, 1.0, 1.0, 0.5)

_INDEX_COLORS = {
    "ST": OKABE_ITO["blue"],
    "S1": OKABE_ITO["orange"],
    "mu_star": OKABE_ITO["blue"],
    "sigma": OKABE_ITO["orange"],
}
_INDEX_LABELS = {"ST": "total, $S_T$", "S1": "first order, $S_1$", "mu_star": "μ*", "sigma": "σ"}


def _save(fig: Figure, path_stem, formats, data: pd.DataFrame) -> list[str]:
    written = save_figure(fig, path_stem, formats)
    csv = f"{os.fspath(path_stem)}_data.csv"
    data.to_csv(csv, index=False, na_rep="NaN")
    return [*written, csv]


def _new_figure(kind: str, width, height_mm: float) -> Figure:
    fig = Figure(figsize=figsize(width, height_mm, journal=kind))
    FigureCanvasAgg(fig)
    return fig


# ---------------------------------------------------------------------------------------------
# index bars


def plot_indices(
    table: pd.DataFrame,
    path_stem: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    *,
    output: str | None = None,
    labels: dict[str, str] | None = None,
    kind: str = "nature",
    width: str | float = "single",
    height_mm: float | None = None,
) -> Figure:
    """Sensitivity indices of one output as horizontal bars, most influential parameter on top.

    Parameters
    ----------
    table : DataFrame
        :func:`sim.sensitivity.analyze` (or the table of :func:`~sim.sensitivity.sobol_indices`
        / :func:`~sim.sensitivity.morris_indices` with an ``output`` column).
    path_stem : path, optional
        Write ``<stem>.<fmt>`` and ``<stem>_data.csv`` (the rows drawn).
    output : str, optional
        Which output (default: the first in the table).
    labels : dict, optional
        Display names of the parameters (default: their names).
    kind, width, height_mm
        Style and size (:func:`sim.plots.style.use_style`, :func:`~sim.plots.style.figsize`);
        the height defaults to room for the labels plus a row per parameter (6 mm in the
        journal styles).
    """
    output = str(table["output"].iloc[0]) if output is None else output
    rows = table[table["output"] == output]
    if rows.empty:
        raise ValueError(f"no indices of {output!r} in the table")
    method = str(rows["method"].iloc[0])
    pair = ("ST", "S1") if method == "sobol" else ("mu_star", "sigma")
    main = rows[rows["index"] == pair[0]].sort_values("value", ascending=True)
    params = main["parameter"].tolist()
    labels = labels or {}
    n = len(params)
    with use_style(kind):
        import matplotlib as mpl
        from matplotlib.font_manager import FontProperties

        pt = FontProperties(size=mpl.rcParams["ytick.labelsize"]).get_size_in_points()
        text_mm = pt * 25.4 / 72.0  # one line of tick labels
        row_mm = max(6.0, 2.6 * text_mm)
        fig = _new_figure(kind, width, height_mm or 14.0 + 4.0 * text_mm + row_mm * n)
        ax = fig.add_subplot()
        y = np.arange(n, dtype=float)
        h = 0.38
        for j, idx in enumerate(pair):
            sel = rows[rows["index"] == idx].set_index("parameter").loc[params]
            v = sel["value"].to_numpy(float)
            conf = sel["conf"].to_numpy(float)
            err = None if np.isnan(conf).all() else np.vstack([conf, conf])
            ax.barh(
                y + (h / 2 if j == 0 else -h / 2),
                v,
                height=h,
                color=_INDEX_COLORS[idx],
                xerr=err,
                error_kw={"elinewidth": 0.6, "capsize": 1.2, "capthick": 0.6},
                label=_INDEX_LABELS[idx],
            )
        ax.set_yticks(y, [labels.get(p, p) for p in params])
        ax.tick_params(axis="y", length=0)
        ax.axvline(0.0, color="0.3", linewidth=0.5)
        hi = float(np.nanmax(rows[rows["index"].isin(pair)]["ci_high"].to_numpy(float)))
        lo = float(np.nanmin(rows[rows["index"].isin(pair)]["ci_low"].to_numpy(float)))
        if method == "sobol":
            ax.set_xlim(min(0.0, lo) - 0.02, max(hi, 0.1) * 1.08)
            ax.set_xlabel(f"Sobol index of {output} (fraction of variance)")
        else:
            ax.set_xlim(min(0.0, lo), max(hi, 1e-12) * 1.08)
            ax.set_xlabel(f"Morris elementary effects of {output} (units of {output})")
        ax.set_ylim(-0.6, n - 0.4)
        ax.legend(loc="lower right")
        if path_stem is not None:
            shown = rows[rows["index"].isin(pair)].copy()
            _save(fig, path_stem, formats, shown)
    return fig


# ---------------------------------------------------------------------------------------------
# phase diagram


def _edges(values: np.ndarray, low: float, high: float, scale: str, bins: int) -> np.ndarray:
    """Cell edges along one axis: the grid's own points when there are few distinct values,
    else ``bins`` equal cells (in the logarithm for a log scale)."""
    distinct = np.unique(values)
    if distinct.size <= bins:
        if distinct.size == 1:
            return (
                np.array([distinct[0] * 0.9, distinct[0] * 1.1])
                if scale == "log"
                else (np.array([distinct[0] - 0.5, distinct[0] + 0.5]))
            )
        if scale == "log":
            mid = np.sqrt(distinct[1:] * distinct[:-1])
            first = distinct[0] ** 2 / mid[0]
            last = distinct[-1] ** 2 / mid[-1]
        else:
            mid = 0.5 * (distinct[1:] + distinct[:-1])
            first = 2 * distinct[0] - mid[0]
            last = 2 * distinct[-1] - mid[-1]
        return np.concatenate([[first], mid, [last]])
    if scale == "log":
        return np.geomspace(low, high, bins + 1)
    return np.linspace(low, high, bins + 1)


def phase_table(
    ds: xr.Dataset, x: str, y: str, output: str = "tfr_24mo", bins: int | None = None
) -> pd.DataFrame:
    """The phase diagram's numbers: one row per cell of two swept parameters.

    Parameters
    ----------
    ds : xarray.Dataset
        :func:`sim.sweep.load_sweep`.
    x, y : str
        Parameter coordinate names.
    output : str
        A TFR indicator (``tfr_12mo``, ``tfr_24mo``, ``tfr_60mo``).
    bins : int, optional
        Cells per axis (default: from the number of runs, 4 to 20; a grid's own points when it
        has fewer distinct values).

    Returns
    -------
    DataFrame
        ``x_low, x_high, y_low, y_high, runs, tfr_runs`` (runs with a defined TFR value),
        ``p_tfr`` (fraction of those in TFR), the fraction of runs per outcome
        (``relapse, control, cure, no_stop``) and ``region`` (the most frequent outcome).
    """
    from sim.sweep.metrics import OUTCOME_CODES

    outcome = ds["outcome"]
    xv = ds[x].values
    yv = ds[y].values
    done = ds["status"].values == 1
    tfr = outcome.sel(metric=output).values
    code = outcome.sel(metric="outcome_class").values
    n = int(done.sum())
    bins = bins or int(np.clip(np.sqrt(max(n, 1) / 25.0), 4, 20))
    ex = _edges(xv, ds[x].attrs["low"], ds[x].attrs["high"], ds[x].attrs["scale"], bins)
    ey = _edges(yv, ds[y].attrs["low"], ds[y].attrs["high"], ds[y].attrs["scale"], bins)
    ix = np.clip(np.searchsorted(ex, xv, side="right") - 1, 0, ex.size - 2)
    iy = np.clip(np.searchsorted(ey, yv, side="right") - 1, 0, ey.size - 2)
    rows = []
    names = list(OUTCOME_CODES)
    for i in range(ex.size - 1):
        for j in range(ey.size - 1):
            sel = done & (ix == i) & (iy == j)
            t = tfr[sel]
            t = t[np.isfinite(t)]
            c = code[sel]
            frac = {
                k: float((c == v).mean()) if c.size else np.nan for k, v in OUTCOME_CODES.items()
            }
            region = names[int(np.argmax([frac[k] for k in names]))] if c.size else ""
            rows.append(
                {
                    "x_low": ex[i],
                    "x_high": ex[i + 1],
                    "y_low": ey[j],
                    "y_high": ey[j + 1],
                    "runs": int(sel.sum()),
                    "tfr_runs": int(t.size),
                    "p_tfr": float(t.mean()) if t.size else np.nan,
                    **{k.replace(" ", "_"): frac[k] for k in names},
                    "region": region,
                }
            )
    return pd.DataFrame(rows)


#: Axis names of sweep parameters outside the model's parameter table, by the last part of their
#: path (``protocol.stop.at``, ``intervention.<name>.dose``, ...).
_PATH_NAMES = {
    "protocol.stop.at": "TKI stop",
    "dose": "dose",
    "start": "start",
    "duration": "duration",
    "every": "dosing interval",
}


def _axis_name(ds: xr.Dataset, name: str) -> str:
    """What a swept parameter is, in words: the first clause of the model's meaning for a
    patient parameter, else from its path (an intervention's name and field)."""
    from sim import models

    path = str(ds[name].attrs.get("path", name))
    if path.startswith("patient."):
        try:
            meaning = models.get(ds.attrs["model"]).params[path.removeprefix("patient.")].meaning
        except (KeyError, ValueError):
            meaning = ""
        words = meaning.split(";")[0].split(" (")[0].strip()
        if words:
            return words[0].upper() + words[1:]
    if path in _PATH_NAMES:
        return _PATH_NAMES[path]
    parts = path.split(".")
    if parts[0] == "intervention" and len(parts) == 3:
        return f"{parts[1]} {_PATH_NAMES.get(parts[2], parts[2])}"
    return "Patient parameter" if parts[0] == "patient" else "Parameter"


def _axis_unit(ds: xr.Dataset, name: str) -> tuple[float, str]:
    """Display scale and label of a parameter axis: its name in words, its symbol and its unit
    (times in months or years), on two lines when long."""
    attrs = ds[name].attrs
    unit = attrs.get("units", "")
    scale = 1.0
    if unit == "day":
        span = float(attrs["high"]) - float(attrs["low"])
        scale, unit = (
            (1.0 / DAYS_PER_YEAR, "years")
            if span >= 3 * DAYS_PER_YEAR
            else (1.0 / DAYS_PER_MONTH, "months")
        )
    unit = unit if unit and unit != "1" else "dimensionless"
    words = _axis_name(ds, name)
    sep = "\n" if len(words) + len(name) + len(unit) > 40 else " "
    return scale, f"{words}{sep}{name} ({unit})"


def _plain_log_ticks(axis) -> None:
    """Label a log axis spanning less than three decades at 1, 2 and 5 times each power of ten,
    as plain numbers where they are short (20, not 2×10¹)."""
    low, high = sorted(axis.get_view_interval())
    if not (low > 0 and high / low < 1e3):
        return

    def label(v: float, _pos: int) -> str:
        if 1e-2 <= abs(v) < 1e4:
            return f"{v:g}"
        exp = int(np.floor(np.log10(abs(v))))
        mant = v / 10.0**exp
        head = "" if round(mant, 6) == 1 else f"{mant:g}×"
        return f"${head}10^{{{exp}}}$"

    axis.set_major_locator(ticker.LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(label))
    axis.set_minor_formatter(ticker.NullFormatter())


def plot_phase_diagram(
    ds: xr.Dataset,
    x: str,
    y: str,
    path_stem: str | os.PathLike | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    *,
    output: str = "tfr_24mo",
    bins: int | None = None,
    kind: str = "nature",
    width: str | float = "single",
    height_mm: float | None = None,
) -> Figure:
    """Probability of treatment-free remission over two parameters, with the outcome regions.

    Parameters
    ----------
    ds : xarray.Dataset
        :func:`sim.sweep.load_sweep`.
    x, y : str
        Parameter coordinate names (axes).
    path_stem : path, optional
        Write ``<stem>.<fmt>`` and ``<stem>_data.csv`` (:func:`phase_table`).
    output : str
        The TFR indicator shown (``tfr_24mo``: in remission 24 months after the stop).
    bins : int, optional
        Cells per axis (:func:`phase_table`).
    kind, width, height_mm
        Style and size; the height defaults to 80 mm.

    Notes
    -----
    Each cell pools the runs whose two parameters fall in it, whatever the other parameters
    are: its colour is the fraction of them in TFR, among runs whose TFR at that time is known
    (censored runs are left out), and its region the most frequent outcome. Cells without runs
    are white.
    """
    tab = phase_table(ds, x, y, output, bins)
    months = output.removeprefix("tfr_").removesuffix("mo")
    sx, lx = _axis_unit(ds, x)
    sy, ly = _axis_unit(ds, y)
    ex = np.unique(np.concatenate([tab["x_low"], tab["x_high"]]))
    ey = np.unique(np.concatenate([tab["y_low"], tab["y_high"]]))
    nx, ny = ex.size - 1, ey.size - 1
    P = tab["p_tfr"].to_numpy(float).reshape(nx, ny)
    region = tab["region"].to_numpy(object).reshape(nx, ny)
    import matplotlib as mpl

    with use_style(kind), mpl.rc_context({"hatch.linewidth": 0.5}):
        fig = _new_figure(kind, width, height_mm or 80.0)
        ax = fig.add_subplot()
        mesh = ax.pcolormesh(
            ex * sx, ey * sy, np.ma.masked_invalid(P).T, vmin=0.0, vmax=1.0, shading="flat"
        )
        cb = fig.colorbar(mesh, ax=ax, pad=0.02, fraction=0.06)
        cb.set_label(f"Probability of TFR {months} months\nafter the stop (%)")
        cb.ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
        present = []
        for name, style in OUTCOME_STYLE.items():
            cells = np.argwhere(region == name)
            if cells.size == 0:
                continue
            present.append(name)
            if not style["hatch"]:
                continue
            for i, j in cells:
                ax.add_patch(
                    Rectangle(
                        (ex[i] * sx, ey[j] * sy),
                        (ex[i + 1] - ex[i]) * sx,
                        (ey[j + 1] - ey[j]) * sy,
                        fill=False,
                        hatch=style["hatch"],
                        edgecolor=_HATCH_COLOR,
                        linewidth=0,
                    )
                )
        segs = []
        for i in range(nx):
            for j in range(ny):
                if i + 1 < nx and region[i, j] != region[i + 1, j]:
                    segs.append([(ex[i + 1] * sx, ey[j] * sy), (ex[i + 1] * sx, ey[j + 1] * sy)])
                if j + 1 < ny and region[i, j] != region[i, j + 1]:
                    segs.append([(ex[i] * sx, ey[j + 1] * sy), (ex[i + 1] * sx, ey[j + 1] * sy)])
        if segs:
            ax.add_collection(LineCollection(segs, colors="black", linewidths=0.9))
        if ds[x].attrs.get("scale") == "log":
            ax.set_xscale("log")
        if ds[y].attrs.get("scale") == "log":
            ax.set_yscale("log")
        ax.set_xlim(ex[0] * sx, ex[-1] * sx)
        ax.set_ylim(ey[0] * sy, ey[-1] * sy)
        for axis, scale in (
            (ax.xaxis, ds[x].attrs.get("scale")),
            (ax.yaxis, ds[y].attrs.get("scale")),
        ):
            if scale == "log":
                _plain_log_ticks(axis)
        ax.set_xlabel(lx)
        ax.set_ylabel(ly)
        # each swatch: the colour of the region's median cell, its hatch, the boundary colour
        handles = []
        for name in present:
            p = np.sort(P[(region == name) & np.isfinite(P)])
            face = mesh.to_rgba(p[p.size // 2]) if p.size else "none"
            handles.append(
                (
                    Patch(facecolor=face, edgecolor="black", linewidth=0.6 if segs else 0),
                    Patch(
                        fill=False,
                        hatch=OUTCOME_STYLE[name]["hatch"],
                        edgecolor=_HATCH_COLOR,
                        linewidth=0,
                    ),
                )
            )
        ax.legend(
            handles=handles,
            labels=[OUTCOME_STYLE[name]["label"] for name in present],
            handler_map={tuple: HandlerTuple(ndivide=1)},
            loc="lower left",
            bbox_to_anchor=(0.0, 1.01),
            ncols=4,
            title="region: most runs end in",
            alignment="left",
            borderaxespad=0.0,
        )
        for sp in ("top", "right"):
            ax.spines[sp].set_visible(True)
        if path_stem is not None:
            data = tab.copy()
            for c in ("x_low", "x_high"):
                data[c] = data[c].astype(float)
            data.insert(0, "y", y)
            data.insert(0, "x", x)
            data.insert(0, "output", output)
            _save(fig, path_stem, formats, data)
    return fig


def render(
    store: str | os.PathLike,
    out_dir: str | os.PathLike,
    figures: Sequence[str] | None = None,
    style: str = "nature",
    formats: Sequence[str] = ("png", "pdf"),
    *,
    ds: xr.Dataset | None = None,
    table: pd.DataFrame | None = None,
) -> list[str]:
    """Draw a stored sweep's figures (:data:`FIGURES`) into ``out_dir``; the files written.

    ``indices`` needs a Sobol or Morris design whose first output has indices; ``phase`` two
    swept parameters (the sweep's ``phase``, else the two most influential). A figure the sweep
    cannot support is left out. ``ds`` and ``table`` (:func:`sim.sweep.load_sweep`,
    :func:`sim.sensitivity.analyze`) save reading and analysing the store again.
    """
    from pathlib import Path

    from sim import sensitivity
    from sim.sweep.store import load_sweep

    if ds is None:
        ds = load_sweep(store)
        table, _ = sensitivity.analyze(ds)
    out = Path(out_dir)
    written: list[str] = []
    wanted = tuple(figures) if figures else FIGURES
    if "indices" in wanted and table is not None and len(table):
        plot_indices(table, out / "indices", formats, kind=style)
        written += [f"{out / 'indices'}.{f}" for f in formats] + [f"{out / 'indices'}_data.csv"]
    axes = sensitivity.phase_axes(ds, table)
    if "phase" in wanted and axes is not None:
        plot_phase_diagram(ds, *axes, out / "phase", formats, kind=style)
        written += [f"{out / 'phase'}.{f}" for f in formats] + [f"{out / 'phase'}_data.csv"]
    return written
