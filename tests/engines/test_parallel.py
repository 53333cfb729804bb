"""``sim.engines.parallel.threads_for``: at most as many numba threads as a call has iterations,
restored afterwards (also when the call raises)."""

from __future__ import annotations

import numba
import pytest

from sim.engines.parallel import threads_for


def test_threads_for_caps_and_restores():
    old = numba.get_num_threads()
    with threads_for(1) as used:
        assert used == 1 and numba.get_num_threads() == 1
    assert numba.get_num_threads() == old
    with threads_for(10**6) as used:  # never more than there are
        assert used == old and numba.get_num_threads() == old
    with threads_for(0) as used:  # at least one
        assert used == 1
    with pytest.raises(RuntimeError), threads_for(1):
        raise RuntimeError("the kernel failed")
    assert numba.get_num_threads() == old
