"""Every figure type of the package, drawn from the shipped scenarios: ``cmlsim gallery``.

The gallery runs small versions of the shipped scenarios (one patient per scenario, a cohort of a
few hundred patients) and writes each figure type with its source data into one folder, plus
``index.md`` (what each figure shows, from which scenario, its files, how long it took, whether
any two texts overlap and whether a text is cut off at the edge) so that a figure for a grant or
a paper starts from a working example. Sizes are small so that the whole gallery takes well under
two minutes once numba's cache is warm.

==============  ============================================  ===================================
figure          what it shows                                 source
==============  ============================================  ===================================
kinetics        BCR-ABL1 (log), MR lines, qPCR with detection  ``ifn-after-stop-12mo``
                limit, TKI and interferon bars, TKI stop
immune          T cells, NK cells, exhaustion, therapy drive  ``ifn-after-stop-12mo``
trajectory      kinetics and immune state in one figure       ``imatinib-eln-stop``
comparison      interventions before or after the stop,       ``baseline-eln-stop`` and three
                one patient, common random numbers            intervention scenarios
km              Kaplan–Meier TFR with numbers at risk         ``cohort-euro-ski`` (small)
swimmer         sample patients: TKI, stop, relapse, restart  ``cohort-euro-ski`` (small)
roc             biomarkers at the stop: ROC curves and AUC    ``cohort-euro-ski`` (small)
phase           probability of TFR over two parameters        ``sweep-sobol-tfr`` (small)
indices         Sobol sensitivity indices                     ``sweep-sobol-tfr`` (small)
cure            probability of cure against the cell scale    default patient, stop at 5 years
==============  ============================================  ===================================

The sweep figures (``phase``: probability of TFR over two parameters with the outcome regions;
``indices``: Sobol sensitivity indices as bars) come from a small version of ``sweep-sobol-tfr``
(:data:`SWEEP_N` base samples, run serially, drawn by :func:`sim.plots.render.render`) and the
``cure`` figure (probability of cure against the cell scale, :mod:`sim.plots.cure`) from
:data:`CURE_N` patients per point; these steps are guarded: when their modules are missing or
fail, the gallery lists the figure types as skipped, with the reason, and draws the rest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The shipped scenarios folder (a checkout's ``scenarios/``).
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

#: The scenarios of the comparison figure: one patient, interventions before or after the stop.
COMPARISON = (
    "baseline-eln-stop",
    "ifn-after-stop-12mo",
    "checkpoint-at-first-rise",
    "checkpoint-first-6mo",
)

#: Default size of the gallery's cohort (the shipped scenario has 10,000 patients).
COHORT_SIZE = 300

#: Base samples of the gallery's Sobol sweep (the shipped scenario has 1024).
SWEEP_N = 16

#: Patients per point and cell scales of the gallery's cure figure.
CURE_N = 20
CURE_SCALES = (3e-5, 1e-4, 3e-4, 1e-3)


@dataclass
class Entry:
    """One figure of the gallery.

    Attributes
    ----------
    name : str
        Figure type (file stem).
    what : str
        One line on what it shows.
    source : str
        Scenario(s) it was drawn from.
    files : list of str
        Figure files and CSV tables written.
    seconds : float
        Time to simulate (shared simulations are counted once, with the first figure) and draw.
    overlaps : int
        Pairs of overlapping texts (:func:`sim.plots.trajectory.check_no_overlap`).
    clipped : int
        Texts that reach beyond the figure's edges
        (:func:`sim.plots.trajectory.check_text_inside`).
    figure : matplotlib.figure.Figure or None
        The figure drawn (kept for checks of the drawn artists; not written to ``index.md``).
    """

    name: str
    what: str
    source: str
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0
    overlaps: int = 0
    clipped: int = 0
    figure: Any = field(default=None, repr=False, compare=False)


@dataclass
class Gallery:
    """The figures written and the figure types skipped (with the reason)."""

    out: Path
    entries: list[Entry] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _scenario(name: str):
    from sim.scenario import load

    return load(SCENARIOS / f"{name}.toml")


def _add(gallery: Gallery, entry: Entry, fig, files: list[str], t0: float) -> None:
    from sim.plots.trajectory import text_problems

    entry.files = [str(Path(f).relative_to(gallery.out)) for f in files]
    overlaps, clipped = text_problems(fig)
    entry.overlaps, entry.clipped = len(overlaps), len(clipped)
    entry.seconds = time.perf_counter() - t0
    entry.figure = fig
    gallery.entries.append(entry)


def _single_patient(g: Gallery, style: str, formats: Sequence[str]) -> None:
    from sim.plots.immune import immune_data, plot_immune
    from sim.plots.kinetics import kinetics_data, plot_kinetics
    from sim.plots.render import written_files
    from sim.plots.style import use_style
    from sim.plots.trajectory import plot_trajectory, save_with_data
    from sim.run import run_scenario

    t0 = time.perf_counter()
    ifn = run_scenario(_scenario("ifn-after-stop-12mo"))
    stem = g.out / "kinetics"
    fig = plot_kinetics(ifn, stem, formats, kind=style)
    what = "BCR-ABL1 kinetics: MR lines, qPCR with detection limit, TKI and interferon bars"
    _add(g, Entry("kinetics", what, "ifn-after-stop-12mo"), fig, written_files(stem, formats), t0)

    t0 = time.perf_counter()
    stem = g.out / "immune"
    fig = plot_immune(ifn, stem, formats, kind=style)
    what = "immune panels: effector T cells, NK cells, exhaustion, therapy drive"
    _add(g, Entry("immune", what, "ifn-after-stop-12mo"), fig, written_files(stem, formats), t0)

    t0 = time.perf_counter()
    eln = run_scenario(_scenario("imatinib-eln-stop"))
    stem = g.out / "trajectory"
    with use_style(style):
        fig = plot_trajectory(eln, kind=style)
        data = {**kinetics_data(eln), "immune": immune_data(eln)}
        files = save_with_data(fig, stem, formats, data, eln)
    what = "one patient in one figure: BCR-ABL1 with qPCR and the immune state"
    _add(g, Entry("trajectory", what, "imatinib-eln-stop"), fig, files, t0)


def _comparison(g: Gallery, style: str, formats: Sequence[str]) -> None:
    from sim.compare import bar_data, figure_data, run_comparison
    from sim.plots.compare import plot_comparison
    from sim.plots.style import use_style
    from sim.plots.trajectory import save_with_data

    t0 = time.perf_counter()
    cmp = run_comparison([_scenario(n) for n in COMPARISON])
    stem = g.out / "comparison"
    with use_style(style):
        fig = plot_comparison(cmp.results, labels=cmp.labels, kind=style)
        data = {
            "data": figure_data(cmp.results, cmp.labels),
            "bars": bar_data(cmp.results, cmp.labels),
        }
        files = save_with_data(fig, stem, formats, data, title="cmlsim gallery comparison")
    what = "interventions before or after the stop: one patient, common random numbers"
    _add(g, Entry("comparison", what, ", ".join(COMPARISON)), fig, files, t0)


def _cohort(g: Gallery, style: str, formats: Sequence[str], size: int) -> None:
    from sim import outcomes
    from sim.cohort import run_cohort
    from sim.plots import cohort as cohort_plots
    from sim.plots.render import written_files

    t0 = time.perf_counter()
    res = run_cohort(_scenario("cohort-euro-ski"), size=size)
    table = res.outcomes
    source = f"cohort-euro-ski, {size} patients"
    stopped = outcomes.stopped(table)
    if stopped.empty:
        for name in ("km", "swimmer", "roc"):
            g.skipped[name] = f"no patient of the {size} stopped TKI"
        return
    stem = g.out / "km"
    fig = cohort_plots.plot_km(table, stem, formats, kind=style)
    what = "Kaplan–Meier molecular relapse-free survival after the stop, numbers at risk"
    _add(g, Entry("km", what, source), fig, written_files(stem, formats), t0)

    t0 = time.perf_counter()
    stem = g.out / "swimmer"
    fig = cohort_plots.plot_swimmer(table, stem, formats, kind=style)
    what = "swimmer plot of sample patients: TKI, stop, time off TKI, relapse, restart"
    _add(g, Entry("swimmer", what, source), fig, written_files(stem, formats), t0)

    event = stopped["event"].astype(bool)
    if event.all() or not event.any():
        g.skipped["roc"] = "the stopped patients all relapsed or none did"
        return
    t0 = time.perf_counter()
    stem = g.out / "roc"
    fig = cohort_plots.plot_roc(table, stem, formats, kind=style, outcome="event")
    what = "biomarkers at the stop: ROC curves for relapse with AUC (DeLong 95 % CI)"
    _add(g, Entry("roc", what, source), fig, written_files(stem, formats), t0)


def _sweep(g: Gallery, style: str, formats: Sequence[str]) -> None:
    import dataclasses
    import tempfile

    from sim.plots.render import figures_for, render

    if not figures_for("sweep"):
        for name in ("phase", "indices"):
            g.skipped[name] = "the sweep modules (sim.sweep, sim.plots.sweep) are not available"
        return
    from sim.sweep import run_sweep

    t0 = time.perf_counter()
    sc = _scenario("sweep-sobol-tfr")
    sc = dataclasses.replace(sc, sweep=dataclasses.replace(sc.sweep, n=SWEEP_N))
    with tempfile.TemporaryDirectory(prefix="cmlsim-gallery-sweep-") as tmp:
        run = run_sweep(sc, results_root=tmp, executor="serial", analysis=False, figures=False)
        done = render(run.path, style=style, formats=formats, out=g.out)
    source = f"sweep-sobol-tfr, Sobol n = {SWEEP_N} ({run.n} runs)"
    what = {
        "phase": "phase diagram: probability of TFR over two parameters, outcome regions",
        "indices": "Sobol sensitivity indices (total and first order) as bars",
    }
    for name, fig in done.figures.items():
        _add(g, Entry(name, what.get(name, name), source), fig, done.written[name], t0)
        t0 = time.perf_counter()
    g.skipped.update(done.skipped)


def _cure(g: Gallery, style: str, formats: Sequence[str]) -> None:
    from sim.plots.cure import cure_vs_scale, plot_cure
    from sim.plots.render import written_files

    t0 = time.perf_counter()
    table = cure_vs_scale(scales=CURE_SCALES, n=CURE_N)
    stem = g.out / "cure"
    fig = plot_cure(table, stem, formats, kind=style)
    files = [*written_files(stem, formats), f"{stem}.csv"]
    what = "probability of cure against the cell scale: jump process and agent engine"
    source = f"default patient, stop at 5 years, {CURE_N} patients per point"
    _add(g, Entry("cure", what, source), fig, files, t0)


def make_gallery(
    out: str | os.PathLike = "results/gallery",
    *,
    style: str = "nature",
    formats: Sequence[str] = ("png", "pdf"),
    cohort_size: int = COHORT_SIZE,
    progress: Callable[[str], None] | None = None,
) -> Gallery:
    """Draw every figure type from the shipped scenarios into ``out``.

    Parameters
    ----------
    out : path
        Output folder (created; files of the same names are replaced).
    style : {"nature", "blood", "poster"}
        Package style.
    formats : sequence of {"pdf", "svg", "png"}
        Files per figure (each also gets its CSV tables).
    cohort_size : int
        Patients of the gallery's cohort.
    progress : callable, optional
        Called with a short line after each step.

    Returns
    -------
    Gallery
        The entries written (``index.md`` lists them) and the figure types skipped.
    """
    from sim.plots.render import check_formats, check_style

    style = check_style(style)
    formats = check_formats(formats)
    if cohort_size < 1:
        raise ValueError(f"cohort size must be >= 1, got {cohort_size}")
    g = Gallery(Path(out))
    g.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # (label, step, figure types an error in a guarded step skips; None: not guarded)
    steps: list[tuple[str, Callable[[], None], tuple[str, ...] | None]] = [
        ("single patient", lambda: _single_patient(g, style, formats), None),
        ("comparison", lambda: _comparison(g, style, formats), None),
        ("cohort", lambda: _cohort(g, style, formats, cohort_size), None),
        ("sweep", lambda: _sweep(g, style, formats), ("phase", "indices")),
        ("cure", lambda: _cure(g, style, formats), ("cure",)),
    ]
    for label, step, guarded in steps:
        t0 = time.perf_counter()
        if guarded is None:
            step()
        else:
            try:  # figure types of modules in progress must not stop the gallery
                step()
            except Exception as exc:
                for name in guarded:
                    g.skipped[name] = f"{label} failed: {type(exc).__name__}: {exc}"
        if progress is not None:
            progress(f"{label}: {time.perf_counter() - t0:.1f} s")
    g.seconds = time.perf_counter() - start
    write_index(g, style, formats)
    return g


def write_index(g: Gallery, style: str, formats: Sequence[str]) -> Path:
    """``index.md`` of the gallery: one row per figure, then the skipped figure types."""
    import sim

    lines = [
        "# cmlsim figure gallery",
        "",
        f"`cmlsim gallery` (cmlsim {sim.__version__}), style {style}, formats "
        f"{', '.join(formats)}; {len(g.entries)} figures in {g.seconds:.1f} s. Each figure has "
        "its numbers beside it as CSV.",
        "",
        "| figure | what it shows | from | files | seconds | overlapping texts | texts cut off |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in g.entries:
        files = ", ".join(f"[{Path(f).name}]({f})" for f in e.files)
        lines.append(
            f"| {e.name} | {e.what} | {e.source} | {files} | {e.seconds:.1f} | {e.overlaps} | "
            f"{e.clipped} |"
        )
    if g.skipped:
        lines += ["", "Skipped:", ""]
        lines += [f"- {name}: {why}" for name, why in g.skipped.items()]
    path = g.out / "index.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


__all__ = [
    "COHORT_SIZE",
    "COMPARISON",
    "CURE_N",
    "SWEEP_N",
    "Entry",
    "Gallery",
    "make_gallery",
    "write_index",
]
