"""A sphinx-gallery image scraper for cmlsim's figures.

``sim.plots`` builds :class:`matplotlib.figure.Figure` objects without ``pyplot`` (so nothing
depends on a display or on global state), which the default matplotlib scraper cannot see. This
one takes every Figure bound to a name in the example's globals, once, in the order they appear.
"""

from __future__ import annotations

from typing import Any


def scrape_figures(block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
    from matplotlib.figure import Figure
    from sphinx_gallery.scrapers import figure_rst

    seen = block_vars.setdefault("cmlsim_seen_figures", set())
    paths = []
    for value in list(block_vars["example_globals"].values()):
        if isinstance(value, Figure) and id(value) not in seen:
            seen.add(id(value))
            path = next(block_vars["image_path_iterator"])
            value.savefig(path, dpi=150)
            paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])


def _get_sg_image_scraper():
    return scrape_figures
