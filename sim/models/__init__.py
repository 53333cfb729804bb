"""Model registry: every model the engines can run, by name."""

from __future__ import annotations

import functools

from sim.models.base import ModelSpec
from sim.params import did_you_mean


@functools.cache
def _registry() -> dict[str, ModelSpec]:
    import sim

    sim._let_numba_find_blas()  # the models bring numba in: make its start cheap first
    from sim.models import cml_immune

    return {cml_immune.SPEC.name: cml_immune.SPEC}


def names() -> tuple[str, ...]:
    """Names of the registered models."""
    return tuple(_registry())


def get(name: str) -> ModelSpec:
    """The model registered as ``name``; ``KeyError`` with a did-you-mean otherwise."""
    reg = _registry()
    if name not in reg:
        raise KeyError(f"unknown model {name!r}{did_you_mean(name, reg)}; known: {', '.join(reg)}")
    return reg[name]


__all__ = ["ModelSpec", "get", "names"]
