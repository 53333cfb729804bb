"""Publication figures: the package style and the single-patient trajectory figure.

Importing this package does not import matplotlib; the submodules do, when used:

- :mod:`sim.plots.style`: ``use_style(kind)``, ``figsize(width, height_mm)``, the Okabe–Ito palette.
- :mod:`sim.plots.trajectory`: ``plot_trajectory(result, path_stem)`` and ``check_no_overlap(fig)``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "use_style": "sim.plots.style",
    "figsize": "sim.plots.style",
    "plot_trajectory": "sim.plots.trajectory",
    "check_no_overlap": "sim.plots.trajectory",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
