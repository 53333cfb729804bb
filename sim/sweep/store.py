"""The sweep store: a Zarr group in xarray's layout, filled chunk by chunk, resumable.

``results/<name>/`` holds

- ``sweep.zarr``: dimension ``sample`` (one per run), ``metric`` (:mod:`sim.sweep.metrics`) and,
  with a stored trajectory, ``time`` and ``state``. Variables: ``outcome`` (sample, metric),
  float64, NaN until computed, whose first metric is the run's ``status`` (:data:`STATUS`), so
  that a run's numbers and its status are one write of one chunk file; ``trajectory``
  (sample, time, state). Coordinates: ``sample``, ``metric`` (with its ``units``), and one per
  swept parameter, named by the parameter's ``name`` (its address, unit, range and scale in the
  coordinate's attributes). Attributes: provenance (:func:`sim.results.provenance`: version, git
  revision, scenario text, seed, ...), the design, the chunk size and a ``sweep_id``. The zarr
  chunks along ``sample`` are the task chunks, so no two writers ever share a chunk file.
- ``chunks/<k>.json``: the done marker of chunk k (its runs, status, error, timings, worker),
  written atomically *after* the chunk's data: a chunk counts as done only when its marker is there.
- ``scenario.toml``: the scenario as given.
- ``.sweep.lock``: the writer's lock (:func:`lock`): one sweep at a time computes into a store.

The store is created (through xarray and zarr) in a hidden temporary directory and renamed into
place with all its metadata and the design coordinates, so a store either exists whole or not at
all. Workers then write their chunk files themselves (:class:`ChunkFiles`: the files zarr would
write, byte for byte; through zarr for any other array layout), each atomically (a temporary
file renamed), so a process killed at any moment leaves each chunk file either complete or
absent; a chunk without a marker is computed again, in full, by ``--resume`` (overwriting its
files with the same numbers).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr
    import zarr

    from sim.scenario import Scenario

__all__ = [
    "CHUNKS",
    "LOCK",
    "STATUS",
    "STORE",
    "ChunkFiles",
    "Layout",
    "Locked",
    "StoreLock",
    "Writer",
    "chunk_bounds",
    "create",
    "create_locked",
    "default_chunk",
    "design_values",
    "load_sweep",
    "lock",
    "markers",
    "read_layout",
    "remove_partial_files",
]

STORE = "sweep.zarr"
CHUNKS = "chunks"
LOCK = ".sweep.lock"
#: Per-run status codes (the ``status`` metric; NaN in the store and 0 in
#: :func:`load_sweep` for runs not computed yet).
STATUS = {"pending": 0, "done": 1, "solver failure": 2, "error": 3}


def default_chunk(n: int, workers: int | None = None) -> int:
    """Runs per chunk when the scenario does not say.

    A chunk is the unit of storage and of resuming: one compressed file per variable and one
    done marker, so its fixed cost is a few file creations (more on a cluster's network file
    system than on a local disk) besides compressing its numbers. The executor's tasks group
    consecutive chunks, up to :data:`sim.sweep.execute.TASK_RUNS` runs, and shrink to single
    chunks at the end of the sweep (:func:`sim.sweep.execute.plan_tasks`), so small chunks cost
    files, not round trips. With the number of workers known, about 8 chunks per worker;
    otherwise about 48 chunks; between 128 and 1024 runs either way: within that range the chunk
    size hardly changes the sweep's overhead, so the rule keeps the fewest files. The chunking
    never changes the numbers (run ``j`` takes design row ``j`` and random stream ``j``).
    """
    target = 8 * int(workers) if workers else 48
    return int(min(1024, max(128, -(-n // target))))


def chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    """``(first, stop)`` of each chunk of ``n`` runs."""
    return [(a, min(n, a + chunk)) for a in range(0, n, chunk)]


@dataclass(frozen=True)
class Layout:
    """What a store holds, read from its attributes.

    Attributes
    ----------
    path : Path
        The results folder (``results/<name>/``).
    sweep_id : str
        Random id given at creation (a resumed sweep keeps it).
    n : int
        Runs.
    chunk : int
        Runs per chunk.
    scenario_text : str
        The scenario, as given.
    scenario_path : str
        Where it came from.
    attrs : dict
        All attributes.
    """

    path: Path
    sweep_id: str
    n: int
    chunk: int
    scenario_text: str
    scenario_path: str
    attrs: dict[str, Any]

    @property
    def store(self) -> Path:
        return self.path / STORE

    @property
    def bounds(self) -> list[tuple[int, int]]:
        return chunk_bounds(self.n, self.chunk)


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def _atomic_write(path: Path, data: str | bytes, tmp: Path | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place (``tmp``; default
    a hidden ``.<name>.tmp-<hex>`` beside it), so the file is complete or absent."""
    tmp = tmp or path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Locked(RuntimeError):
    """The store is locked by another writer.

    Attributes
    ----------
    path : Path
        The results folder.
    holder : str
        What the lock file says of its holder (``pid <pid> on <host> since <time>``), or
        ``"a process that did not say which"``.
    """

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is in use by another sweep ({holder})")
        self.path = path
        self.holder = holder


class StoreLock:
    """A writer's lock on a results folder (:func:`lock`); :meth:`release` frees it, and so
    does the end of the process, however it ends."""

    def __init__(self, fd: int | None):
        self._fd = fd

    def release(self) -> None:
        """Free the lock (the lock file stays: a later writer locks it again)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None

    def __enter__(self) -> StoreLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock(path: str | os.PathLike) -> StoreLock:
    """Take the writer's lock of the results folder ``path`` at once, or raise :class:`Locked`.

    The lock is ``flock`` on ``path/.sweep.lock``, which names its holder (pid, host, time).
    The operating system frees it when the holder's process ends, so a killed sweep leaves no
    stale lock. Where ``flock`` is missing (Windows), or on a file system without it, no lock
    is taken.
    """
    path = Path(path)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return StoreLock(None)
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            said = os.read(fd, 200).decode("utf-8", "replace").strip()
        finally:
            os.close(fd)
        raise Locked(path, said or "a process that did not say which") from None
    except OSError:  # no flock on this file system: go on without a lock
        os.close(fd)
        return StoreLock(None)
    import socket

    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {when}\n".encode(), 0)
    return StoreLock(fd)


def _unwritten(shape: tuple[int, ...]) -> np.ndarray:
    """A NaN array of ``shape`` that takes no memory: xarray writes its metadata, and zarr no
    chunk of it (a chunk equal to the fill value is not written), so every chunk stays pending.
    zarr compares each chunk with the fill value, which is cheap; a lazy dask array would skip
    that, but building its write graph imports ``distributed``, which is not."""
    return np.broadcast_to(np.float64(np.nan), shape)


def create(
    sc: Scenario,
    values: np.ndarray,
    results_root: str | os.PathLike = "results",
    overwrite: bool = False,
    workers: int | None = None,
) -> Layout:
    """Create the store of a sweep (atomically) and return its layout (:func:`create_locked`,
    the lock released)."""
    layout, held = create_locked(sc, values, results_root, overwrite, workers)
    held.release()
    return layout


def create_locked(
    sc: Scenario,
    values: np.ndarray,
    results_root: str | os.PathLike = "results",
    overwrite: bool = False,
    workers: int | None = None,
) -> tuple[Layout, StoreLock]:
    """Create the store of a sweep (atomically); its layout and its writer's lock.

    The lock (:func:`lock`) is taken before the store is put in place, so no other writer can
    take the new store first.

    Parameters
    ----------
    sc : Scenario
        With a ``[sweep]``.
    values : ndarray (n, D)
        The design (:func:`sim.sweep.design.design_values`).
    results_root : path
        Folder of results; the store goes to ``<root>/<name>/`` (``<name>.2/``, ... when taken,
        unless ``overwrite``).
    overwrite : bool
        Replace ``<root>/<name>/`` (:class:`Locked` if a sweep is writing into it).
    workers : int, optional
        Workers of the executor, for the default chunk size (:func:`default_chunk`).

    Returns
    -------
    layout : Layout
    held : StoreLock
        The new store's lock, held.
    """
    import xarray as xr
    import zarr

    from sim import models
    from sim.results import _claim, _make_temp_dir, provenance
    from sim.sweep import design, metrics

    sweep = sc.sweep
    assert sweep is not None
    spec = models.get(sc.model)
    n = values.shape[0]
    chunk = int(sweep.chunk or default_chunk(n, workers))
    names = metrics.metric_names(spec)
    units = metrics.metric_units(spec)
    sweep_id = secrets.token_hex(8)
    coords: dict[str, Any] = {
        "sample": ("sample", np.arange(n, dtype=np.int64), {"long_name": "run"}),
        "metric": ("metric", np.array(names, dtype=object), {"units": " ".join(units)}),
    }
    for j, p in enumerate(sweep.params):
        attrs = {"path": p.path, "units": p.unit, "low": p.low, "high": p.high, "scale": p.scale}
        coords[p.name] = ("sample", np.ascontiguousarray(values[:, j]), attrs)
    outcome_attrs = {
        "long_name": "summary metrics of each run (sim.sweep.metrics)",
        "units_by_metric": _json(dict(zip(names, units))),
    }
    data: dict[str, Any] = {
        "outcome": (
            ("sample", "metric"),
            _unwritten((n, len(names))),
            outcome_attrs,
        ),
    }
    # zstd at level 1: faster than the default level 3 and about as small on these numbers
    codecs = [zarr.codecs.ZstdCodec(level=1)]
    encoding: dict[str, Any] = {
        "outcome": {"chunks": (chunk, len(names)), "compressors": codecs},
    }
    if sweep.trajectory_every:
        from sim import run

        t = run.output_grid(sc.horizon, sweep.trajectory_every)
        coords["time"] = ("time", t, {"units": "day"})
        coords["state"] = ("state", np.array(spec.states, dtype=object))
        data["trajectory"] = (
            ("sample", "time", "state"),
            _unwritten((n, t.size, spec.n_state)),
            {
                "long_name": "model state on a coarse grid",
                "units_by_state": " ".join(spec.state_units),
            },
        )
        encoding["trajectory"] = {
            "chunks": (chunk, t.size, spec.n_state),
            "compressors": codecs,
        }
    attrs = {
        **provenance(sc.text, sc.seed, sc.engine),
        "name": sc.name,
        "model": sc.model,
        "scenario_path": str(sc.path),
        "horizon_days": float(sc.horizon),
        "sweep_id": sweep_id,
        "design": sweep.design,
        "n_base": -1 if sweep.n is None else int(sweep.n),
        "levels": int(sweep.levels),
        "second_order": int(bool(sweep.second_order)),
        "n_samples": int(n),
        "chunk": chunk,
        "params": _json([dataclasses.asdict(p) for p in sweep.params]),
        "param_names": " ".join(p.name for p in sweep.params),
        "outputs": " ".join(sweep.outputs),
        "phase": " ".join(sweep.phase),
        "design_seed_key": design.DESIGN_KEY,
    }
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    root = Path(results_root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp_dir(root, sc.name)
    try:
        ds.to_zarr(
            tmp / STORE,
            zarr_format=3,
            consolidated=False,
            encoding=encoding,
            write_empty_chunks=False,
        )
        (tmp / CHUNKS).mkdir()
        (tmp / "scenario.toml").write_text(sc.text, encoding="utf-8")
        old = root / sc.name
        # a sweep writing into the folder to replace keeps it
        replaced = lock(old) if overwrite and (old / STORE).is_dir() else StoreLock(None)
        held = lock(tmp)  # the descriptor keeps the lock through the rename
        try:
            path = _claim(tmp, root, sc.name, overwrite)
        except BaseException:
            held.release()
            raise
        finally:
            replaced.release()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_layout(path), held


def read_layout(path: str | os.PathLike) -> Layout:
    """The layout of the store in ``path`` (a results folder); ``FileNotFoundError`` if none.

    The attributes are read from the group's ``zarr.json`` (where Zarr v3 keeps them), without
    opening the store through zarr: a worker reads the layout at its first chunk."""
    path = Path(path)
    if not (path / STORE / "zarr.json").is_file():
        raise FileNotFoundError(f"no sweep store in {path} (expected {path / STORE})")
    attrs = _node_metadata(path / STORE).get("attributes")
    if not isinstance(attrs, dict) or "sweep_id" not in attrs:
        import zarr

        attrs = dict(zarr.open_group(path / STORE, mode="r").attrs)
    return Layout(
        path=path,
        sweep_id=str(attrs["sweep_id"]),
        n=int(attrs["n_samples"]),
        chunk=int(attrs["chunk"]),
        scenario_text=str(attrs["scenario"]),
        scenario_path=str(attrs.get("scenario_path", "")),
        attrs=attrs,
    )


def design_values(layout: Layout) -> np.ndarray:
    """The design (n, D) as stored: the swept parameters' coordinates, in the scenario's order."""
    group = zarr_group(layout.path)
    names = str(layout.attrs["param_names"]).split()
    return np.column_stack([np.asarray(group[name][:], dtype=np.float64) for name in names])


def remove_partial_files(layout: Layout) -> int:
    """Delete the temporary files of writes cut off by a kill (zarr's ``*.partial`` chunk files,
    unfinished markers); returns how many. Call only when no writer is at work on the store."""
    files = [*layout.store.rglob("*.partial"), *(layout.path / CHUNKS).glob(".*.tmp-*")]
    for f in files:
        f.unlink(missing_ok=True)
    return len(files)


def _marker_path(path: Path, k: int) -> Path:
    return path / CHUNKS / f"{k:07d}.json"


def markers(path: str | os.PathLike) -> dict[int, dict[str, Any]]:
    """The done markers of a store folder, by chunk (unreadable ones are left out: not done)."""
    out = {}
    folder = Path(path) / CHUNKS
    for f in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
            out[int(rec["chunk"])] = rec
        except (OSError, ValueError, KeyError):
            continue
    return out


def _node_metadata(node: Path) -> dict[str, Any]:
    """The ``zarr.json`` of a Zarr v3 node (group or array), as a dict ({} if unreadable)."""
    try:
        meta = json.loads((node / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


class ChunkFiles:
    """Writes whole ``sample`` chunks of one float64 array of the store straight to their files.

    The sweep's arrays are made by :func:`create` with a layout the Zarr v3 specification fixes
    (https://zarr-specs.readthedocs.io/en/latest/v3/core/index.html): a regular chunk grid
    whose chunks span every dimension but ``sample``, the default chunk-key encoding (chunk
    ``k`` of a 2-D array is the file ``c/k/0``), and the codecs ``bytes`` (little-endian) then
    ``zstd``. A chunk file is then the zstd frame of the chunk's bytes in C order, the last
    chunk padded with the fill value to the full chunk shape. Writing it here costs one
    compression and one file; zarr's synchronous API would add hand-offs to its event-loop and
    codec threads for every chunk, and opening the store through zarr in every worker.

    The file is written as zarr's local store writes it: to ``<key>.<hex>.partial`` beside it,
    then renamed into place, so it is complete or absent (and :func:`remove_partial_files`
    cleans cut-off writes). Tests check that the files are byte for byte the ones zarr writes
    and that zarr reads them back.

    Use :meth:`of`, which gives ``None`` when the array's metadata is anything else (another
    codec, chunk-key encoding, data type or zarr format); the writer then goes through zarr.
    """

    def __init__(self, node: Path, shape: tuple[int, ...], chunk: tuple[int, ...], codec: Any):
        self.node = node
        self.shape = shape
        self.chunk = chunk
        self.codec = codec

    @classmethod
    def of(cls, node: Path, n_chunk: int) -> ChunkFiles | None:
        """The direct writer of the array in folder ``node`` whose chunks are ``n_chunk``
        samples long, or ``None`` if its metadata is not the layout described above."""
        meta = _node_metadata(node)
        try:
            shape = tuple(int(x) for x in meta["shape"])
            grid = meta["chunk_grid"]
            chunk = tuple(int(x) for x in grid["configuration"]["chunk_shape"])
            keys = meta["chunk_key_encoding"]
            codecs = meta["codecs"]
            ok = (
                meta["zarr_format"] == 3
                and meta["node_type"] == "array"
                and meta["data_type"] == "float64"
                and meta["fill_value"] == "NaN"
                and not meta.get("storage_transformers")
                and grid["name"] == "regular"
                and chunk == (n_chunk, *shape[1:])
                and keys["name"] == "default"
                and keys.get("configuration", {}).get("separator", "/") == "/"
                and len(codecs) in (1, 2)
                and codecs[0] == {"name": "bytes", "configuration": {"endian": "little"}}
            )
        except (KeyError, TypeError, ValueError):
            return None
        if not ok:
            return None
        codec = None
        if len(codecs) == 2:
            zstd = codecs[1]
            if zstd.get("name") != "zstd":
                return None
            from numcodecs import Zstd

            conf = zstd.get("configuration", {})
            codec = Zstd(level=int(conf.get("level", 0)), checksum=bool(conf.get("checksum")))
        return cls(node, shape, chunk, codec)

    def encode(self, data: np.ndarray) -> bytes:
        """The bytes of the chunk file holding ``data`` (its first ``len(data)`` samples)."""
        data = np.asarray(data, dtype=np.float64)
        if data.shape[1:] != self.chunk[1:] or data.shape[0] > self.chunk[0]:
            raise ValueError(f"chunk data of shape {data.shape} for chunks of {self.chunk}")
        if data.shape[0] < self.chunk[0]:
            full = np.full(self.chunk, np.nan)
            full[: data.shape[0]] = data
            data = full
        raw = np.ascontiguousarray(data, dtype="<f8").tobytes()
        return raw if self.codec is None else bytes(self.codec.encode(raw))

    def write(self, k: int, data: np.ndarray) -> None:
        """Write chunk ``k`` (samples ``k * chunk ...``), replacing the file atomically."""
        path = self.node.joinpath("c", str(k), *("0" for _ in self.shape[1:]))
        blob = self.encode(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        # the temporary name zarr's local store uses, which remove_partial_files cleans
        _atomic_write(path, blob, path.with_suffix(f".{secrets.token_hex(16)}.partial"))


class Writer:
    """Writes chunks into one store: straight to the chunk files (:class:`ChunkFiles`) when
    the arrays have the layout :func:`create` gives them, else through zarr."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self._zarr: dict[str, Any] = {}
        self.direct: dict[str, ChunkFiles | None] = {}
        for name in ("outcome", "trajectory"):
            node = layout.store / name
            if (node / "zarr.json").is_file():
                self.direct[name] = ChunkFiles.of(node, layout.chunk)

    def _array(self, name: str) -> Any:
        """The zarr array ``name`` (opened at the first write that needs it)."""
        if name not in self._zarr:
            import zarr

            self._zarr[name] = zarr.open_group(self.layout.store, mode="r+")[name]
        return self._zarr[name]

    def _put(self, name: str, k: int, data: np.ndarray) -> None:
        files = self.direct[name]
        if files is not None:
            files.write(k, data)
        else:
            a, b = self.layout.bounds[k]
            self._array(name)[a:b] = data

    def write(
        self,
        k: int,
        outcome: np.ndarray,
        trajectory: np.ndarray | None,
        info: dict[str, Any],
    ) -> dict[str, Any]:
        """Write chunk ``k``: the trajectory, then the metrics with the runs' status (one chunk
        file, replaced atomically), then the marker, which makes the chunk done."""
        a, b = self.layout.bounds[k]
        t0 = time.perf_counter()
        if trajectory is not None and "trajectory" in self.direct:
            self._put("trajectory", k, trajectory)
        self._put("outcome", k, outcome)
        info = {**info, "write_seconds": time.perf_counter() - t0}
        rec = {"chunk": k, "first": a, "stop": b, **info}
        _atomic_write(_marker_path(self.layout.path, k), _json(rec) + "\n")
        return rec


def load_sweep(path: str | os.PathLike, split: bool = True) -> xr.Dataset:
    """Open a sweep's results as an :class:`xarray.Dataset` (loaded into memory).

    Parameters
    ----------
    path : path
        The results folder (``results/<name>/``) or its ``sweep.zarr``.
    split : bool
        Also give every metric as its own variable over ``sample`` (``ds.tfr_24mo``), with its
        units; ``outcome`` stays.

    Returns
    -------
    xarray.Dataset
        The store's variables and coordinates, ``status`` (sample) as int8 codes
        (:data:`STATUS`, 0 for runs not computed yet), and with ``split`` one variable per
        metric.
    """
    import xarray as xr

    path = Path(path)
    store = path if path.name == STORE else path / STORE
    # read straight into memory (chunks=None): through dask, the same load imports distributed
    ds = xr.open_zarr(store, consolidated=False, chunks=None).load()
    code = ds["outcome"].sel(metric="status").drop_vars("metric")
    ds["status"] = code.fillna(STATUS["pending"]).astype(np.int8)
    ds["status"].attrs = {
        "flag_values": " ".join(str(v) for v in STATUS.values()),
        "flag_meanings": " ".join(k.replace(" ", "_") for k in STATUS),
    }
    if split:
        units = json.loads(ds["outcome"].attrs.get("units_by_metric", "{}"))
        for name in ds["metric"].values:
            if name == "status":
                continue
            var = ds["outcome"].sel(metric=name).drop_vars("metric")
            var.attrs = {"units": units.get(str(name), "")}
            ds[str(name)] = var
    return ds


def zarr_group(path: str | os.PathLike) -> zarr.Group:
    """The store's zarr group, read-only."""
    import zarr

    path = Path(path)
    store = path if path.name == STORE else path / STORE
    return zarr.open_group(store, mode="r")
