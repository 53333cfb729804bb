"""Publication figures: the package style and every figure type of cmlsim.

Importing this package does not import matplotlib; the submodules do, when used:

- :mod:`sim.plots.style`: ``use_style(kind)`` (nature | blood | poster), ``figsize(width,
  height_mm)`` (journal column widths), the Okabe–Ito palette; TrueType fonts in PDF and SVG.
- :mod:`sim.plots.kinetics`: ``plot_kinetics(result, path_stem)``, BCR-ABL1 on a log axis with
  MR lines, qPCR points and detection limits, TKI and intervention bars.
- :mod:`sim.plots.immune`: ``plot_immune(result, path_stem)``, T cells, NK cells, exhaustion and
  the therapy drive.
- :mod:`sim.plots.trajectory`: ``plot_trajectory(result, path_stem)`` (both in one figure),
  ``check_no_overlap(fig)``, ``check_text_inside(fig)``, ``save_figure`` and ``save_with_data``.
- :mod:`sim.plots.compare`: ``plot_comparison(results)``, scenarios of one patient side by side.
- :mod:`sim.plots.cohort`: ``plot_km``, ``plot_swimmer``, ``plot_roc``.
- :mod:`sim.plots.render`: ``render(folder)``, the figures of a results folder
  (``cmlsim plot``); :mod:`sim.gallery` draws every type from the shipped scenarios.

Every ``plot_*`` function builds the figure at its print size and, given ``path_stem``, writes
``<stem>.<fmt>`` and the plotted numbers as ``<stem>_data.csv`` (and ``<stem>_<table>.csv``).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "use_style": "sim.plots.style",
    "figsize": "sim.plots.style",
    "plot_kinetics": "sim.plots.kinetics",
    "plot_immune": "sim.plots.immune",
    "plot_trajectory": "sim.plots.trajectory",
    "check_no_overlap": "sim.plots.trajectory",
    "check_text_inside": "sim.plots.trajectory",
    "plot_comparison": "sim.plots.compare",
    "plot_km": "sim.plots.cohort",
    "plot_swimmer": "sim.plots.cohort",
    "plot_roc": "sim.plots.cohort",
    "render": "sim.plots.render",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
