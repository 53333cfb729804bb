"""Benchmarks of the ODE engine: the asv suite (``bench_*.py``, run with ``asv run``) and a
one-shot comparison against SciPy (``python -m benchmarks.compare``)."""
