"""Sphinx configuration of the cmlsim manual.

Build it with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` from the repository
root (``pip install -e ".[docs]"`` first).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
# The tutorials draw figures headless; the generated help has a fixed width.
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["COLUMNS"] = "100"

import sim  # noqa: E402

project = "cmlsim"
author = "cmlsim developers"
copyright = "cmlsim developers"
version = release = sim.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "cmlsim_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "performance/*.md", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()
autodoc_member_order = "bysource"
autodoc_typehints = "none"

sphinx_gallery_conf = {
    "examples_dirs": str(HERE / "examples"),
    "gallery_dirs": "tutorials",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    # sim.plots draws without pyplot: sg_figures finds the Figure objects an example made.
    "image_scrapers": ("sg_figures",),
}

html_theme = "alabaster"
html_title = f"cmlsim {release}"
html_static_path: list[str] = []
