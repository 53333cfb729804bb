"""Figures from a results folder: what ``cmlsim plot RESULT_DIR`` draws.

The folder's contents say what it holds:

==========  ==========================================  ==========================================
folder      recognised by                               figures
==========  ==========================================  ==========================================
run         ``trajectory.nc`` (``cmlsim run``)          kinetics, immune, trajectory
compare     ``figure_data.csv`` + ``figure_bars.csv``   comparison
            (``cmlsim compare``)
cohort      ``outcomes.csv`` (``cmlsim cohort``)        km, swimmer, roc
sweep       a Zarr store (``zarr.json`` or ``.zgroup``  phase, indices (:mod:`sim.plots.sweep`,
            in it or in a ``*.zarr`` child)             when the sweep modules are installed)
==========  ==========================================  ==========================================

A comparison is redrawn from the numbers its figure showed (``figure_data.csv`` and
``figure_bars.csv``), so no scenario is re-run. Each figure is written as ``<figure>.<fmt>`` with
its numbers as ``<figure>_data.csv`` (and further ``<figure>_<table>.csv``) beside it.

Bad input (no such folder, a folder of no known kind, an unknown figure or style) raises
:class:`PlotError` with one message that says what was found and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from sim.results import RunResult

#: Figures drawn for each kind of results folder (sweeps: :data:`SWEEP_FIGURES`).
FIGURES: dict[str, tuple[str, ...]] = {
    "run": ("kinetics", "immune", "trajectory"),
    "compare": ("comparison",),
    "cohort": ("km", "swimmer", "roc"),
}

#: Figure formats matplotlib writes with embedded, editable text.
FORMATS = ("pdf", "svg", "png")


class PlotError(ValueError):
    """Bad input to :func:`render`: the message is meant for the user as it is."""


@dataclass
class Rendered:
    """What :func:`render` did: files written per figure, the figures themselves (to restyle or
    check) and the figures it could not draw, with the reason."""

    folder_kind: str
    written: dict[str, list[str]] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _is_zarr(path: Path) -> bool:
    return (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


def sweep_store(folder: Path) -> Path | None:
    """The Zarr store of a sweep folder: the folder itself or its one ``*.zarr`` child."""
    if _is_zarr(folder):
        return folder
    stores = sorted(p for p in folder.glob("*.zarr") if p.is_dir() and _is_zarr(p))
    return stores[0] if stores else None


def detect_kind(folder: str | os.PathLike) -> str:
    """Kind of a results folder: "run", "compare", "cohort" or "sweep" (module docstring).

    Raises
    ------
    PlotError
        The folder does not exist or holds none of the known results.
    """
    path = Path(folder)
    if not path.exists():
        raise PlotError(
            f"{path}: no such folder (expected a folder written by cmlsim run, compare, cohort "
            "or sweep)"
        )
    if not path.is_dir():
        raise PlotError(f"{path}: is a file, expected a results folder")
    if (path / "trajectory.nc").is_file():
        return "run"
    if (path / "figure_data.csv").is_file() and (path / "figure_bars.csv").is_file():
        return "compare"
    if (path / "outcomes.csv").is_file():
        return "cohort"
    if sweep_store(path) is not None:
        return "sweep"
    found = sorted(p.name for p in path.iterdir())[:8]
    raise PlotError(
        f"{path}: not a results folder: found {', '.join(found) if found else 'nothing'}; "
        "expected trajectory.nc (cmlsim run), figure_data.csv and figure_bars.csv "
        "(cmlsim compare), outcomes.csv (cmlsim cohort) or a Zarr store (cmlsim sweep)"
    )


#: Figures of a sweep folder: the phase diagram (:func:`sim.plots.sweep.plot_phase_diagram`) and
#: the sensitivity indices as bars (:func:`sim.plots.sweep.plot_indices`).
SWEEP_FIGURES = ("phase", "indices")


def _sweep_available() -> bool:
    try:
        import sim.sensitivity
        import sim.sweep
        from sim.plots import sweep
    except ImportError:
        return False
    return all(
        hasattr(mod, name)
        for mod, name in (
            (sweep, "plot_phase_diagram"),
            (sweep, "plot_indices"),
            (sim.sweep, "load_sweep"),
            (sim.sensitivity, "analyze"),
            (sim.sensitivity, "phase_axes"),
        )
    )


def figures_for(folder_kind: str) -> tuple[str, ...]:
    """Figure names available for a kind of folder (none for sweeps without the sweep
    modules)."""
    if folder_kind == "sweep":
        return SWEEP_FIGURES if _sweep_available() else ()
    return FIGURES[folder_kind]


def check_style(style: str) -> str:
    """``style`` if it is a package style, else :class:`PlotError` naming the known ones."""
    from sim.plots.style import KINDS

    if style not in KINDS:
        from sim.params import did_you_mean

        raise PlotError(
            f"unknown style {style!r}{did_you_mean(style, KINDS)}; expected one of "
            f"{', '.join(KINDS)}"
        )
    return style


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """Formats as a tuple, or :class:`PlotError` for one that is not pdf, svg or png."""
    out = []
    for fmt in formats:
        fmt = fmt.lower().lstrip(".")
        if fmt not in FORMATS:
            raise PlotError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        if fmt not in out:
            out.append(fmt)
    if not out:
        raise PlotError(f"no format given; expected one or more of {', '.join(FORMATS)}")
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# reading a folder


def load_run_result(folder: Path) -> RunResult:
    """The run stored in a ``cmlsim run`` folder (:func:`sim.results.from_dataset`)."""
    from sim.results import from_dataset, load_run

    return from_dataset(load_run(folder))


_BCR = ".bcr_abl_pct"


def comparison_from_folder(folder: Path) -> tuple[list[RunResult], list[str]]:
    """The runs of a ``cmlsim compare`` folder, rebuilt from the numbers its figure showed.

    ``figure_data.csv`` gives each scenario's BCR-ABL1, Z, N and E on its own output grid;
    ``figure_bars.csv`` its TKI periods and given interventions. Other states are NaN, the
    visits are empty and the drive is zero: everything :func:`sim.plots.compare.plot_comparison`
    draws is there, TKI stops included (a TKI period that ends before the end of the run).

    Returns
    -------
    (list of RunResult, list of str)
        The runs and their labels, in column order.
    """
    import tomllib

    import pandas as pd

    from sim import models
    from sim.results import RunResult
    from sim.therapy import drive as _drive

    data = pd.read_csv(folder / "figure_data.csv", na_values=["NaN"])
    bars = pd.read_csv(folder / "figure_bars.csv", na_values=["NaN"])
    labels = [c[: -len(_BCR)] for c in data.columns if c.endswith(_BCR)]
    if not labels or "time_days" not in data:
        raise PlotError(
            f"{folder / 'figure_data.csv'}: expected a time_days column and one "
            f"<label>{_BCR} column per scenario, found {', '.join(data.columns[:6])}"
        )
    results = []
    for label in labels:
        model_name = "cml_immune"
        toml = folder / f"{label}.toml"
        if toml.is_file():
            try:
                model_name = tomllib.loads(toml.read_text("utf-8"))["scenario"]["model"]
            except (tomllib.TOMLDecodeError, KeyError, TypeError):
                pass
        model = models.get(model_name)
        rows = data[np.isfinite(data[label + _BCR].to_numpy(np.float64))]
        t = rows["time_days"].to_numpy(np.float64)
        y = np.full((len(t), model.n_state), np.nan)
        for i, state in enumerate(model.states):
            cols = [c for c in data.columns if c.startswith(f"{label}.{state}_")]
            if cols:
                y[:, i] = rows[cols[0]].to_numpy(np.float64)
        mine = bars[bars["label"] == label]
        tki = mine[mine["kind"] == "tki"]
        ivs = mine[mine["kind"] != "tki"]
        results.append(
            RunResult(
                name=label,
                model=model,
                params=np.full(len(model.params), np.nan),
                t=t,
                y=y,
                bcr_abl=rows[label + _BCR].to_numpy(np.float64),
                drive=np.zeros((len(t), _drive.N_DRIVE)),
                visits={},
                summary={},
                tki_periods=[
                    (float(r.start_days), float(r.end_days), float(r.dose_fraction))
                    for r in tki.itertuples()
                ],
                stats={},
                provenance={},
                interventions=[
                    {
                        "name": r.name,
                        "kind": r.kind,
                        "start": float(r.start_days),
                        "last_dose": float(r.end_days),
                        "every": 0.0,
                        "given": True,
                        "doses": int(r.doses) if np.isfinite(r.doses) else 1,
                    }
                    for r in ivs.itertuples()
                ],
            )
        )
    return results, labels


def cohort_table(folder: Path) -> pd.DataFrame:
    """The outcome table of a ``cmlsim cohort`` folder (``outcomes.csv``, as
    :func:`sim.cohort.load_cohort` reads it, without loading ``cohort.nc``)."""
    import pandas as pd

    return pd.read_csv(folder / "outcomes.csv", na_values=["NaN"])


# ---------------------------------------------------------------------------------------------
# drawing


def _draw_run(name: str, result: RunResult, stem: Path, style: str, formats) -> Figure:
    from sim.plots.immune import immune_data, plot_immune
    from sim.plots.kinetics import kinetics_data, plot_kinetics
    from sim.plots.style import use_style
    from sim.plots.trajectory import plot_trajectory, save_with_data

    if name == "kinetics":
        return plot_kinetics(result, stem, formats, kind=style)
    if name == "immune":
        return plot_immune(result, stem, formats, kind=style)
    with use_style(style):
        fig = plot_trajectory(result, kind=style)
        data = {**kinetics_data(result), "immune": immune_data(result)}
        save_with_data(fig, stem, formats, data, result)
    return fig


def written_files(stem: Path, formats: Sequence[str]) -> list[str]:
    """The figure files and CSV tables that exist for ``stem``."""
    figs = [f"{stem}.{fmt}" for fmt in formats if Path(f"{stem}.{fmt}").is_file()]
    return figs + sorted(str(p) for p in stem.parent.glob(f"{stem.name}_*.csv"))


def _draw_comparison(results, labels, stem: Path, style: str, formats) -> Figure:
    from sim.compare import bar_data, figure_data
    from sim.plots.compare import plot_comparison
    from sim.plots.style import use_style
    from sim.plots.trajectory import save_with_data

    with use_style(style):
        fig = plot_comparison(results, labels=labels, kind=style)
        data = {"data": figure_data(results, labels), "bars": bar_data(results, labels)}
        title = f"cmlsim compare {' vs '.join(labels)}"
        save_with_data(fig, stem, formats, data, title=title)
    return fig


def _draw_cohort(name: str, table: pd.DataFrame, stem: Path, style: str, formats) -> Figure:
    from sim import outcomes
    from sim.plots import cohort as cohort_plots

    stopped = outcomes.stopped(table)
    if stopped.empty:
        raise PlotError("no eligible patient stopped TKI: no follow-up to draw")
    if name == "km":
        return cohort_plots.plot_km(table, stem, formats, kind=style)
    if name == "swimmer":
        return cohort_plots.plot_swimmer(table, stem, formats, kind=style)
    event = stopped["event"].astype(bool)
    if event.all() or not event.any():
        raise PlotError("the stopped patients all relapsed or none did: no ROC curve")
    return cohort_plots.plot_roc(table, stem, formats, kind=style, outcome="event")


def _load_sweep(folder: Path) -> tuple:
    """(dataset, indices table or None, notes) of a sweep folder."""
    from sim import sensitivity
    from sim.sweep import load_sweep

    ds = load_sweep(folder)
    table, notes = sensitivity.analyze(ds)
    return ds, table, notes


def _draw_sweep(name: str, sweep: tuple, stem: Path, style: str, formats) -> Figure:
    from sim import sensitivity
    from sim.plots import sweep as sweep_plots

    ds, table, notes = sweep
    if name == "indices":
        if table is None:
            raise PlotError(f"no sensitivity indices: {'; '.join(notes) or 'none computed'}")
        return sweep_plots.plot_indices(table, stem, formats, kind=style)
    axes = sensitivity.phase_axes(ds, table)
    if axes is None:
        raise PlotError("a phase diagram needs a sweep over at least two parameters")
    return sweep_plots.plot_phase_diagram(ds, *axes, stem, formats, kind=style)


def render(
    folder: str | os.PathLike,
    figures: Sequence[str] | None = None,
    *,
    style: str = "nature",
    formats: Sequence[str] = ("png", "pdf"),
    out: str | os.PathLike | None = None,
) -> Rendered:
    """Draw the figures of a results folder.

    Parameters
    ----------
    folder : path
        A folder written by ``cmlsim run``, ``compare``, ``cohort`` or ``sweep``.
    figures : sequence of str, optional
        Figure names (:data:`FIGURES`); default all for the folder's kind.
    style : {"nature", "blood", "poster"}
        Package style (:func:`sim.plots.style.use_style`).
    formats : sequence of {"pdf", "svg", "png"}
        Files to write per figure.
    out : path, optional
        Where to write; default ``<folder>/figures``.

    Returns
    -------
    Rendered
        Files written per figure; figures that the data cannot support (a cohort in which no one
        stopped, a ROC curve without both outcomes) are listed in ``skipped`` with the reason.

    Raises
    ------
    PlotError
        Bad input: see the module docstring.
    """
    path = Path(folder)
    kind = detect_kind(path)
    style = check_style(style)
    formats = check_formats(formats)
    available = figures_for(kind)
    if kind == "sweep" and not available:
        raise PlotError(
            f"{path}: a sweep store, but sweep figures need sim.sweep, sim.sensitivity and "
            "sim.plots.sweep, which this installation does not have"
        )
    wanted = tuple(figures) if figures else available
    for name in wanted:
        if name not in available:
            from sim.params import did_you_mean

            raise PlotError(
                f"{path}: unknown figure {name!r} for a {kind} folder"
                f"{did_you_mean(name, available)}; expected one of {', '.join(available)}"
            )
    try:
        if kind == "run":
            result = load_run_result(path)
        elif kind == "compare":
            results, labels = comparison_from_folder(path)
        elif kind == "cohort":
            table = cohort_table(path)
        else:
            sweep = _load_sweep(path)
    except PlotError:
        raise
    except (ValueError, KeyError, OSError) as exc:  # damaged or foreign files
        raise PlotError(f"{path}: cannot read the {kind} results: {exc}") from None
    out_dir = Path(out) if out is not None else path / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    done = Rendered(kind)
    for name in wanted:
        stem = out_dir / name
        try:
            if kind == "run":
                fig = _draw_run(name, result, stem, style, formats)
            elif kind == "compare":
                fig = _draw_comparison(results, labels, stem, style, formats)
            elif kind == "cohort":
                fig = _draw_cohort(name, table, stem, style, formats)
            else:
                fig = _draw_sweep(name, sweep, stem, style, formats)
        except PlotError as exc:
            if figures:  # asked for by name: an error, not a silent skip
                raise PlotError(f"{path}: {name}: {exc}") from None
            done.skipped[name] = str(exc)
            continue
        done.figures[name] = fig
        done.written[name] = written_files(stem, formats)
    return done


__all__ = [
    "FIGURES",
    "FORMATS",
    "PlotError",
    "Rendered",
    "comparison_from_folder",
    "detect_kind",
    "figures_for",
    "render",
]
