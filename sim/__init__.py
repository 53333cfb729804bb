"""cmlsim: chronic myeloid leukemia under TKI therapy with the immune system in the loop.

Import is light: numba kernels compile (or load from the on-disk cache) at first use, and heavy
optional dependencies (xarray, matplotlib, mesa) are imported only where they are needed.
"""

__version__ = "0.1.0"


def _let_numba_find_blas() -> None:
    """Load ``scipy.linalg.cython_blas`` without its package, before numba's first kernel.

    At its first compilation or cache load numba imports ``scipy.linalg.cython_blas``, only to
    check that BLAS is there (``numba.np.arraymath``; our kernels call no BLAS or LAPACK: RODAS4
    solves its 5 x 5 systems with its own LU). Through the package that import runs
    ``scipy/linalg/__init__.py``, whose array-API layer touches every lazy submodule of numpy
    (``numpy.f2py``, ``numpy.testing``, ...), a noticeable part of the start-up of ``cmlsim
    run``. The extension module needs nothing from its package, so it is loaded
    alone under its full name; numba's check finds it in ``sys.modules``, and a later
    ``import scipy.linalg`` finds it there too and proceeds as usual. Anything unexpected
    (another scipy layout, numba already started) leaves numba to import it itself.
    """
    import sys

    name = "scipy.linalg.cython_blas"
    if name in sys.modules or "scipy.linalg" in sys.modules or "numba.np.arraymath" in sys.modules:
        return
    try:
        import importlib.machinery
        import importlib.util
        import os

        import scipy

        spec = importlib.machinery.PathFinder.find_spec(
            name, [os.path.join(path, "linalg") for path in scipy.__path__]
        )
        if spec is None:
            return
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except Exception:  # numba then imports it the usual way
        sys.modules.pop(name, None)
