"""What a model is: state names, a parameter table, a jitted right-hand side and a readout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.params import ParamTable


@dataclass(frozen=True)
class ModelSpec:
    """A model as data plus jitted functions; engines take any spec.

    Attributes
    ----------
    name : str
        Registry name (``cml_immune``).
    module : str
        Dotted module that defines ``rhs``, ``readout`` and ``N_STATE`` at top level. The ODE engine
        binds these as module globals of its kernels (numba cannot cache a function that receives
        another jitted function as an argument; see ``sim.engines.binding``).
    states : tuple of str
        State names, in vector order.
    state_units : tuple of str
        Unit of each state.
    params : ParamTable
        Parameters with units, defaults, bounds, meaning and source.
    initial_state : callable
        ``initial_state(p) -> ndarray`` with the state at diagnosis (t = 0) for parameter vector p.
    description : str
        One paragraph for ``cmlsim models``.
    reference : str
        Citation of the model.
    """

    name: str
    module: str
    states: tuple[str, ...]
    state_units: tuple[str, ...]
    params: ParamTable
    initial_state: Callable[[np.ndarray], np.ndarray]
    description: str
    reference: str
    presets: dict | None = None
    atol_scale: tuple[float, ...] | None = None
    #: ``readout_array(y, p)``: the readout of every row of a (n_t, n_state) trajectory at once.
    #: Written element-wise in the parameters (``p[K]`` only), it also takes ``P.T`` for a
    #: (n_param, m) matrix of one parameter vector per row, which the sweep's metrics use.
    readout_array: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    def atol(self, rtol: float) -> np.ndarray:
        """Absolute tolerance per state: ``rtol * atol_scale`` (the size below which a state's
        relative accuracy stops mattering)."""
        scale = self.atol_scale or (1.0,) * self.n_state
        return rtol * np.asarray(scale, dtype=np.float64)

    @property
    def n_state(self) -> int:
        return len(self.states)

    def format(self) -> str:
        """Human-readable description with the parameter table (what ``cmlsim models`` prints)."""
        lines = [
            f"{self.name}: {self.description}",
            f"  reference: {self.reference}",
            "  states: " + ", ".join(f"{s} [{u}]" for s, u in zip(self.states, self.state_units)),
        ]
        if self.presets:
            for key, values in self.presets.items():
                lines.append(
                    f"  preset {key!r}: " + ", ".join(f"{k}={v:g}" for k, v in values.items())
                )
        lines.append("")
        lines.append(self.params.format())
        return "\n".join(lines)
