"""Ctrl-C inside compiled code (:mod:`sim.interrupt`).

A child process enters a numba loop that runs for hours; the test sends SIGINT once the child
says it is in the loop, and checks how the child ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from sim.interrupt import EXIT_INTERRUPTED, exit_on_sigint

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

#: How long a child may take to end after SIGINT (the handler ends it at once; margin for a
#: loaded machine).
STOP_WITHIN_S = 2.0

_CHILD = """
import contextlib, sys
import numpy as np
from numba import njit
from sim.interrupt import exit_on_sigint

@njit
def spin(n):  # a xorshift walk: no closed form, so the loop really runs n times
    x = np.uint64(88172645463325252)
    for _ in range(n):
        x ^= x << np.uint64(13)
        x ^= x >> np.uint64(7)
        x ^= x << np.uint64(17)
    return x

spin(10)  # compiled before the block
guard = exit_on_sigint("spin") if sys.argv[1] == "guard" else contextlib.nullcontext()
with guard:
    print("in the loop", flush=True)
    spin(10**15)
print("finished", flush=True)
"""


def start_child(mode: str) -> subprocess.Popen:
    """The child above, once it has printed that it is in the loop."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_CHILD), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the child is in the loop
    assert line == "in the loop\n", proc.stderr.read() if proc.stderr else line
    time.sleep(0.2)  # from print() into the kernel
    return proc


def test_sigint_ends_a_kernel_call_at_once():
    proc = start_child("guard")
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=STOP_WITHIN_S)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED == 130
    assert err == "spin: interrupted\n"
    assert "finished" not in out


def test_without_the_handler_sigint_waits_for_the_kernel():
    """Why the module exists: Python's own handler is not reached while the kernel runs."""
    proc = start_child("plain")
    proc.send_signal(signal.SIGINT)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.communicate(timeout=STOP_WITHIN_S)
    finally:
        proc.kill()
        proc.communicate()


def test_python_handler_is_back_after_the_block():
    with exit_on_sigint("test") as installed:
        assert installed
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # as Python sees it
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):  # the handler runs between two bytecodes
            time.sleep(0.01)


def test_left_alone_when_sigint_is_ignored_or_handled():
    seen = []
    for handler in (signal.SIG_IGN, lambda signum, frame: seen.append(signum)):
        old = signal.signal(signal.SIGINT, handler)
        try:
            with exit_on_sigint("test") as installed:
                assert not installed
            assert signal.getsignal(signal.SIGINT) is handler
        finally:
            signal.signal(signal.SIGINT, old)


def test_left_alone_outside_the_main_thread():
    result = []

    def body() -> None:
        with exit_on_sigint("test") as installed:
            result.append(installed)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert result == [False]
