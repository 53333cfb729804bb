"""The result of one simulated patient, its labelled form, and how it is stored on disk.

A run produces a :class:`RunResult` (plain arrays, what the engines fill). :func:`to_dataset`
turns it into an :class:`xarray.Dataset` whose every variable and coordinate carries ``units`` and
``long_name``, with the parameters and the provenance (package version, git revision, scenario
text, seed, library versions) inside, so that a stored run can be understood and regenerated
without the code that made it (msprime's provenance records are the model).

:func:`write_run` stores a run as a directory ``results/<name>/``::

    trajectory.nc    the Dataset (netCDF-4 through h5netcdf)
    summary.csv      one row per patient: response times (days and months), stop, relapse
    visits.csv       the monitoring visits: true and measured BCR-ABL1, detection limit, actions
    scenario.toml    the scenario text that produced the run
    trajectory.png   the single-patient figure (and .pdf, ...; see sim.plots.trajectory)

The directory is built under a hidden temporary name and renamed into place only when complete,
and an existing run is never replaced silently: a second run of the same name goes to
``results/<name>.2/``.

Time is in days everywhere (1 month = 365.25/12 d, :data:`sim.params.DAYS_PER_MONTH`); tables add
month columns for reading.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import os
import platform
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.models.base import ModelSpec
from sim.params import DAYS_PER_MONTH
from sim.therapy import drive as _drive

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

#: Protocol action codes recorded at monitoring visits (``visits["action"]``).
ACTIONS: dict[int, str] = {
    0: "none",
    1: "stop scheduled",
    2: "stop",
    3: "relapse",
    4: "restart",
    5: "dose change",
    6: "switch TKI",
}

#: Names of the molecular-response depth codes of ``sim.readout`` (``DEPTH_NONE = 0``,
#: ``DEPTH_MMR = 3``, ``DEPTH_MR4 = 4``, ``DEPTH_MR45 = 5``, ``DEPTH_MR5 = 6``).
DEPTHS: dict[int, str] = {0: "none", 3: "MMR", 4: "MR4", 5: "MR4.5", 6: "MR5"}

#: Visit fields: name -> (units, long_name). Integer-coded fields are in :data:`_INT_VISIT_FIELDS`.
VISIT_FIELDS: dict[str, tuple[str, str]] = {
    "time": ("day", "time of the monitoring visit since diagnosis"),
    "true_pct": ("%", "true BCR-ABL1 (IS) at the visit"),
    "measured_pct": ("%", "BCR-ABL1 (IS) measured by qPCR; 0 when undetectable"),
    "detected": ("1", "1 if BCR-ABL1 transcripts were detected, 0 if undetectable"),
    "abl1": ("copies", "ABL1 control-gene transcripts counted in the sample"),
    "lod_pct": ("%", "detection limit of the sample, 100/ABL1 (IS)"),
    "depth": ("1", "deepest molecular response the sample proves"),
    "on_tki": ("1", "1 if the patient was on TKI at the visit"),
    "action": ("1", "protocol action taken at the visit"),
}
_INT_VISIT_FIELDS = ("detected", "depth", "on_tki", "action")

#: Solver statistics counted by the engines.
STAT_FIELDS: dict[str, str] = {
    "steps": "accepted integration steps",
    "rejected": "rejected integration steps",
    "rhs_calls": "right-hand-side evaluations",
    "failures": "integration failures (step size underflow, non-finite state)",
    "restarts": "integrator restarts at therapy or dose events",
}

_SUMMARY_LONG_NAMES = {
    "t_mmr": "first time true BCR-ABL1 <= 0.1 % (MMR)",
    "t_mr4": "first time true BCR-ABL1 <= 0.01 % (MR4)",
    "t_mr45": "first time true BCR-ABL1 <= 0.0032 % (MR4.5)",
    "t_mmr_measured": "first visit proving MMR by qPCR",
    "t_mr4_measured": "first visit proving MR4 by qPCR",
    "t_mr45_measured": "first visit proving MR4.5 by qPCR",
    "stop_time": "time of the (first) TKI stop",
    "relapse_time": "time of the (first) molecular relapse after a stop",
    "restart_time": "time TKI was restarted after a relapse",
    "n_stops": "number of TKI stops",
    "bcr_abl_at_stop": "true BCR-ABL1 (IS) at the stop",
    "max_bcr_abl_after_stop": "largest true BCR-ABL1 (IS) after the stop",
    "x0_capped": "1 if the quiescent stem-cell pool at diagnosis was capped (x0_cap)",
}

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_GIT_TIMEOUT_S = 10.0


@dataclass
class RunResult:
    """One simulated patient: trajectory, monitoring visits, summary and provenance.

    Attributes
    ----------
    name : str
        Scenario name; the run is stored under ``results/<name>/``.
    model : ModelSpec
        The model that was run.
    params : ndarray, shape (n_param,)
        Parameter vector used, in the internal units of ``model.params``.
    t : ndarray, shape (n_t,)
        Output times, days since diagnosis.
    y : ndarray, shape (n_t, n_state)
        State at the output times (units ``model.state_units``).
    bcr_abl : ndarray, shape (n_t,)
        True BCR-ABL1, % IS.
    drive : ndarray, shape (n_t, N_DRIVE)
        Therapy drive at the output times (slots of :mod:`sim.therapy.drive`).
    visits : dict of str to ndarray
        Equal-length arrays, one entry per monitoring visit: ``time`` (days), ``true_pct``,
        ``measured_pct`` (0 when undetectable), ``detected`` (1/0), ``abl1`` (copies),
        ``lod_pct`` (100/ABL1, %), ``depth`` (``sim.readout`` DEPTH_* code), ``on_tki`` (1/0),
        ``action`` (code of :data:`ACTIONS`).
    summary : dict of str to float
        Times in days (NaN if never): ``t_mmr``, ``t_mr4``, ``t_mr45`` (first true crossing),
        ``t_mmr_measured``, ``t_mr4_measured``, ``t_mr45_measured``, ``stop_time``,
        ``relapse_time``, ``restart_time``; ``n_stops``, ``bcr_abl_at_stop``, ``X_at_stop`` ...
        ``N_at_stop``, ``max_bcr_abl_after_stop``, ``x0_capped`` (0/1).
    tki_periods : list of (float, float, float)
        ``(start, end, dose fraction)`` of TKI exposure, days.
    stats : dict of str to int
        Solver statistics: ``steps``, ``rejected``, ``rhs_calls``, ``failures``, ``restarts``.
    provenance : dict of str to str
        See :func:`provenance`.
    interventions : list of dict
        One per scenario intervention: ``name``, ``kind``, ``anchor``, ``start`` (days; NaN when
        its anchor never happened: not given), ``doses`` (given), ``last_dose``, ``every``.
    failure : str
        Empty for a good run; when the solver failed, when it did (e.g. ``"between day 84 and
        day 91"``): the outputs after that are NaN. Stored as the attribute ``solver_failure``.
    timings : dict of str to float
        Wall times of this process, seconds (``kernel``: the solver, numba's loading and
        compiling excluded). Not stored: they describe the machine, not the run.
    """

    name: str
    model: ModelSpec
    params: np.ndarray
    t: np.ndarray
    y: np.ndarray
    bcr_abl: np.ndarray
    drive: np.ndarray
    visits: dict[str, np.ndarray]
    summary: dict[str, float]
    tki_periods: list[tuple[float, float, float]]
    stats: dict[str, int]
    provenance: dict[str, str]
    interventions: list[dict] = dataclasses.field(default_factory=list)
    failure: str = ""
    timings: dict[str, float] = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.params = np.asarray(self.params, dtype=np.float64)
        self.t = np.asarray(self.t, dtype=np.float64)
        self.y = np.asarray(self.y, dtype=np.float64)
        self.bcr_abl = np.asarray(self.bcr_abl, dtype=np.float64)
        self.drive = np.asarray(self.drive, dtype=np.float64)
        self.visits = {k: np.asarray(v) for k, v in self.visits.items()}
        n_t = self.t.shape[0] if self.t.ndim == 1 else -1
        problems = []
        if self.t.ndim != 1:
            problems.append(f"t must be 1-D, got shape {self.t.shape}")
        if self.params.shape != (len(self.model.params),):
            problems.append(
                f"params has shape {self.params.shape}, model {self.model.name} has "
                f"{len(self.model.params)} parameters"
            )
        if self.y.shape != (n_t, self.model.n_state):
            problems.append(f"y has shape {self.y.shape}, expected {(n_t, self.model.n_state)}")
        if self.bcr_abl.shape != (n_t,):
            problems.append(f"bcr_abl has shape {self.bcr_abl.shape}, expected {(n_t,)}")
        if self.drive.shape != (n_t, _drive.N_DRIVE):
            problems.append(f"drive has shape {self.drive.shape}, expected {(n_t, _drive.N_DRIVE)}")
        lengths = {k: v.shape for k, v in self.visits.items()}
        if len(set(lengths.values())) > 1 or any(len(s) != 1 for s in lengths.values()):
            problems.append(f"visit arrays must be 1-D of equal length, got shapes {lengths}")
        if problems:
            raise ValueError(f"RunResult {self.name!r}: " + "; ".join(problems))

    @property
    def n_visits(self) -> int:
        """Number of monitoring visits."""
        return len(next(iter(self.visits.values()))) if self.visits else 0


# ---------------------------------------------------------------------------------------------
# provenance


def git_revision() -> str:
    """Git commit of the source tree this package was imported from.

    Returns
    -------
    str
        ``git rev-parse HEAD`` of the checkout that contains this package, with ``"-dirty"``
        appended when ``git status --porcelain`` lists changes; ``"unknown"`` when the package is
        not in a git checkout of its own (e.g. installed in site-packages), git is missing, the
        repository has no commit yet, or git does not answer within 10 s.
    """
    pkg = Path(__file__).resolve().parent

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "--no-optional-locks", *args],  # read-only: never rewrite the index
            cwd=pkg,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )

    try:
        top = git("rev-parse", "--show-toplevel")
        # Only the checkout the package lives in counts, not a repository that merely contains
        # a virtual environment with an installed copy.
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != pkg.parent:
            return "unknown"
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return "unknown"
        revision = head.stdout.strip()
        status = git("status", "--porcelain")
        if status.returncode == 0 and status.stdout.strip():
            revision += "-dirty"
        return revision
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(scenario_text: str, seed: int, engine: str) -> dict[str, str]:
    """What is needed to regenerate a run: software, versions, scenario, seed, time.

    Parameters
    ----------
    scenario_text : str
        The scenario file's text as read.
    seed : int
        The scenario seed.
    engine : str
        The engine that ran (``"ode"``, ...).

    Returns
    -------
    dict of str to str
        Keys ``software``, ``version`` (``sim.__version__``), ``git_revision`` (see
        :func:`git_revision`), ``scenario``, ``seed``, ``engine``, ``python``, ``numpy``,
        ``numba``, ``platform``, ``created`` (ISO 8601, UTC). All values are strings, so the
        dict can go into netCDF attributes as it is.

    Notes
    -----
    Runs ``git`` up to three times; call it once per run or cohort, not per patient.
    """
    import numba

    import sim

    return {
        "software": "cmlsim",
        "version": sim.__version__,
        "git_revision": git_revision(),
        "scenario": str(scenario_text),
        "seed": str(int(seed)),
        "engine": str(engine),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "platform": platform.platform(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------------------------------------
# labelled form


def is_time_key(key: str) -> bool:
    """True for summary entries that are times in days (``t_*`` and ``*_time``)."""
    return key.startswith("t_") or key.endswith("_time")


def _summary_attrs(key: str, model: ModelSpec) -> dict[str, str]:
    long_name = _SUMMARY_LONG_NAMES.get(key, key.replace("_", " "))
    if is_time_key(key):
        units = "day"
    elif key.endswith("_at_stop") and key[: -len("_at_stop")] in model.states:
        state = key[: -len("_at_stop")]
        units = model.state_units[model.states.index(state)]
        long_name = f"state {state} at the stop"
    elif "bcr_abl" in key:
        units = "%"
    else:
        units = "1"
    return {"units": units, "long_name": long_name, "role": "summary"}


def _flag_attrs(codes: dict[int, str]) -> dict[str, object]:
    # CF flag attributes: values and space-separated meanings (spaces inside a name -> "_").
    return {
        "flag_values": np.array(list(codes), dtype=np.int32),
        "flag_meanings": " ".join(v.replace(" ", "_") for v in codes.values()),
    }


def to_dataset(result: RunResult) -> xr.Dataset:
    """The run as a labelled :class:`xarray.Dataset` (one patient).

    Parameters
    ----------
    result : RunResult
        The run.

    Returns
    -------
    xarray.Dataset
        Dimensions ``patient`` (length 1), ``time``, ``state``, ``drive_slot``, ``visit``,
        ``parameter`` and ``tki_period``. Variables:

        - ``y(patient, time, state)``: the state; ``units`` is the list of state units, also
          the coordinate ``state_units(state)``;
        - ``bcr_abl(patient, time)``: true BCR-ABL1, %;
        - ``drive(patient, time, drive_slot)``: therapy drive (the dimension is ``drive_slot``
          because a variable cannot share its name with a dimension);
        - ``visit_<field>(patient, visit)`` for each visit field (:data:`VISIT_FIELDS`);
        - one ``(patient,)`` variable per summary entry (``role = "summary"``) and
          ``solver_<stat>`` per solver statistic (``role = "solver_stats"``);
        - ``param(patient, parameter)`` with ``units`` the list of parameter units, also the
          coordinate ``parameter_units(parameter)``;
        - ``tki_start``, ``tki_end``, ``tki_dose_fraction`` ``(patient, tki_period)``.

        Every variable and coordinate has ``units`` and ``long_name``; time is in days. The
        attributes hold ``name``, ``model`` and the provenance (strings only), and
        ``solver_failure`` when the solver failed (see :attr:`RunResult.failure`).
    """
    import xarray as xr

    m = result.model
    n_v = result.n_visits
    periods = np.asarray(result.tki_periods, dtype=np.float64).reshape(-1, 3)

    def lab(units: str, long_name: str, **extra: object) -> dict[str, object]:
        return {"units": units, "long_name": long_name, **extra}

    coords = {
        "patient": ("patient", np.array([0], dtype=np.int64), lab("1", "patient index")),
        "time": ("time", result.t, lab("day", "time since diagnosis")),
        "state": ("state", np.array(m.states), lab("1", "model state")),
        "state_units": ("state", np.array(m.state_units), lab("1", "unit of each state")),
        "drive_slot": ("drive_slot", np.array(_drive.NAMES), lab("1", "therapy drive slot")),
        "visit": ("visit", np.arange(n_v, dtype=np.int64), lab("1", "monitoring visit index")),
        "parameter": ("parameter", np.array(m.params.names), lab("1", "model parameter")),
        "parameter_units": (
            "parameter",
            np.array([p.unit for p in m.params]),
            lab("1", "unit of each parameter (internal units)"),
        ),
        "tki_period": (
            "tki_period",
            np.arange(len(periods), dtype=np.int64),
            lab("1", "period of TKI exposure"),
        ),
    }
    data: dict[str, tuple] = {
        "y": (
            ("patient", "time", "state"),
            result.y[None],
            lab(list(m.state_units), f"state of model {m.name}"),
        ),
        "bcr_abl": (("patient", "time"), result.bcr_abl[None], lab("%", "true BCR-ABL1 (IS)")),
        "drive": (
            ("patient", "time", "drive_slot"),
            result.drive[None],
            lab("1", "therapy drive (relative effect, occupancy or boost; see drive_slot)"),
        ),
        "param": (
            ("patient", "parameter"),
            result.params[None],
            lab([p.unit for p in m.params], "model parameter value (internal units)"),
        ),
        "tki_start": (
            ("patient", "tki_period"),
            periods[None, :, 0],
            lab("day", "start of TKI exposure"),
        ),
        "tki_end": (
            ("patient", "tki_period"),
            periods[None, :, 1],
            lab("day", "end of TKI exposure"),
        ),
        "tki_dose_fraction": (
            ("patient", "tki_period"),
            periods[None, :, 2],
            lab("1", "TKI dose as a fraction of the standard dose"),
        ),
    }
    for field, values in result.visits.items():
        units, long_name = VISIT_FIELDS.get(field, ("1", field.replace("_", " ")))
        attrs = lab(units, long_name, role="visit")
        if field in _INT_VISIT_FIELDS:
            values = np.asarray(values).astype(np.int32)
        else:
            values = np.asarray(values, dtype=np.float64)
        if field == "action":
            attrs.update(_flag_attrs(ACTIONS))
        elif field == "depth":
            attrs.update(_flag_attrs(DEPTHS))
        data[f"visit_{field}"] = (("patient", "visit"), values[None], attrs)
    for key, value in result.summary.items():
        name = key if key not in data and key not in coords else f"summary_{key}"
        data[name] = (("patient",), np.array([value], dtype=np.float64), _summary_attrs(key, m))
    for key, value in result.stats.items():
        desc = STAT_FIELDS.get(key, key.replace("_", " "))
        data[f"solver_{key}"] = (
            ("patient",),
            np.array([value], dtype=np.int64),
            lab("1", f"solver: {desc}", role="solver_stats"),
        )
    attrs = {
        "title": f"cmlsim run {result.name}",
        "name": result.name,
        "model": m.name,
        **{k: str(v) for k, v in result.provenance.items() if k not in ("name", "model")},
    }
    if result.failure:
        attrs["solver_failure"] = f"the solver failed {result.failure}; later outputs are NaN"
    return xr.Dataset(data, coords=coords, attrs=attrs)


def from_dataset(ds: xr.Dataset, patient: int = 0) -> RunResult:
    """Rebuild a :class:`RunResult` from :func:`to_dataset` output (e.g. to redraw a figure).

    Parameters
    ----------
    ds : xarray.Dataset
        As written by :func:`to_dataset` / read by :func:`load_run`.
    patient : int
        Position along ``patient``.

    Returns
    -------
    RunResult
        The run; visits and TKI periods padded with NaN times (cohorts) are dropped.
    """
    from sim import models

    p = ds.isel(patient=patient)
    visits = {
        str(v)[len("visit_") :]: p[v].values
        for v in p.data_vars
        if p[v].attrs.get("role") == "visit"
    }
    if "time" in visits:
        keep = np.isfinite(visits["time"].astype(np.float64))
        visits = {k: v[keep] for k, v in visits.items()}
    summary = {}
    for v in p.data_vars:
        if p[v].attrs.get("role") == "summary":
            key = str(v)
            if key.startswith("summary_") and key[len("summary_") :] in p.variables:
                key = key[len("summary_") :]
            summary[key] = float(p[v].values)
    stats = {
        str(v)[len("solver_") :]: int(p[v].values)
        for v in p.data_vars
        if p[v].attrs.get("role") == "solver_stats"
    }
    periods = [
        (float(s), float(e), float(f))
        for s, e, f in zip(
            p.tki_start.values, p.tki_end.values, p.tki_dose_fraction.values, strict=True
        )
        if np.isfinite(s)
    ]
    prov = {
        k: str(v)
        for k, v in ds.attrs.items()
        if k not in ("title", "name", "model", "solver_failure")
    }
    failure = str(ds.attrs.get("solver_failure", ""))
    failure = failure.removeprefix("the solver failed ").removesuffix("; later outputs are NaN")
    return RunResult(
        name=str(ds.attrs["name"]),
        model=models.get(str(ds.attrs["model"])),
        params=p.param.values,
        t=p.time.values,
        y=p.y.values,
        bcr_abl=p.bcr_abl.values,
        drive=p.drive.values,
        visits=visits,
        summary=summary,
        tki_periods=periods,
        stats=stats,
        provenance=prov,
        failure=failure,
    )


def summary_table(result: RunResult | xr.Dataset) -> pd.DataFrame:
    """Summary as a table: one row per patient, times in days and in months.

    Parameters
    ----------
    result : RunResult or xarray.Dataset
        A run, or a dataset of one or more patients from :func:`to_dataset`.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient``, ``name``, ``seed``, then each summary entry (times in days, each
        followed by ``<key>_months``), then ``solver_<stat>``. NaN means "never".
    """
    import pandas as pd

    ds = to_dataset(result) if isinstance(result, RunResult) else result
    cols: dict[str, object] = {
        "patient": ds.patient.values,
        "name": [ds.attrs.get("name", "")] * ds.sizes["patient"],
        "seed": [ds.attrs.get("seed", "")] * ds.sizes["patient"],
    }
    for v in ds.data_vars:
        role = ds[v].attrs.get("role")
        if role == "summary":
            cols[str(v)] = ds[v].values
            if ds[v].attrs.get("units") == "day":
                cols[f"{v}_months"] = ds[v].values / DAYS_PER_MONTH
    for v in ds.data_vars:
        if ds[v].attrs.get("role") == "solver_stats":
            cols[str(v)] = ds[v].values
    return pd.DataFrame(cols)


def visits_table(result: RunResult) -> pd.DataFrame:
    """The monitoring visits as a table, with months and readable action and depth names.

    Parameters
    ----------
    result : RunResult
        The run.

    Returns
    -------
    pandas.DataFrame
        One row per visit: ``time`` (days), ``time_months``, the visit fields, ``depth_name``
        and ``action_name``.
    """
    import pandas as pd

    df = pd.DataFrame({k: np.asarray(v) for k, v in result.visits.items()})
    if "time" in df:
        df.insert(1, "time_months", df["time"] / DAYS_PER_MONTH)
    if "depth" in df:
        df["depth_name"] = [DEPTHS.get(int(d), str(int(d))) for d in df["depth"]]
    if "action" in df:
        df["action_name"] = [ACTIONS.get(int(a), str(int(a))) for a in df["action"]]
    return df


# ---------------------------------------------------------------------------------------------
# storage


def _make_temp_dir(root: Path, name: str) -> Path:
    """A new hidden sibling ``.<name>.tmp-XXXXXXXX``; unlike ``tempfile.mkdtemp`` (mode 0o700)
    it gets the usual permissions (0o777 less the umask), which the finished run keeps."""
    for _ in range(100):
        tmp = root / f".{name}.tmp-{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary directory in {root}")


def _claim(tmp: Path, root: Path, name: str, overwrite: bool) -> Path:
    """Rename the finished ``tmp`` directory to ``root/name`` (or ``name.2``, ...)."""
    target = root / name
    if overwrite:
        if not (target.exists() or target.is_symlink()):
            os.rename(tmp, target)
            return target
        trash = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=root))
        try:
            os.rename(target, trash / name)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(trash / name, target)
                raise
        finally:
            shutil.rmtree(trash, ignore_errors=True)
        return target
    k = 1
    while True:
        candidate = target if k == 1 else root / f"{name}.{k}"
        if not (candidate.exists() or candidate.is_symlink()):
            try:
                os.rename(tmp, candidate)
                return candidate
            except OSError as exc:  # created meanwhile by another writer: take the next number
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        k += 1


def abridge(text: str, limit: int = 60) -> str:
    """``text`` as it is when short, else its beginning, ``...`` and its length in characters."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}... ({len(text):,} characters)"


def check_writable(results_root: str | os.PathLike, name: str | None = None) -> None:
    """Check, before anything is computed, that ``<results_root>/<name>/`` can be written.

    Parameters
    ----------
    results_root : path
        The parent folder; it may not exist yet (then its nearest existing ancestor must allow
        creating it).
    name : str, optional
        The results folder's name (None: check the root only, e.g. before the scenario that
        names the folder is read).

    Raises
    ------
    ValueError
        ``name`` cannot be a folder name: characters other than letters, digits, ``_``, ``-``
        and ``.``, a leading ``.``, or more bytes than the file system allows in a name once
        the hidden temporary folder's affixes are added (see :func:`write_run`).
    OSError
        ``results_root`` cannot be created, is not a folder, or a folder cannot be created in
        it (permissions, read-only file system, ...).

    Notes
    -----
    Missing folders are not created: their nearest existing ancestor must be a folder in which
    a folder can be created. The check creates an empty hidden folder there and removes it.
    """
    if name is not None and not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"results name {abridge(name)!r} cannot be a folder name: expected letters, digits, "
            "'_', '-' and '.', not starting with '.'"
        )
    root = Path(results_root)
    missing = []
    existing = root
    while not (existing.exists() or existing.is_symlink()) and existing.parent != existing:
        missing.append(existing.name)
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(existing))
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), unknown name
        name_max = 255
    for part in missing:
        if len(part.encode()) > name_max:
            raise OSError(errno.ENAMETOOLONG, "file name too long", abridge(part))
    affixes = len(".") + len(".tmp-") + 8  # the temporary folder's name around <name>
    if name is not None and len(name.encode()) + affixes > name_max:
        raise ValueError(
            f"results name {abridge(name)!r} is {len(name.encode()):,} bytes long; a results "
            f"folder name can have at most {name_max - affixes} bytes here (the file system "
            f"allows {name_max} per name, and the temporary folder adds {affixes})"
        )
    _make_temp_dir(existing, "cmlsim" if name is None else name).rmdir()


def write_run(
    result: RunResult,
    results_root: str | os.PathLike = "results",
    overwrite: bool = False,
    formats: Sequence[str] = ("png", "pdf"),
    figure: bool = True,
) -> Path:
    """Store a run as ``<results_root>/<name>/``, never silently replacing an earlier run.

    Parameters
    ----------
    result : RunResult
        The run; ``result.name`` names the directory and ``result.provenance["scenario"]`` is
        written as ``scenario.toml``.
    results_root : path
        Parent directory (created if missing).
    overwrite : bool
        Replace an existing ``<name>/``. When False and it exists, the run goes to the first
        free ``<name>.2/``, ``<name>.3/``, ... instead.
    formats : sequence of str
        Figure formats (matplotlib extensions).
    figure : bool
        Draw ``trajectory.<fmt>`` with :func:`sim.plots.trajectory.plot_trajectory`.

    Returns
    -------
    pathlib.Path
        The directory written (report it to the user: it may be ``<name>.2``).

    Notes
    -----
    Everything is written into a hidden sibling ``.<name>.tmp-XXXX`` that is renamed into place
    when complete, so a reader never sees a half-written run; on any error the temporary
    directory is removed and the exception propagates.
    """
    name = result.name
    if not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"run name {name!r} cannot be a directory name: expected letters, digits, '_', '-' "
            "and '.', not starting with '.'"
        )
    root = Path(results_root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp_dir(root, name)
    try:
        ds = to_dataset(result)
        ds.to_netcdf(tmp / "trajectory.nc", engine="h5netcdf")
        summary_table(ds).to_csv(tmp / "summary.csv", index=False, na_rep="NaN")
        visits_table(result).to_csv(tmp / "visits.csv", index=False, na_rep="NaN")
        (tmp / "scenario.toml").write_text(result.provenance.get("scenario", ""), encoding="utf-8")
        if figure:
            from sim.plots import trajectory

            trajectory.plot_trajectory(result, path_stem=tmp / "trajectory", formats=formats)
        return _claim(tmp, root, name, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_run(path: str | os.PathLike) -> xr.Dataset:
    """Read a stored run into memory.

    Parameters
    ----------
    path : path
        A run directory written by :func:`write_run`, or its ``trajectory.nc``.

    Returns
    -------
    xarray.Dataset
        As produced by :func:`to_dataset`; the file is closed on return.
    """
    import xarray as xr

    path = Path(path)
    file = path / "trajectory.nc" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no stored run at {path} (expected {file})")
    # Time stays in plain days: never decoded into timedelta64.
    return xr.load_dataset(file, engine="h5netcdf", decode_times=False, decode_timedelta=False)
