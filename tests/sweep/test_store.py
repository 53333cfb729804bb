"""The sweep store's chunk files: written straight to disk (``sim.sweep.store.ChunkFiles``), they
are byte for byte the files zarr writes, zarr reads them back, and any other array layout goes
through zarr."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from sim import scenario
from sim.sweep import design, in_text, store

SCENARIO = """
[scenario]
name = "t-store"
model = "cml_immune"
horizon = "3y"
seed = 11

[patient]
hahnel_patient = 10

[[therapy]]
drug = "imatinib"
dose = "400mg"
every = "1d"
start = "diagnosis"

[protocol]
monitoring = "eln2020"
stop = { at = "2y" }
restart = "loss_of_mmr"

[sweep]
design = "lhs"
n = 23
chunk = 10
trajectory_every = "6mo"

[sweep.params]
patient.s_N = { low = 6.3, high = 42.0, scale = "log" }
protocol.stop.at = { low = "1y", high = "2y" }
"""


def make_store(root: Path) -> store.Layout:
    sc = in_text(scenario.loads(SCENARIO, "t-store.toml"))
    assert sc.sweep is not None
    return store.create(sc, design.design_values(sc.sweep, sc.seed), root)


def chunk_data(layout: store.Layout, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Made-up chunk contents: distinct values, some NaN and infinite, negative zero."""
    a, b = layout.bounds[k]
    g = zarr.open_group(layout.store, mode="r")
    rng = np.random.default_rng(k)
    out = rng.normal(size=(b - a, g["outcome"].shape[1])) * 10.0 ** rng.integers(-300, 300)
    out[:, 0] = store.STATUS["done"]
    out[0, 1], out[-1, 2], out[0, 3] = np.nan, np.inf, -0.0
    traj = rng.lognormal(size=(b - a, *g["trajectory"].shape[1:]))
    return out, traj


def files(layout: store.Layout) -> dict[str, bytes]:
    """Every file of the store (metadata included), by its path in the store."""
    return {
        str(p.relative_to(layout.store)): p.read_bytes()
        for p in sorted(layout.store.rglob("*"))
        if p.is_file()
    }


def test_chunk_files_are_the_files_zarr_writes(tmp_path):
    direct = make_store(tmp_path / "direct")
    via_zarr = make_store(tmp_path / "zarr")
    wd, wz = store.Writer(direct), store.Writer(via_zarr)
    assert all(isinstance(f, store.ChunkFiles) for f in wd.direct.values())
    assert set(wd.direct) == {"outcome", "trajectory"}
    wz.direct = dict.fromkeys(wz.direct)  # force the zarr path
    assert len(direct.bounds) == 3 and direct.bounds[-1] == (20, 23)  # a partial last chunk
    for k in (2, 0, 1):
        out, traj = chunk_data(direct, k)
        wd.write(k, out, traj, {"status": "done"})
        wz.write(k, out, traj, {"status": "done"})
    fd, fz = files(direct), files(via_zarr)
    chunks = sorted(f for f in fd if f.startswith(("outcome/c/", "trajectory/c/")))
    assert chunks == [f"outcome/c/{k}/0" for k in range(3)] + [
        f"trajectory/c/{k}/0/0" for k in range(3)
    ]
    assert sorted(fz) == sorted(fd)
    for name in chunks:
        assert fd[name] == fz[name], name
    # zarr (and xarray) read the direct files back exactly
    g = zarr.open_group(direct.store, mode="r")
    for k in range(3):
        a, b = direct.bounds[k]
        out, traj = chunk_data(direct, k)
        np.testing.assert_array_equal(g["outcome"][a:b], out)
        np.testing.assert_array_equal(g["trajectory"][a:b], traj)
        assert np.signbit(g["outcome"][a, 3])
    ds = store.load_sweep(direct.path)
    assert ds.sizes["sample"] == 23 and np.isinf(ds["outcome"].values[22, 2])
    assert not list(direct.store.rglob("*.partial"))


def test_chunk_file_rejects_data_of_the_wrong_shape(tmp_path):
    layout = make_store(tmp_path)
    files_ = store.Writer(layout).direct["outcome"]
    assert files_ is not None
    n_metric = files_.chunk[1]
    with pytest.raises(ValueError, match="chunk data of shape"):
        files_.encode(np.zeros((11, n_metric)))
    with pytest.raises(ValueError, match="chunk data of shape"):
        files_.encode(np.zeros((10, n_metric + 1)))


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m["codecs"][1].update(name="gzip", configuration={"level": 1}),
        lambda m: m["chunk_key_encoding"].update(name="v2"),
        lambda m: m["chunk_key_encoding"]["configuration"].update(separator="."),
        lambda m: m.update(data_type="float32"),
        lambda m: m["codecs"][0]["configuration"].update(endian="big"),
        lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[5, 30]),
        lambda m: m.update(storage_transformers=[{"name": "x"}]),
        lambda m: m.pop("codecs"),
    ],
)
def test_other_layouts_are_not_written_directly(tmp_path, change):
    layout = make_store(tmp_path)
    node = layout.store / "outcome"
    meta = json.loads((node / "zarr.json").read_text())
    change(meta)
    (node / "zarr.json").write_text(json.dumps(meta))
    assert store.ChunkFiles.of(node, layout.chunk) is None


def test_writer_falls_back_to_zarr_for_another_codec(tmp_path):
    """A store whose outcome is compressed otherwise (rewritten by zarr with gzip) is still
    written correctly, through zarr."""
    layout = make_store(tmp_path)
    g = zarr.open_group(layout.store, mode="r+")
    old = g["outcome"]
    attrs = dict(old.attrs)
    shape, chunks = old.shape, old.chunks
    shutil.rmtree(layout.store / "outcome")
    new = zarr.create_array(
        layout.store,
        name="outcome",
        shape=shape,
        chunks=chunks,
        dtype="float64",
        fill_value=np.nan,
        compressors=zarr.codecs.GzipCodec(level=1),
        dimension_names=("sample", "metric"),
    )
    new.attrs.update(attrs)
    w = store.Writer(layout)
    assert w.direct["outcome"] is None and w.direct["trajectory"] is not None
    out, traj = chunk_data(layout, 2)
    rec = w.write(2, out, traj, {"status": "done"})
    assert rec["first"] == 20 and rec["stop"] == 23 and rec["write_seconds"] >= 0
    g = zarr.open_group(layout.store, mode="r")
    np.testing.assert_array_equal(g["outcome"][20:23], out)
    np.testing.assert_array_equal(g["trajectory"][20:23], traj)
    assert np.isnan(g["outcome"][:20]).all()


def test_layout_and_design_are_read_without_zarr_as_zarr_reads_them(tmp_path):
    layout = make_store(tmp_path)
    attrs = dict(zarr.open_group(layout.store, mode="r").attrs)
    assert layout.attrs == attrs and layout.n == 23 and layout.chunk == 10
    sc = scenario.loads(layout.scenario_text)
    assert sc.sweep is not None
    np.testing.assert_array_equal(
        store.design_values(layout), design.design_values(sc.sweep, sc.seed)
    )
