"""Stopping a sweep: a killed main process leaves no process behind, Ctrl-C stops it at once with
a resume command that repeats its options, and a store takes one writer at a time."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sim import scenario
from sim.cli import main
from sim.sweep import markers, run_sweep
from sim.sweep.store import LOCK, lock

if not sys.platform.startswith("linux"):
    pytest.skip("process-tree checks written for Linux", allow_module_level=True)

SCENARIO = """
[scenario]
name = "{name}"
model = "cml_immune"
horizon = "8y"
seed = 11

[patient]
hahnel_patient = 10

[[therapy]]
drug = "imatinib"
dose = "400mg"
every = "1d"
start = "diagnosis"

[protocol]
monitoring = "eln2020"
stop = {{ at = "3y" }}
restart = "loss_of_mmr"

[sweep]
design = "lhs"
n = {n}
chunk = {chunk}

[sweep.params]
patient.s_N = {{ low = 6.3, high = 42.0, scale = "log" }}
protocol.stop.at = {{ low = "2y", high = "4y" }}
"""

#: Long enough that the sweep is still running when the test stops it (tens of seconds).
LONG = {"n": 40_000, "chunk": 50}


def write(tmp_path: Path, name: str, n: int = 40, chunk: int = 10) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SCENARIO.format(name=name, n=n, chunk=chunk), encoding="utf-8")
    return path


def start(path: Path, root: Path, *extra: str) -> subprocess.Popen:
    """``cmlsim sweep`` in its own session, on two worker processes."""
    cmd = [sys.executable, "-m", "sim.cli", "sweep", str(path), "--results", str(root)]
    return subprocess.Popen(
        [*cmd, "--workers", "2", "--quiet", "--no-figure", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def running(proc: subprocess.Popen, out: Path) -> list[psutil.Process]:
    """Wait until the workers have written a chunk; the sweep's descendants then."""
    deadline = time.monotonic() + 300  # the first numba compile in a fresh checkout
    while not markers(out):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the sweep did not start"
        time.sleep(0.02)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 3, children  # fork server, resource tracker, workers
    return children


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_gone(procs: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    """The processes still alive (zombies count as gone) after at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while alive(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(procs)


def read_to_end(stream, seconds: float) -> bytes | None:
    """All of ``stream`` if it reaches its end within ``seconds``, else None."""
    import selectors

    data = b""
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if sel.select(left):
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    return data
                data += chunk
    return None


def kill_session(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def test_sigkill_of_the_main_process_leaves_no_process(tmp_path):
    root = tmp_path / "res"
    proc = start(write(tmp_path, "t-kill9", **LONG), root)
    try:
        children = running(proc, root / "t-kill9")
        os.kill(proc.pid, signal.SIGKILL)  # the main process only: the others must notice
        proc.wait()
        left = wait_gone(children, 5.0)
        assert not left, [(p.pid, p.cmdline()[-1][:60]) for p in left]
        # nothing holds the sweep's output open any more
        assert read_to_end(proc.stdout, 5.0) is not None
        assert read_to_end(proc.stderr, 5.0) is not None
    finally:
        kill_session(proc)


@pytest.mark.parametrize(
    ("group", "executor"),
    [(True, "processes"), (False, "processes"), (True, "dask")],
    ids=["ctrl-c", "main-only", "ctrl-c-dask"],
)
def test_sigint_stops_the_sweep_within_2_s_with_a_resume_command(tmp_path, group, executor):
    root = tmp_path / "my results"  # a folder the resume command has to quote
    path = write(tmp_path, "t-int", **LONG)
    proc = start(path, root, "--executor", executor)
    out = root / "t-int"
    try:
        children = running(proc, out)
        t0 = time.monotonic()
        # a terminal's Ctrl-C signals the whole foreground process group
        (os.killpg if group else os.kill)(proc.pid, signal.SIGINT)
        proc.wait(timeout=10)
        took = time.monotonic() - t0
        assert not wait_gone(children, 5.0)
    finally:
        kill_session(proc)
    err = proc.stderr.read().decode()
    assert proc.returncode == 130, err
    assert took < 2.0, took
    assert "Traceback" not in err and "leaked" not in err, err
    hint = next(line for line in err.splitlines() if line.startswith("cmlsim sweep: interrupted"))
    cmd = shlex.split(hint.split("continue with ", 1)[1])
    assert cmd[:3] == ["cmlsim", "sweep", str(path)]
    opts = cmd[3:]
    assert "--resume" in opts and "--overwrite" not in opts
    assert opts[opts.index("--results") + 1] == str(root)
    assert opts[opts.index("--workers") + 1] == "2"
    assert "--quiet" in opts and "--no-figure" in opts
    # an option given at its default value may be left out
    assert executor == "processes" or opts[opts.index("--executor") + 1] == executor
    # stopped amid the sweep, its lock free: --resume takes it from there
    recs = markers(out)
    assert 0 < len(recs) < LONG["n"] // LONG["chunk"]
    assert {rec["status"] for rec in recs.values()} == {"done"}
    with lock(out):
        pass


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_stale_lock(tmp_path, capsys):
    path = write(tmp_path, "t-lock")
    root = tmp_path / "res"
    done = run_sweep(scenario.load(path), results_root=root, executor="serial", analysis=False)
    folder = done.path
    assert (folder / LOCK).is_file()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from sim.sweep.store import lock\n"
            f"held = lock({str(folder)!r})\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert holder.stdout.readline() == b"held\n"
        args = ["sweep", str(path), "--results", str(root), "--executor", "serial", "--quiet"]
        for flag in ("--resume", "--overwrite"):
            t0 = time.monotonic()
            code = main([*args, flag, "--no-figure"])
            took = time.monotonic() - t0
            err = capsys.readouterr().err
            assert code == 2, err
            lines = err.strip().splitlines()
            assert len(lines) == 1 and len(lines[0]) <= 300, lines
            assert str(folder) in lines[0] and f"pid {holder.pid}" in lines[0], lines[0]
            assert "in use by another sweep" in lines[0]
            assert took < 10, took  # refused at once, before any computing
        assert markers(folder) == markers(done.path)  # nothing touched
    finally:
        holder.kill()  # the operating system releases its lock
        holder.wait()
    assert main([*args, "--resume", "--no-figure"]) == 0
    with lock(folder):  # free again once the resume is over
        pass


def test_a_worker_ends_when_its_lifeline_is_cut():
    """The portable fallback: without prctl, a worker ends when the main process's end of the
    lifeline closes (here cut by hand), even while it waits for a task or sleeps in one."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from sim.sweep.lifeline import Lifeline, hold

    ctx = multiprocessing.get_context("spawn")
    line = Lifeline(ctx)
    pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=hold, initargs=(line.reader,))
    try:
        assert pool.submit(os.getpid).result(timeout=60) != os.getpid()  # started
        task = pool.submit(time.sleep, 600)
        line.cut()
        with pytest.raises(BrokenProcessPool):
            task.result(timeout=20)
    finally:
        for proc in pool._processes.values():  # a worker that did not end: no 600 s wait
            proc.kill()
        pool.shutdown(cancel_futures=True)


def test_the_resume_command_repeats_every_option_given():
    """Every option of ``cmlsim sweep`` given a value other than its default comes back in the
    resume command (an option added later too), with --resume for --overwrite."""
    from sim.cli import _sweep_resume_command, build_parser

    parser = build_parser()
    sweep = parser._subparsers._group_actions[0].choices["sweep"]
    argv = ["sweep", "my scenario.toml"]
    for action in sweep._actions:
        if not action.option_strings or action.dest in ("help", "resume"):
            continue
        if action.nargs == 0:
            argv.append(action.option_strings[-1])
        elif action.choices:
            argv += [
                action.option_strings[-1],
                next(c for c in action.choices if c != action.default),
            ]
        elif action.type is int:
            argv += [action.option_strings[-1], "3"]
        else:
            argv += [action.option_strings[-1], "some value"]
    args = parser.parse_args(argv)
    cmd = shlex.split(_sweep_resume_command(args))
    assert cmd[:3] == ["cmlsim", "sweep", "my scenario.toml"] and cmd[-1] == "--resume"
    assert "--overwrite" not in cmd
    given = [a for a in argv[2:] if a != "--overwrite"]
    assert sorted(cmd[3:-1]) == sorted(given)
    assert parser.parse_args(cmd[1:]).resume
