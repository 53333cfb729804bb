"""Ctrl-C on the command line while compiled code runs.

Python acts on SIGINT only between two bytecodes of the main thread: its C-level handler merely
sets a flag, and the interpreter raises :class:`KeyboardInterrupt` when it next runs Python code.
A numba kernel in nopython mode holds the GIL and does not return to the interpreter until it
ends, so Ctrl-C during a long kernel call (or during one that never ends) is recorded and not
acted on until the call is over.

:func:`exit_on_sigint` therefore replaces, for the duration of a computation that writes no
file, the SIGINT handler with a native one that writes one line to stderr and ends the process
at once with ``_exit(130)``. Nothing is half-written because the commands write their results
only after the computation. The native handler is two calls (``write``, ``_exit``) compiled
with llvmlite, the code generator numba itself uses, when the context is entered; it leaves
every kernel as it is, so results and numba's on-disk cache are unaffected. Outside the context
Python's own handler is back, and Ctrl-C raises :class:`KeyboardInterrupt` as usual.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator

__all__ = ["EXIT_INTERRUPTED", "exit_on_sigint"]

#: Exit code after Ctrl-C (128 + SIGINT, what a shell reports for a process ended by SIGINT).
EXIT_INTERRUPTED = 130

# Compiled handlers by message; each entry keeps its execution engine and message buffer alive
# for as long as the process runs, since the kernel may call the handler at any time.
_HANDLERS: dict[bytes, tuple[int, object, object]] = {}


def _native_handler(message: bytes) -> int:
    """Address of a ``void handler(int)`` that writes ``message`` to fd 2 and calls ``_exit``."""
    if message in _HANDLERS:
        return _HANDLERS[message][0]
    import llvmlite.binding as llvm
    import llvmlite.ir as ir

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    libc = ctypes.CDLL(None)
    write = ctypes.cast(libc.write, ctypes.c_void_p).value
    exit_ = ctypes.cast(libc._exit, ctypes.c_void_p).value
    buf = ctypes.create_string_buffer(message, len(message))
    i32, i64, ptr = ir.IntType(32), ir.IntType(64), ir.IntType(8).as_pointer()
    module = ir.Module(name="cmlsim_sigint")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [i32]), name="cmlsim_sigint")
    b = ir.IRBuilder(fn.append_basic_block())
    write_t = ir.FunctionType(i64, [i32, ptr, i64]).as_pointer()
    exit_t = ir.FunctionType(ir.VoidType(), [i32]).as_pointer()
    text = b.inttoptr(ir.Constant(i64, ctypes.addressof(buf)), ptr)
    size = ir.Constant(i64, len(message))
    b.call(b.inttoptr(ir.Constant(i64, write), write_t), [ir.Constant(i32, 2), text, size])
    b.call(b.inttoptr(ir.Constant(i64, exit_), exit_t), [ir.Constant(i32, EXIT_INTERRUPTED)])
    b.unreachable()
    parsed = llvm.parse_assembly(str(module))
    parsed.verify()
    machine = llvm.Target.from_default_triple().create_target_machine()
    engine = llvm.create_mcjit_compiler(parsed, machine)
    engine.finalize_object()
    address = engine.get_function_address("cmlsim_sigint")
    _HANDLERS[message] = (address, engine, buf)
    return address


@contextlib.contextmanager
def exit_on_sigint(command: str) -> Iterator[bool]:
    """Make Ctrl-C end the process at once, even inside a numba kernel.

    Parameters
    ----------
    command : str
        Prefix of the line written to stderr (``"cmlsim run"`` gives
        ``cmlsim run: interrupted``).

    Yields
    ------
    bool
        True when the native handler is installed. It is not (and Ctrl-C keeps Python's
        behaviour) outside the main thread, on a platform without POSIX signals, when SIGINT is
        ignored or handled by other Python code, or when the handler cannot be built.

    Notes
    -----
    Use it only around computations that write no file and need no cleanup: on Ctrl-C no
    ``finally`` block runs. Buffered output is flushed on entry so that no printed line is lost.
    """
    installed = False
    previous = None
    if (
        os.name == "posix"
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        prefix = "\n" if sys.stderr.isatty() else ""
        try:
            address = _native_handler(f"{prefix}{command}: interrupted\n".encode())
            libc = ctypes.CDLL(None)
            libc.signal.restype = ctypes.c_void_p
            libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
        except Exception:  # no llvmlite target or libc symbol: keep Python's handler
            address = 0
        if address:
            previous = signal.getsignal(signal.SIGINT)
            sys.stdout.flush()
            sys.stderr.flush()
            installed = libc.signal(signal.SIGINT, address) != ctypes.c_void_p(-1).value
    try:
        yield installed
    finally:
        if installed:
            # Python's signal.signal reinstalls its own C-level handler with sigaction.
            signal.signal(signal.SIGINT, previous)
