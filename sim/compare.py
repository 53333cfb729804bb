"""Compare scenarios side by side: same patient, same random numbers, different therapy.

``cmlsim compare A.toml B.toml ...`` asks what a change of therapy or of immune interventions
does to one patient. The scenarios are meant to differ only in ``[[therapy]]``, ``[protocol]``
and ``[[intervention]]``; each is run with the patient its file declares (a note is printed when
their ``[patient]`` parameter vectors differ, because then the comparison mixes patient and
therapy effects) and with **one** random seed, the first scenario's (or ``--seed``):

.. code-block:: python

    runs = [dataclasses.replace(sc, seed=seed) for sc in scenarios]  # Scenario is frozen

so every run draws the same stream of qPCR noise (common random numbers): where two scenarios
take a sample at the same time with the same true BCR-ABL1 they read the same value, and a
difference between columns is the therapy's, not the dice's (as long as the visit schedules stay
in step; once they diverge the draws are still from one stream but serve different visits).

The comparison table (:func:`format_table`, one column per scenario) has these rows:

- time to MMR, MR4 and MR4.5 proven by qPCR (months since diagnosis; "never");
- TKI exposure in standard-dose years, ``summary["tki_exposure"] / 365.25`` (a year at half dose
  counts 0.5);
- stop time (months since diagnosis; "never");
- relapse: months from the (first) stop to the (first) molecular relapse, "none" when the stop
  held to the end of the run, "n/a" when TKI was never stopped;
- TFR at 12, 24 and 60 months after the stop: "yes" = stopped and no relapse within that
  window, "no" = relapsed within it, "n/a" = never stopped, or the run ends before the window
  does (:func:`tfr_status`);
- the immune state at the stop: effector T cells Z, exhausted fraction E, NK cells N and the
  true BCR-ABL1 (% IS);
- one row per intervention (by name, across scenarios): "start month, doses", "not given" when
  its anchor never came, "-" when the scenario has no intervention of that name.

:func:`comparison_table` is the machine-readable form (one row per scenario; every time in days
*and* months) and :func:`write_comparison` stores everything as ``results/<name>/``, built in a
hidden temporary directory and renamed into place like :func:`sim.results.write_run`, never
silently replacing an earlier comparison (``<name>.2/``, ...)::

    comparison.csv    comparison_table()
    comparison.txt    format_table(), as printed
    figure_data.csv   the plotted curves: time and, per scenario, BCR-ABL1, Z, N, E
    figure_bars.csv   the plotted bars: TKI periods (dose fraction) and intervention periods
    comparison.png    the figure (sim.plots.compare.plot_comparison), and .pdf
    <label>.toml      each scenario's text (a comment on top when its seed was replaced)
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.params import DAYS_PER_MONTH, DAYS_PER_YEAR

if TYPE_CHECKING:
    import pandas as pd

    from sim.results import RunResult
    from sim.scenario import Scenario

#: Windows after the stop for the treatment-free-remission rows, months.
TFR_MONTHS: tuple[int, ...] = (12, 24, 60)

#: Immune states reported at the stop (when the model has them), in this order.
IMMUNE_AT_STOP: tuple[str, ...] = ("Z", "E", "N")

#: Longest default results name; longer joined names are shortened and given a hash suffix.
MAX_NAME = 96

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_TOL_DAYS = 1e-6


@dataclass
class Comparison:
    """Scenarios run on a common seed, and their results.

    Attributes
    ----------
    scenarios : list of Scenario
        The scenarios as run (``seed`` replaced by the common seed).
    results : list of RunResult
        One per scenario, same order.
    labels : list of str
        Unique column labels: the scenario names, with ``.2``, ``.3`` ... appended to repeats.
    seed : int
        The common seed.
    seeds_in_files : list of int
        The seed each scenario file declared.
    notes : list of str
        One-line remarks for the user (e.g. that the patients differ).
    """

    scenarios: list[Scenario]
    results: list[RunResult]
    labels: list[str]
    seed: int
    seeds_in_files: list[int]
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# running


def unique_labels(names: Sequence[str]) -> list[str]:
    """The names, with repeats made unique as ``name.2``, ``name.3``, ...

    Examples
    --------
    >>> unique_labels(["a", "b", "a"])
    ['a', 'b', 'a.2']
    """
    taken: set[str] = set()
    out = []
    for name in names:
        label, k = name, 1
        while label in taken:
            k += 1
            label = f"{name}.{k}"
        taken.add(label)
        out.append(label)
    return out


def with_common_seed(scenarios: Sequence[Scenario], seed: int | None = None) -> list[Scenario]:
    """The scenarios with one seed: ``seed``, or the first scenario's.

    Parameters
    ----------
    scenarios : sequence of Scenario
        At least one.
    seed : int, optional
        The seed to use (>= 0); default the first scenario's.

    Returns
    -------
    list of Scenario
        ``dataclasses.replace(sc, seed=seed)`` for each (Scenario is frozen).
    """
    if not scenarios:
        raise ValueError("no scenarios to compare")
    seed = int(scenarios[0].seed if seed is None else seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return [dataclasses.replace(sc, seed=seed) for sc in scenarios]


def patient_differences(scenarios: Sequence[Scenario]) -> list[str]:
    """Names of the model parameters whose values differ between the scenarios.

    The full parameter vectors (``Scenario.param_vector()``, defaults with each file's
    ``[patient]`` applied) are compared; scenarios of different models differ in ``"model"``.
    """
    if len({sc.model for sc in scenarios}) > 1:
        return ["model"]
    spec = scenarios[0].model_spec()
    vectors = np.array([sc.param_vector() for sc in scenarios])
    differ = ~np.all(vectors == vectors[0], axis=0)
    return [spec.params.names[i] for i in np.flatnonzero(differ)]


def run_comparison(scenarios: Sequence[Scenario], seed: int | None = None) -> Comparison:
    """Run every scenario with the ODE engine on a common seed.

    Parameters
    ----------
    scenarios : sequence of Scenario
        Validated scenarios (engine ``"ode"``).
    seed : int, optional
        Common seed; default the first scenario's.

    Returns
    -------
    Comparison
    """
    from sim.run import run_scenario

    runs = with_common_seed(scenarios, seed)
    notes = []
    differ = patient_differences(runs)
    if differ:
        shown = ", ".join(differ[:6]) + (", ..." if len(differ) > 6 else "")
        notes.append(
            f"note: the scenarios declare different patients ({shown} differ), so the "
            "comparison mixes patient and therapy effects"
        )
    if any(sc.readout != runs[0].readout for sc in runs):
        notes.append("note: the scenarios' [readout] qPCR settings differ")
    return Comparison(
        scenarios=runs,
        results=[run_scenario(sc) for sc in runs],
        labels=unique_labels([sc.name for sc in runs]),
        seed=runs[0].seed,
        seeds_in_files=[int(sc.seed) for sc in scenarios],
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------
# what is compared


def _horizon(result: RunResult) -> float:
    return float(result.t[-1]) if len(result.t) else 0.0


def tfr_status(result: RunResult, months: float) -> str:
    """Treatment-free remission ``months`` after the (first) stop: "yes", "no" or "n/a".

    "yes": TKI was stopped and no molecular relapse came within ``months`` of the stop (the run
    lasts at least that long); "no": a relapse came within the window; "n/a": never stopped, or
    the run ends before the window closes without a relapse.
    """
    s = result.summary
    stop = s.get("stop_time", np.nan)
    if not np.isfinite(stop):
        return "n/a"
    window = months * DAYS_PER_MONTH
    relapse = s.get("relapse_time", np.nan)
    if np.isfinite(relapse) and relapse - stop <= window + _TOL_DAYS:
        return "no"
    if stop + window <= _horizon(result) + _TOL_DAYS:
        return "yes"
    return "n/a"


def relapse_after_stop(result: RunResult) -> float:
    """Days from the (first) stop to the (first) relapse; NaN when either never happened."""
    s = result.summary
    return float(s.get("relapse_time", np.nan) - s.get("stop_time", np.nan))


def exposure_years(result: RunResult) -> float:
    """TKI exposure in standard-dose years: ``summary["tki_exposure"] / 365.25``."""
    return float(result.summary.get("tki_exposure", np.nan)) / DAYS_PER_YEAR


def _state_unit(result: RunResult, state: str) -> str:
    m = result.model
    return m.state_units[m.states.index(state)] if state in m.states else ""


def _unit_suffix(unit: str) -> str:
    """A unit as a column-name suffix: "cells/µL" -> "cells_per_uL"."""
    return re.sub(r"[^A-Za-z0-9]+", "_", unit.replace("/", "_per_").replace("µ", "u")).strip("_")


def _intervention_names(results: Sequence[RunResult]) -> list[str]:
    names: list[str] = []
    for r in results:
        for iv in r.interventions:
            if iv["name"] not in names:
                names.append(iv["name"])
    return names


def _intervention_cell(result: RunResult, name: str) -> str:
    found = [iv for iv in result.interventions if iv["name"] == name]
    if not found:
        return "-"
    iv = found[0]
    if not iv.get("given", iv["doses"] > 0) or not np.isfinite(iv["start"]):
        return "not given"
    doses = int(iv["doses"])
    return f"{iv['start'] / DAYS_PER_MONTH:.1f} mo, {doses} dose{'s' if doses != 1 else ''}"


def _months_or(days: float, never: str = "never") -> str:
    return never if not np.isfinite(days) else f"{days / DAYS_PER_MONTH:.1f}"


def _at_stop(result: RunResult, key: str, fmt: str) -> str:
    if not np.isfinite(result.summary.get("stop_time", np.nan)):
        return "n/a"
    value = result.summary.get(key, np.nan)
    return "n/a" if not np.isfinite(value) else format(value, fmt)


def table_rows(results: Sequence[RunResult]) -> list[tuple[str, list[str]]]:
    """The printed comparison as (row label, one text cell per result)."""
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cell) -> None:
        rows.append((label, [cell(r) for r in results]))

    row("seed", lambda r: str(r.provenance.get("seed", "?")))
    for level, key in (("MMR", "t_mmr_measured"), ("MR4", "t_mr4_measured")):
        row(f"time to {level}, measured (mo)", lambda r, k=key: _months_or(r.summary.get(k)))
    row("time to MR4.5, measured (mo)", lambda r: _months_or(r.summary.get("t_mr45_measured")))
    row("TKI exposure (standard-dose years)", lambda r: f"{exposure_years(r):.2f}")
    row("TKI stop (mo)", lambda r: _months_or(r.summary.get("stop_time", np.nan)))

    def relapse(r: RunResult) -> str:
        if not np.isfinite(r.summary.get("stop_time", np.nan)):
            return "n/a"
        return _months_or(relapse_after_stop(r), never="none")

    row("relapse (mo after stop)", relapse)
    for m in TFR_MONTHS:
        row(f"TFR {m} mo after stop", lambda r, m=m: tfr_status(r, m))
    fmts = {"Z": ".3g", "E": ".2f", "N": ".0f"}
    words = {"Z": "effector T cells Z", "E": "T-cell exhaustion E", "N": "NK cells N"}
    for state in IMMUNE_AT_STOP:
        if not any(state in r.model.states for r in results):
            continue
        unit = next(_state_unit(r, state) for r in results if state in r.model.states)
        row(
            f"at stop: {words[state]} ({unit})",
            lambda r, s=state: _at_stop(r, f"{s}_at_stop", fmts[s]),
        )
    row("at stop: BCR::ABL1 (% IS)", lambda r: _at_stop(r, "bcr_abl_at_stop", ".2g"))
    names = _intervention_names(results)
    if not names:
        row("interventions", lambda r: "none")
    for name in names:
        row(f"intervention {name}", lambda r, n=name: _intervention_cell(r, n))
    return rows


def format_table(results: Sequence[RunResult], labels: Sequence[str] | None = None) -> str:
    """The side-by-side table as text: one column per scenario, one row per quantity.

    Parameters
    ----------
    results : sequence of RunResult
        The runs.
    labels : sequence of str, optional
        Column headers; default the scenario names made unique (:func:`unique_labels`).

    Returns
    -------
    str
        Lines joined by newlines (no trailing newline); cells are right-aligned.
    """
    labels = list(labels) if labels is not None else unique_labels([r.name for r in results])
    rows = table_rows(results)
    w0 = max(len(label) for label, _ in rows)
    widths = [
        max(len(labels[j]), *(len(cells[j]) for _, cells in rows)) for j in range(len(labels))
    ]
    lines = ["".ljust(w0) + "".join("  " + h.rjust(w) for h, w in zip(labels, widths))]
    lines.append("-" * len(lines[0]))
    for label, cells in rows:
        lines.append(label.ljust(w0) + "".join("  " + c.rjust(w) for c, w in zip(cells, widths)))
    return "\n".join(lines)


def comparison_table(
    results: Sequence[RunResult],
    labels: Sequence[str] | None = None,
    files: Sequence[str] | None = None,
    seeds_in_files: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The comparison, machine-readable: one row per scenario.

    Parameters
    ----------
    results : sequence of RunResult
        The runs.
    labels : sequence of str, optional
        Unique labels (default: :func:`unique_labels` of the names).
    files, seeds_in_files : sequence, optional
        Scenario file paths and the seeds the files declared, recorded when given.

    Returns
    -------
    pandas.DataFrame
        Columns: ``label``, ``name``, (``file``), ``seed`` (used), (``seed_in_file``),
        ``horizon_days``/``_months``; for ``t_mmr``, ``t_mr4``, ``t_mr45`` (true crossings),
        their ``_measured`` forms, ``stop_time``, ``relapse_time`` (since diagnosis),
        ``relapse_after_stop`` and ``restart_time``: ``<key>_days`` and ``<key>_months`` (NaN =
        never); ``tki_days``, ``tki_exposure_days`` (standard-dose days),
        ``tki_exposure_years`` (standard-dose years); ``tfr_12mo``, ``tfr_24mo``, ``tfr_60mo``
        ("yes"/"no"/"n/a"); ``n_stops``; ``bcr_abl_at_stop_pct`` and ``<state>_at_stop_<unit>``
        for every model state (e.g. ``N_at_stop_cells_per_uL``); ``interventions`` (text) and per
        intervention name ``intervention_<name>_start_days``/``_months``, ``_doses``,
        ``_last_dose_days``/``_months``, ``_given`` (NaN when the scenario lacks it).
    """
    import pandas as pd

    labels = list(labels) if labels is not None else unique_labels([r.name for r in results])
    names = _intervention_names(results)
    records = []
    for j, r in enumerate(results):
        s = r.summary
        rec: dict[str, object] = {"label": labels[j], "name": r.name}
        if files is not None:
            rec["file"] = str(files[j])
        rec["seed"] = int(r.provenance["seed"]) if "seed" in r.provenance else np.nan
        if seeds_in_files is not None:
            rec["seed_in_file"] = int(seeds_in_files[j])
        times = {"horizon": _horizon(r)}
        for key in (
            "t_mmr", "t_mr4", "t_mr45", "t_mmr_measured", "t_mr4_measured", "t_mr45_measured",
            "stop_time", "relapse_time", "restart_time",
        ):  # fmt: skip
            times[key] = float(s.get(key, np.nan))
        times["relapse_after_stop"] = relapse_after_stop(r)
        for key, days in times.items():
            rec[f"{key}_days"] = days
            rec[f"{key}_months"] = days / DAYS_PER_MONTH
        rec["tki_days"] = float(s.get("tki_days", np.nan))
        rec["tki_exposure_days"] = float(s.get("tki_exposure", np.nan))
        rec["tki_exposure_years"] = exposure_years(r)
        for m in TFR_MONTHS:
            rec[f"tfr_{m}mo"] = tfr_status(r, m)
        rec["n_stops"] = float(s.get("n_stops", np.nan))
        rec["bcr_abl_at_stop_pct"] = float(s.get("bcr_abl_at_stop", np.nan))
        for state, unit in zip(r.model.states, r.model.state_units):
            rec[f"{state}_at_stop_{_unit_suffix(unit)}"] = float(s.get(f"{state}_at_stop", np.nan))
        rec["interventions"] = (
            "; ".join(f"{n}: {_intervention_cell(r, n)}" for n in names if any(
                iv["name"] == n for iv in r.interventions
            )) or "none"
        )  # fmt: skip
        for n in names:
            found = [iv for iv in r.interventions if iv["name"] == n]
            iv = found[0] if found else None
            start = float(iv["start"]) if iv else np.nan
            last = float(iv["last_dose"]) if iv else np.nan
            rec[f"intervention_{n}_start_days"] = start
            rec[f"intervention_{n}_start_months"] = start / DAYS_PER_MONTH
            rec[f"intervention_{n}_doses"] = float(iv["doses"]) if iv else np.nan
            rec[f"intervention_{n}_last_dose_days"] = last
            rec[f"intervention_{n}_last_dose_months"] = last / DAYS_PER_MONTH
            rec[f"intervention_{n}_given"] = (
                float(bool(iv.get("given", iv["doses"] > 0))) if iv else np.nan
            )
        records.append(rec)
    return pd.DataFrame.from_records(records)


def figure_data(results: Sequence[RunResult], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """The curves of the comparison figure, wide: one time column, four columns per scenario.

    Columns ``time_days``, ``time_months``, then for each scenario label ``<label>.bcr_abl_pct``
    (true BCR-ABL1, % IS) and, for the states the model has, ``<label>.Z_cells``,
    ``<label>.N_cells_per_uL``, ``<label>.E_fraction``. The time column is the union of the
    scenarios' output grids; a scenario has NaN at times not on its own grid (never
    interpolated).
    """
    import pandas as pd

    labels = list(labels) if labels is not None else unique_labels([r.name for r in results])
    t = np.unique(np.concatenate([r.t for r in results])) if results else np.array([])
    cols: dict[str, np.ndarray] = {"time_days": t, "time_months": t / DAYS_PER_MONTH}
    for label, r in zip(labels, results):
        pos = np.searchsorted(t, r.t)

        def on_grid(values: np.ndarray, pos=pos) -> np.ndarray:
            out = np.full(t.shape, np.nan)
            out[pos] = values
            return out

        cols[f"{label}.bcr_abl_pct"] = on_grid(r.bcr_abl)
        for state in ("Z", "N", "E"):
            if state in r.model.states:
                unit = _unit_suffix(_state_unit(r, state))
                cols[f"{label}.{state}_{unit}"] = on_grid(r.y[:, r.model.states.index(state)])
    return pd.DataFrame(cols)


def bar_data(results: Sequence[RunResult], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """The bars of the comparison figure: one row per TKI period or given intervention.

    Columns ``label``, ``kind`` ("tki" or the intervention kind), ``name`` (drug-agnostic "TKI"
    or the intervention name), ``start_days``, ``end_days``, ``start_months``, ``end_months``,
    ``dose_fraction`` (TKI; NaN for interventions), ``doses`` (interventions). An intervention
    bar runs from its first dose to one dosing interval after its last dose.
    """
    import pandas as pd

    labels = list(labels) if labels is not None else unique_labels([r.name for r in results])
    rows = []
    for label, r in zip(labels, results):
        for start, end, frac in r.tki_periods:
            rows.append((label, "tki", "TKI", start, end, frac, np.nan))
        for iv in intervention_periods(r):
            rows.append(
                (label, iv["kind"], iv["name"], iv["start"], iv["end"], np.nan, iv["doses"])
            )
    df = pd.DataFrame(
        rows,
        columns=["label", "kind", "name", "start_days", "end_days", "dose_fraction", "doses"],
    )
    df.insert(5, "start_months", df["start_days"] / DAYS_PER_MONTH)
    df.insert(6, "end_months", df["end_days"] / DAYS_PER_MONTH)
    return df


def intervention_periods(result: RunResult) -> list[dict]:
    """Given interventions as periods: dicts with ``name``, ``kind``, ``start``, ``end`` (days;
    end = last dose + dosing interval, capped at the end of the run) and ``doses``."""
    out = []
    horizon = _horizon(result)
    for iv in result.interventions:
        start = float(iv["start"])
        if not iv.get("given", iv["doses"] > 0) or not np.isfinite(start):
            continue
        last = float(iv["last_dose"]) if np.isfinite(iv["last_dose"]) else start
        every = float(iv["every"]) if np.isfinite(iv["every"]) else 0.0
        end = max(start, min(last + every, horizon))
        out.append(
            {"name": iv["name"], "kind": iv["kind"], "start": start, "end": end,
             "doses": int(iv["doses"])}
        )  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
# storage


def default_name(names: Sequence[str], limit: int = MAX_NAME) -> str:
    """``"compare-" + "_vs_".join(names)``, shortened to ``limit`` characters with a hash.

    A name that is too long keeps its beginning and ends in ``-`` plus 8 hex digits of the SHA-1
    of the full name, so different long comparisons still get different folders.

    Examples
    --------
    >>> default_name(["imatinib-eln-stop", "destiny-half-dose"])
    'compare-imatinib-eln-stop_vs_destiny-half-dose'
    """
    full = "compare-" + "_vs_".join(names)
    if len(full) <= limit:
        return full
    digest = hashlib.sha1(full.encode("utf-8")).hexdigest()[:8]
    return full[: limit - 9].rstrip("-_.") + "-" + digest


def check_name(name: str) -> str:
    """``name`` if it can be a results folder name, else ValueError (one clear message)."""
    if not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"results name {name!r} cannot be a directory name: expected letters, digits, '_', "
            "'-' and '.', not starting with '.'"
        )
    return name


def _scenario_text(sc: Scenario, seed_in_file: int) -> str:
    if int(sc.seed) == int(seed_in_file):
        return sc.text
    return (
        f"# cmlsim compare: run with seed = {sc.seed} (the common seed of the comparison), not "
        f"the seed = {seed_in_file} below\n" + sc.text
    )


def write_comparison(
    cmp: Comparison,
    results_root: str | os.PathLike = "results",
    name: str | None = None,
    overwrite: bool = False,
    figure: bool = True,
    formats: Sequence[str] = ("png", "pdf"),
) -> Path:
    """Store a comparison as ``<results_root>/<name>/`` (see the module docstring).

    Parameters
    ----------
    cmp : Comparison
        From :func:`run_comparison`.
    results_root : path
        Parent directory (created if missing).
    name : str, optional
        Folder name; default :func:`default_name` of the scenario names.
    overwrite : bool
        Replace an existing ``<name>/``; otherwise the first free ``<name>.2/``, ``.3/``, ...
    figure : bool
        Draw ``comparison.<fmt>`` with :func:`sim.plots.compare.plot_comparison`.
    formats : sequence of str
        Figure formats.

    Returns
    -------
    pathlib.Path
        The directory written.
    """
    from sim.results import _claim, _make_temp_dir

    name = check_name(name if name is not None else default_name([r.name for r in cmp.results]))
    root = Path(results_root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp_dir(root, name)
    try:
        table = comparison_table(
            cmp.results, cmp.labels, [sc.path for sc in cmp.scenarios], cmp.seeds_in_files
        )
        table.to_csv(tmp / "comparison.csv", index=False, na_rep="NaN")
        text = format_table(cmp.results, cmp.labels)
        (tmp / "comparison.txt").write_text("\n".join([*cmp.notes, text]) + "\n", encoding="utf-8")
        figure_data(cmp.results, cmp.labels).to_csv(
            tmp / "figure_data.csv", index=False, na_rep="NaN"
        )
        bar_data(cmp.results, cmp.labels).to_csv(tmp / "figure_bars.csv", index=False, na_rep="NaN")
        for label, sc, seed0 in zip(cmp.labels, cmp.scenarios, cmp.seeds_in_files):
            (tmp / f"{label}.toml").write_text(_scenario_text(sc, seed0), encoding="utf-8")
        if figure:
            from sim.plots.compare import plot_comparison

            plot_comparison(
                cmp.results, path_stem=tmp / "comparison", formats=formats, labels=cmp.labels
            )
        return _claim(tmp, root, name, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


__all__ = [
    "Comparison",
    "bar_data",
    "comparison_table",
    "default_name",
    "figure_data",
    "format_table",
    "patient_differences",
    "run_comparison",
    "tfr_status",
    "unique_labels",
    "with_common_seed",
    "write_comparison",
]
