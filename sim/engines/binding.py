"""Bind a model to the ODE kernels so numba's on-disk cache works for every model.

numba does not reuse its cache for a jitted function that receives another jitted function as an
argument (each new process would recompile). The kernels in :mod:`sim.engines.ode` therefore call
the model's ``rhs`` and ``readout`` as module globals, bound by one import line marked
``# model-binding``. That module is the kernel of ``cml_immune``. For any other model, this module
writes a copy of ``ode.py`` whose binding line imports from the model's module instead, into a
per-user cache directory, and imports it; the file is rewritten only when its text changes, so
numba's cache (keyed on the file and its modification time) stays valid across processes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from sim.models.base import ModelSpec

_BOUND = "sim.models.cml_immune"
_MARK = "# model-binding"
_loaded: dict[str, ModuleType] = {}


def kernel_dir() -> Path:
    """Where generated kernel modules live (``$CMLSIM_KERNEL_DIR`` or the user cache)."""
    env = os.environ.get("CMLSIM_KERNEL_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cmlsim" / "kernels"


def kernel_source(module: str) -> str:
    """Text of the ODE kernel module bound to the model defined in ``module``."""
    src = (Path(__file__).with_name("ode.py")).read_text(encoding="utf-8")
    lines = src.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.rstrip().endswith(_MARK)]
    if len(hits) != 1:
        raise RuntimeError("sim/engines/ode.py must have exactly one '# model-binding' import line")
    lines[hits[0]] = f"from {module} import N_STATE, readout, rhs  {_MARK}\n"
    return "".join(lines)


def kernels(model: ModelSpec) -> ModuleType:
    """The kernel module for ``model`` (``sim.engines.ode`` itself for ``cml_immune``)."""
    if model.module == _BOUND:
        from sim.engines import ode

        return ode
    if model.module in _loaded:
        return _loaded[model.module]
    text = kernel_source(model.module)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    name = f"cmlsim_ode_{model.module.replace('.', '_')}_{digest}"
    folder = kernel_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        # atomic: concurrent workers never import a half-written file
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _loaded[model.module] = module
    return module
