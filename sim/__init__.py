"""cmlsim: chronic myeloid leukemia under TKI therapy with the immune system in the loop.

Import is light: numba kernels compile (or load from the on-disk cache) at first use, and heavy
optional dependencies (xarray, matplotlib, mesa) are imported only where they are needed.
"""

__version__ = "0.1.0"
