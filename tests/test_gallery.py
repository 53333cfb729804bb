"""``cmlsim gallery``: every figure type from the shipped scenarios, with its data, no overlaps."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sim import gallery as gallery_module
from sim.gallery import make_gallery

CORE = {"kinetics", "immune", "trajectory", "comparison", "km", "swimmer", "roc"}
#: Drawn through the sweep and cure modules, when they are installed and work.
GUARDED = {"phase", "indices", "cure"}


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # two scenarios, the smallest sweep and cure
        mp.setattr(gallery_module, "COMPARISON", ("baseline-eln-stop", "ifn-after-stop-12mo"))
        mp.setattr(gallery_module, "SWEEP_N", 4)
        mp.setattr(gallery_module, "CURE_N", 4)
        mp.setattr(gallery_module, "CURE_SCALES", (1e-4, 1e-3))
        return make_gallery(tmp_path_factory.mktemp("gallery"), formats=("pdf",), cohort_size=40)


def test_every_figure_type_with_its_data(gallery):
    names = {e.name for e in gallery.entries}
    assert CORE <= names
    assert names | set(gallery.skipped) == CORE | GUARDED  # each guarded type drawn or skipped
    for e in gallery.entries:
        files = [gallery.out / f for f in e.files]
        assert gallery.out / f"{e.name}.pdf" in files
        tables = [f for f in files if f.suffix == ".csv"]
        assert tables, e.name  # the numbers beside the figure
        for f in files:
            assert f.stat().st_size > 0, f
        pdf = (gallery.out / f"{e.name}.pdf").read_bytes()
        assert b"/FontFile2" in pdf and b"/Type3" not in pdf, e.name


def test_no_overlapping_text_in_any_figure(gallery):
    assert {e.name: e.overlaps for e in gallery.entries} == {e.name: 0 for e in gallery.entries}


def test_no_text_cut_off_in_the_package_figures(gallery):
    # the cure figure is sim.plots.cure's own (checked and reported in index.md, not here)
    mine = [e for e in gallery.entries if e.name in CORE]
    assert {e.name: e.clipped for e in mine} == {e.name: 0 for e in mine}


def _figure_checks():
    # tests/ is not a package: the generic figure checks are loaded from their file
    path = Path(__file__).resolve().parent / "plots" / "figure_checks.py"
    spec = importlib.util.spec_from_file_location("_figure_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_figure_has_letters_matching_legends_and_labelled_axes(gallery):
    checks = _figure_checks()
    problems = {e.name: checks.figure_problems(e.figure) for e in gallery.entries}
    assert problems == {e.name: [] for e in gallery.entries}


def test_index_lists_every_figure(gallery):
    index = (gallery.out / "index.md").read_text(encoding="utf-8")
    for e in gallery.entries:
        assert f"| {e.name} |" in index
    for name, why in gallery.skipped.items():
        assert f"- {name}: {why}" in index


def test_a_failing_guarded_step_is_skipped_and_the_rest_drawn(tmp_path, monkeypatch):
    for step in ("_single_patient", "_comparison", "_cohort", "_sweep"):
        monkeypatch.setattr(gallery_module, step, lambda g, *args: None)

    def broken(g, *args):
        raise RuntimeError("kernel in progress")

    monkeypatch.setattr(gallery_module, "_cure", broken)
    g = make_gallery(tmp_path, formats=("png",))
    assert g.skipped == {"cure": "cure failed: RuntimeError: kernel in progress"}
    assert (tmp_path / "index.md").is_file()
    monkeypatch.setattr(gallery_module, "_cohort", broken)  # a core step fails loudly
    with pytest.raises(RuntimeError):
        make_gallery(tmp_path, formats=("png",))
