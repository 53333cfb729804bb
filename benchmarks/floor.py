"""The physical floor of an agent update: one random number and one branch per agent, in numba.

An agent-based step does at least this per agent: draw a uniform number and compare it with a
fate probability, and write the agent's new state. :func:`death_step` does exactly that with an
inlined xoshiro256** generator (Blackman & Vigna, ACM TOMS 2021; the generator of
``sim.engines.rng``, written out here so the floor does not move when the engines change) over a
``uint8`` array of alive flags. Its time per agent is the floor the agent engine's
ns-per-agent-update is compared with (``python -m benchmarks.scaling`` draws it).

asv: ``Floor.track_ns_per_agent_update`` (parametrised by the number of agents) and
``Floor.time_step``.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
from numba import njit, uint64

_M53 = 1.0 / 9007199254740992.0


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << uint64(k)) | (x >> uint64(64 - k))


@njit(cache=True)
def death_step(alive: np.ndarray, state: np.ndarray, p_death: float) -> int:
    """One step over all agents: each alive agent dies with probability ``p_death``.

    Parameters
    ----------
    alive : ndarray of uint8
        1 = alive; changed in place.
    state : ndarray of uint64, shape (4,)
        xoshiro256** state; advanced in place (never all zero).
    p_death : float
        Per-step death probability.

    Returns
    -------
    int
        Agents alive after the step.
    """
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    n_alive = 0
    for i in range(alive.size):
        # xoshiro256**: output rotl(5 s1, 7) * 9, then the xorshift update of the state
        r = _rotl(s1 * uint64(5), 7) * uint64(9)
        t = s1 << uint64(17)
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl(s3, 45)
        u = float(r >> uint64(11)) * _M53
        a = alive[i] & np.uint8(u >= p_death)
        alive[i] = a
        n_alive += a
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return n_alive


def seed_state(seed: int = 1) -> np.ndarray:
    """A xoshiro256** state from ``numpy.random.SeedSequence(seed)``."""
    return np.random.SeedSequence(seed).generate_state(4, np.uint64)


def ns_per_agent_update(
    n_agents: int, steps: int = 20, repeats: int = 5, p_death: float = 1e-9
) -> float:
    """Median over ``repeats`` of the ns per agent of :func:`death_step` (compile excluded).

    ``p_death`` is tiny so that the population stays full and every step touches every agent.
    """
    alive = np.ones(int(n_agents), dtype=np.uint8)
    state = seed_state()
    death_step(alive, state, p_death)  # compile or load from cache
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            death_step(alive, state, p_death)
        out.append((time.perf_counter() - t0) / (steps * alive.size) * 1e9)
    return float(np.median(out))


class Floor:
    """Time per agent of the minimal random-number loop, by population size."""

    params: ClassVar[list] = [10_000, 1_000_000]
    param_names: ClassVar[list] = ["agents"]

    def setup(self, agents):
        self.alive = np.ones(agents, dtype=np.uint8)
        self.state = seed_state()
        death_step(self.alive, self.state, 1e-9)  # JIT warm-up

    def time_step(self, agents):
        death_step(self.alive, self.state, 1e-9)

    def track_ns_per_agent_update(self, agents):
        return ns_per_agent_update(agents, steps=10, repeats=3)

    track_ns_per_agent_update.unit = "ns/agent-update"
