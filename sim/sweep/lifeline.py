"""Worker processes that end with the sweep that started them.

The ``processes`` executor (:mod:`sim.sweep.execute`) makes a tree of processes: the main
process, multiprocessing's fork server and resource tracker (children of the main process), and
the workers (children of the fork server). Multiprocessing stops none of them when the main
process is killed: the workers wait for tasks on a queue whose write end they hold themselves,
the fork server waits for the end of a pipe the workers hold open, and the resource tracker for
the end of a pipe the fork server and the workers hold open. All of them hold the main process's
standard output, so a program reading that output to its end would wait for good.

Two mechanisms end them:

- on Linux, :func:`die_with_parent` (``prctl(PR_SET_PDEATHSIG, SIGKILL)``): Linux kills the
  fork server when the main process dies and each worker when the fork server dies;
- everywhere, a :class:`Lifeline`: a pipe whose only writer is the main process. A thread in
  each worker waits on its read end and ends the worker at end-of-file, that is when the main
  process is gone (between two kernel calls: a kernel call holds the interpreter lock).

The resource tracker then reads the end of its pipe and exits on its own.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

__all__ = ["ENV", "Lifeline", "arm_fork_server", "die_with_parent", "hold"]

#: Environment variable giving a fork server the pid of the sweep's main process (its parent).
ENV = "CMLSIM_SWEEP_PARENT"

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> bool:
    """Have Linux kill this process (SIGKILL) when its parent process dies.

    Linux only: the signal comes when the *thread* that started this process ends, so call it
    only in a process started by a thread that lives as long as its parent (the main thread, or
    a single-threaded parent such as the fork server).

    Parameters
    ----------
    parent : int, optional
        The pid the parent should have. If this process already has another parent, the parent
        died before this call could take effect, and the process exits at once.

    Returns
    -------
    bool
        Whether Linux will send the signal (False where ``prctl`` is not available).
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if parent is not None and os.getppid() != parent:
        os._exit(1)
    return armed


def arm_fork_server() -> bool:
    """In a fork server started by a sweep (:data:`ENV` holds its parent's pid): die with the
    sweep's main process. Does nothing in any other process. Starts no thread (the fork server
    must be able to fork)."""
    value = os.environ.get(ENV, "")
    if not value.isdigit():
        return False
    return die_with_parent(int(value))


class Lifeline:
    """A pipe from the main process to its workers; the workers end when it closes.

    Make it in the main process before the workers start, give :attr:`reader` to each worker
    (it pickles as multiprocessing connections do, to processes being started) and call
    :func:`hold` there. :meth:`cut` closes the write end: every worker still alive ends. The
    write end is never inherited, so it closes when the main process dies, however it dies.
    """

    def __init__(self, ctx: Any):
        self.reader, self._writer = ctx.Pipe(duplex=False)

    def cut(self) -> None:
        """Close the write end: the workers end (between two kernel calls)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.reader.close()


def _watch(reader: Any) -> None:
    try:
        reader.recv_bytes()  # nothing is ever sent: this returns only at end-of-file
    except (EOFError, OSError):
        pass
    os._exit(1)


def hold(reader: Any) -> None:
    """In a worker: end this process when the main process closes its :class:`Lifeline` (or
    dies). Starts a daemon thread."""
    threading.Thread(target=_watch, args=(reader,), name="cmlsim-lifeline", daemon=True).start()
