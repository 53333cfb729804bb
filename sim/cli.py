"""Command line: ``cmlsim run | compare | cohort | plot | gallery | validate | models``.

Bad input is normal input: a scenario error prints one line (file, line, key path, what was found,
what was expected) and exits with code 2, never a traceback. Heavy libraries (xarray, matplotlib)
are imported only after the simulation, so ``cmlsim run`` reaches its first integration step fast.

Exit codes: 0 done; 1 the results cannot be written (checked before anything is computed for
``run``, ``cohort`` and ``compare``) or the solver failed (nothing is written unless
``--keep-failed``); 2 bad input (scenario, option, results name); 130 interrupted by Ctrl-C
(nothing is written). While ``run``, ``cohort`` and ``compare`` compute, Ctrl-C ends the process
at once, even inside a numba kernel (:mod:`sim.interrupt`), and the first compile of a kernel is
announced on stderr; the times printed leave numba's loading and compiling out
(:mod:`sim.engines.jit`).

The module is one ``_cmd_*`` function per command beside the parser that wires them, each
checking its own options; it passes 800 lines because each command's input checks and messages
sit next to the code that runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.engines.jit import Watch

EXIT_BAD_INPUT = 2
EXIT_CANNOT_WRITE = 1
EXIT_SOLVER_FAILED = 1
EXIT_INTERRUPTED = 130
#: Seeds accepted by ``--seed`` (numpy's SeedSequence takes any integer >= 0; 64 bits suffice).
MAX_SEED = 2**64 - 1


def _months(days: float) -> str:
    return "never" if days != days else f"{days / (365.25 / 12):.1f} mo"


def _cmd_models(args: argparse.Namespace) -> int:
    from sim import models

    names = models.names() if not args.name else [args.name]
    for i, name in enumerate(names):
        try:
            spec = models.get(name)
        except KeyError as exc:
            print(f"cmlsim models: {exc.args[0]}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if i:
            print()
        print(spec.format())
    if not args.name:
        from sim.readout import QPCR
        from sim.therapy.drugs import DRUGS

        print("\nqPCR measurement model (sim.readout.QPCR)")
        print(QPCR.format())
        print("\nDrugs (sim.therapy.drugs)")
        for drug in DRUGS.values():
            print(
                f"  {drug.name}: standard {drug.standard_dose:g} mg every "
                f"{drug.standard_interval * 24:g} h; ka {drug.ka / 24:.3g}/h, "
                f"t1/2 {drug.half_life_h:.3g} h, V/F {drug.volume:g} L, "
                f"CL/F {drug.clearance_l_per_h:.3g} L/h, EC50 {drug.ec50:g} mg/L, "
                f"hill {drug.hill:g}  [{drug.source}]"
            )
        from sim.engines.abm import ABM_PARAMS

        print('\nAgent engine parameters (sim.engines.abm; [engine] table, engine = "abm"/"mesa")')
        print(ABM_PARAMS.format())
        from sim.therapy.interventions import PRODUCTS

        print("\nIntervention products (sim.therapy.interventions)")
        for prod in PRODUCTS.values():
            mass = prod.kind in ("interferon", "checkpoint")
            if prod.ka != float("inf"):
                absorption = f"ka {prod.ka:.3g}/day"
            else:
                absorption = "IV bolus" if mass else "instant"
            # interferon and checkpoint doses are masses (mg, concentrations mg/L); a vaccine or
            # exercise dose is a number of shots or sessions, its "volume" a dimensionless 1
            dose = f"{prod.standard_dose:g} mg" if mass else f"{prod.standard_dose:g} unit(s)"
            volume = f"V {prod.volume:g} L" if mass else f"V {prod.volume:g} (unitless)"
            ec50 = f"EC50 {prod.ec50:g} mg/L" if mass else f"EC50 {prod.ec50:g} unit(s)"
            print(
                f"  {prod.name} ({prod.kind}): standard {dose} every "
                f"{prod.standard_interval:g} d; {absorption}, t1/2 {prod.half_life_days:.3g} d, "
                f"{volume}, {ec50}, Emax {prod.emax:g}, hill {prod.hill:g}  [{prod.source}]"
            )
            if prod.notes:
                print(f"      notes: {prod.notes}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from sim.scenario import validate_main

    worst = 0
    for path in args.scenario:
        worst = max(worst, validate_main(path))
    return worst


def _duration(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.2f} s"


def _parse_seed(text: str | None) -> tuple[int | None, str]:
    """``--seed`` as an integer (None when not given), and why it is not acceptable (or "")."""
    if text is None:
        return None, ""
    digits = text.strip()
    if digits.isascii() and digits.isdigit() and len(digits) <= 20 and int(digits) <= MAX_SEED:
        return int(digits), ""
    shown = text if len(text) <= 40 else f"{text[:20]}... ({len(text):,} characters)"
    return None, f"--seed must be an integer from 0 to 2**64 - 1, got {shown!r}"


def _check_results(command: str, results_root: str, name: str | None = None) -> int:
    """0 when ``results_root/name/`` can be written, else the exit code after one line (without
    ``name``: the root only, checked before the scenario is read and numba imported)."""
    from sim.results import abridge, check_writable

    try:
        check_writable(results_root, name)
    except ValueError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        where = f" ({abridge(str(exc.filename), 80)})" if exc.filename else ""
        print(
            f"{command}: cannot write results under {abridge(results_root, 80)}: "
            f"{exc.strerror or exc}{where}",
            file=sys.stderr,
        )
        return EXIT_CANNOT_WRITE
    return 0


@contextlib.contextmanager
def _computing(command: str) -> Iterator[Watch]:
    """The computing part of a command: Ctrl-C ends the process at once (nothing is written
    yet), and a numba compile is announced on stderr when it starts. Yields the
    :class:`sim.engines.jit.Watch` of the block."""
    from sim.engines import jit
    from sim.interrupt import exit_on_sigint

    def notify(line: str) -> None:
        print(f"{command}: {line}", file=sys.stderr, flush=True)

    with exit_on_sigint(command), jit.watch(notify) as seen:
        yield seen


def _compiled_line(seen: Watch) -> str:
    """The line that says how long the first compile took (empty when nothing compiled)."""
    if not seen.compiled:
        return ""
    return (
        f"  first run: {seen.seconds:.1f} s compiling numba kernels, not counted above "
        "(they are cached for the next runs)"
    )


def _cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    from sim.scenario import ScenarioError, load

    seed, bad = _parse_seed(args.seed)
    if bad:
        print(f"cmlsim run: {bad}", file=sys.stderr)
        return EXIT_BAD_INPUT
    code = _check_results("cmlsim run", args.results)
    if code:
        return code
    try:
        sc = load(args.scenario)
    except ScenarioError as exc:
        print(f"cmlsim run: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if seed is not None and seed != sc.seed:
        note = f"# cmlsim run --seed {seed}: run with seed = {seed}, not the seed below\n"
        sc = dataclasses.replace(sc, seed=seed, text=note + sc.text)
    code = _check_results("cmlsim run", args.results, sc.name)
    if code:
        return code
    from sim.engines import jit
    from sim.run import run_scenario

    with _computing("cmlsim run") as seen:
        jit_before, t0 = jit.seconds(), time.perf_counter()
        result = run_scenario(sc)
        elapsed = time.perf_counter() - t0 - (jit.seconds() - jit_before)
    if result.failure and not args.keep_failed:
        from sim.results import abridge

        print(
            f"cmlsim run: {abridge(args.scenario, 80)} (seed {sc.seed}): the solver failed "
            f"{result.failure}; nothing written (--keep-failed writes the results anyway)",
            file=sys.stderr,
        )
        return EXIT_SOLVER_FAILED
    from sim.results import write_run

    try:
        out = write_run(
            result,
            results_root=args.results,
            overwrite=args.overwrite,
            formats=sc.formats,
            figure=sc.figure and not args.no_figure,
        )
    except OSError as exc:  # results root is a file, not writable, disk full, ...
        print(f"cmlsim run: cannot write results under {args.results}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    s = result.summary
    st = result.stats
    compiled = _compiled_line(seen)
    if sc.engine != "ode":
        from sim.engines import cellular

        lines = cellular.format_run(sc, result, result.timings.get("kernel", elapsed))
        print("\n".join([*lines, *([compiled] if compiled else []), f"  results: {out}"]))
        return 0
    print(f"{sc.name}: {sc.model}, ODE engine, horizon {_months(sc.horizon)}, seed {sc.seed}")
    print(
        f"  true MMR at {_months(s['t_mmr'])}, MR4 at {_months(s['t_mr4'])}, "
        f"MR4.5 at {_months(s['t_mr45'])}"
    )
    print(
        f"  measured MMR at {_months(s['t_mmr_measured'])}, MR4 at {_months(s['t_mr4_measured'])}, "
        f"MR4.5 at {_months(s['t_mr45_measured'])}"
    )
    if s["stop_time"] == s["stop_time"]:
        print(
            f"  TKI stopped at {_months(s['stop_time'])} (BCR-ABL1 {s['bcr_abl_at_stop']:.2g} %, "
            f"NK {s.get('N_at_stop', float('nan')):.0f}/µL, "
            f"exhaustion {s.get('E_at_stop', float('nan')):.2f}); "
            + (
                f"relapse at {_months(s['relapse_time'])}"
                if s["relapse_time"] == s["relapse_time"]
                else "no relapse (treatment-free remission)"
            )
        )
    else:
        print("  TKI never stopped")
    print(
        f"  solver: {st['steps']} steps, {st['rejected']} rejected, {st['rhs_calls']} rhs calls, "
        f"{st['failures']} failures; {_duration(result.timings.get('kernel', elapsed))}"
    )
    if compiled:
        print(compiled)
    if result.failure:
        print(f"  warning: the solver failed {result.failure}; later outputs are NaN")
    print(f"  results: {out}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    """``cmlsim compare A.toml B.toml ...``: same patient, common seed, side-by-side table."""
    from sim.scenario import ScenarioError, load

    if len(args.scenario) < 2:
        print("cmlsim compare: need at least two scenario files to compare", file=sys.stderr)
        return EXIT_BAD_INPUT
    seed, bad = _parse_seed(args.seed)
    if bad:
        print(f"cmlsim compare: {bad}", file=sys.stderr)
        return EXIT_BAD_INPUT
    code = _check_results("cmlsim compare", args.results)
    if code:
        return code
    from sim.compare import check_name

    if args.name is not None:
        try:
            check_name(args.name)
        except ValueError as exc:
            print(f"cmlsim compare: --name: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    scenarios = []
    for path in args.scenario:
        try:
            sc = load(path)
        except ScenarioError as exc:
            print(f"cmlsim compare: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if sc.engine != "ode":
            print(
                f"cmlsim compare: {path}: engine {sc.engine!r}: compare runs ODE scenarios only "
                '(engine = "ode"; cmlsim run and cmlsim cohort take the other engines)',
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        scenarios.append(sc)
    from sim.compare import default_name, format_table, run_comparison, write_comparison
    from sim.engines import jit

    name = args.name if args.name is not None else default_name([sc.name for sc in scenarios])
    code = _check_results("cmlsim compare", args.results, name)
    if code:
        return code
    with _computing("cmlsim compare") as seen:
        jit_before, t0 = jit.seconds(), time.perf_counter()
        cmp = run_comparison(scenarios, seed=seed)
        elapsed = time.perf_counter() - t0 - (jit.seconds() - jit_before)
    failed = [(path, r) for path, r in zip(args.scenario, cmp.results) if r.failure]
    if failed and not args.keep_failed:
        from sim.results import abridge

        path, r = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        print(
            f"cmlsim compare: {abridge(path, 80)} (seed {cmp.seed}): the solver failed "
            f"{r.failure}{more}; nothing written (--keep-failed writes the results anyway)",
            file=sys.stderr,
        )
        return EXIT_SOLVER_FAILED
    for label, r in zip(cmp.labels, cmp.results):
        if r.failure:
            cmp.notes.append(f"warning: {label}: the solver failed {r.failure}; later values NaN")
    for note in cmp.notes:
        print(f"cmlsim compare: {note}", file=sys.stderr)
    formats = scenarios[0].formats or ("png", "pdf")
    try:
        out = write_comparison(
            cmp,
            results_root=args.results,
            name=name,
            overwrite=args.overwrite,
            figure=not args.no_figure,
            formats=formats,
        )
    except OSError as exc:
        print(f"cmlsim compare: cannot write results under {args.results}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    print(
        f"{len(scenarios)} scenarios, same patient parameters as declared, common seed "
        f"{cmp.seed} (qPCR noise: common random numbers); {_duration(elapsed)}"
    )
    print(format_table(cmp.results, cmp.labels))
    if seen.compiled:
        print(_compiled_line(seen).strip())
    print(f"results: {out}")
    return 0


def _cmd_cohort(args: argparse.Namespace) -> int:
    """``cmlsim cohort SCENARIO``: a virtual cohort through a trial design."""
    from sim.scenario import ScenarioError, load

    code = _check_results("cmlsim cohort", args.results)
    if code:
        return code
    try:
        sc = load(args.scenario)
    except ScenarioError as exc:
        print(f"cmlsim cohort: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if sc.cohort is None:
        print(
            f"cmlsim cohort: {args.scenario}: no [cohort] section (add one, e.g. [cohort] "
            "size = 1000; `cmlsim run` runs single patients)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    every = sc.cohort.trajectory_every
    if args.size is not None and every is not None:
        from sim.scenario import MAX_COHORT_POINTS

        points = args.size * (sc.horizon / every + 1)
        if points > MAX_COHORT_POINTS:
            print(
                f"cmlsim cohort: --size {args.size:,} with [cohort] trajectory_every gives "
                f"{points:,.0f} trajectory points, expected at most {MAX_COHORT_POINTS:,} (a "
                "smaller --size or a coarser trajectory_every)",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
    if args.threads is not None and args.threads < 1:
        print(f"cmlsim cohort: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return EXIT_BAD_INPUT
    import numba

    if args.threads is not None and args.threads > numba.config.NUMBA_NUM_THREADS:
        print(
            f"cmlsim cohort: --threads {args.threads} is more than numba allows "
            f"({numba.config.NUMBA_NUM_THREADS})",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    code = _check_results("cmlsim cohort", args.results, sc.name)
    if code:
        return code
    from sim.cohort import run_cohort, tfr_fractions, write_cohort
    from sim.engines import jit

    with _computing("cmlsim cohort") as seen:
        jit_before, t0 = jit.seconds(), time.perf_counter()
        res = run_cohort(sc, size=args.size, threads=args.threads, progress=not args.quiet)
        elapsed = time.perf_counter() - t0 - (jit.seconds() - jit_before)
    failed = res.outcomes["patient"][res.outcomes["solver_failures"] > 0].tolist()
    if failed and not args.keep_failed:
        from sim.results import abridge

        ids = ", ".join(str(j) for j in failed[:5]) + (", ..." if len(failed) > 5 else "")
        print(
            f"cmlsim cohort: {abridge(args.scenario, 80)} (seed {sc.seed}): the solver failed for "
            f"{len(failed)} of {len(res.outcomes)} patients (patient {ids}); nothing written "
            "(--keep-failed writes the results anyway, with the column solver_failures)",
            file=sys.stderr,
        )
        return EXIT_SOLVER_FAILED
    try:
        out = write_cohort(res, results_root=args.results, overwrite=args.overwrite)
    except OSError as exc:
        print(f"cmlsim cohort: cannot write results under {args.results}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    tab = res.outcomes
    n = len(tab)
    eligible = int(tab["eligible"].sum())
    stopped = int(tab["stop_time"].notna().sum())
    print(
        f"{sc.name}: {n} patients, design {res.design}, arm {res.arm!r}, seed {sc.seed}, "
        f"horizon {_months(sc.horizon)}, follow-up {_months(res.follow_up)} after the stop"
    )
    print(
        f"  eligible {eligible} ({eligible / n:.1%}), never eligible {n - eligible}; "
        f"stopped {stopped}; lead-in failures {int(tab['lead_in_failure'].sum())}"
    )
    print(
        f"  relapses within follow-up {int(tab['event'].sum())}, "
        f"at any time {int(tab['relapse'].sum())}"
    )
    tfr = tfr_fractions(tab, (6, 12, 24))
    print(
        "  relapse-free (simple fraction of stopped patients followed that long): "
        + ", ".join(f"{m} mo {v:.1%}" for m, v in tfr.items())
    )
    from sim import outcomes

    if stopped:
        km = [(m, *outcomes.tfr_at(tab, m)) for m in (6, 12, 24)]
        print(
            "  Kaplan-Meier molecular relapse-free survival (95 % CI): "
            + ", ".join(f"{m} mo {e:.1%} ({lo:.1%}-{hi:.1%})" for m, e, lo, hi in km)
        )
    failures = int((tab["solver_failures"] > 0).sum())
    if failures:
        print(f"  warning: {failures} patients with solver failures (see solver_failures)")
    if sc.engine != "ode":
        print(f"  {res.notes}")
    print(f"  runtime {elapsed:.2f} s ({res.runtime:.2f} s in the kernel)")
    if seen.compiled:
        print(_compiled_line(seen))
    print(f"  results: {out}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    """``cmlsim plot RESULT_DIR``: figures of a results folder, with their data."""
    from sim.plots.render import PlotError, render

    try:
        done = render(
            args.result_dir,
            args.kind,
            style=args.style,
            formats=args.format or ("png", "pdf"),
            out=args.out,
        )
    except PlotError as exc:
        print(f"cmlsim plot: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"cmlsim plot: cannot write figures: {exc}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    for name, why in done.skipped.items():
        print(f"cmlsim plot: {name} not drawn: {why}", file=sys.stderr)
    print(f"{args.result_dir}: {done.folder_kind} results, style {args.style}")
    for name, files in done.written.items():
        print(f"  {name}: {', '.join(files)}")
    return 0


def _cmd_gallery(args: argparse.Namespace) -> int:
    """``cmlsim gallery``: every figure type from the shipped scenarios."""
    from sim.gallery import make_gallery
    from sim.plots.render import PlotError

    if args.cohort_size < 1:
        print(
            f"cmlsim gallery: --cohort-size must be >= 1, got {args.cohort_size}", file=sys.stderr
        )
        return EXIT_BAD_INPUT

    def progress(line: str) -> None:
        if not args.quiet:
            print(f"  {line}", file=sys.stderr)

    try:
        g = make_gallery(
            args.out,
            style=args.style,
            formats=args.format or ("png", "pdf"),
            cohort_size=args.cohort_size,
            progress=progress,
        )
    except PlotError as exc:
        print(f"cmlsim gallery: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"cmlsim gallery: cannot write {args.out}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    for e in g.entries:
        overlap = "" if e.overlaps <= 0 else f", {e.overlaps} overlapping texts"
        clipped = "" if e.clipped <= 0 else f", {e.clipped} texts cut off at the edge"
        print(f"  {e.name:<12} {e.seconds:5.1f} s  {e.source}{overlap}{clipped}")
    for name, why in g.skipped.items():
        print(f"  {name:<12} skipped: {why}")
    print(f"{len(g.entries)} figures in {g.seconds:.1f} s: {g.out / 'index.md'}")
    return 1 if any(e.overlaps > 0 for e in g.entries) else 0


def _sweep_resume_command(args: argparse.Namespace) -> str:
    """The ``cmlsim sweep`` command that continues this one: every option of the sweep parser
    given a value other than its default, ``--resume`` instead of ``--overwrite``."""
    import shlex

    words = ["cmlsim", "sweep"]
    for action in args.sweep_parser._actions:
        value = getattr(args, action.dest, None)
        if action.dest in ("help", "overwrite", "resume") or value is None:
            continue
        if not action.option_strings:  # the scenario
            words.append(str(value))
        elif action.nargs == 0:  # a flag
            if value is not action.default:
                words.append(action.option_strings[-1])
        elif value != action.default:
            words += [action.option_strings[-1], str(value)]
    return shlex.join([*words, "--resume"])


def _cmd_sweep(args: argparse.Namespace) -> int:
    """``cmlsim sweep SCENARIO``: a parameter sweep, its sensitivity indices and figures."""
    from sim.scenario import ScenarioError, load

    try:
        sc = load(args.scenario)
    except ScenarioError as exc:
        print(f"cmlsim sweep: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    bad = None
    if sc.sweep is None:
        bad = (
            f'{args.scenario}: no [sweep] section (add one, e.g. [sweep] design = "sobol", '
            "n = 256 and a [sweep.params] table; see sim.sweep)"
        )
    elif args.workers is not None and args.workers < 1:
        bad = f"--workers must be >= 1, got {args.workers}"
    elif args.resume and args.overwrite:
        bad = "--resume continues a sweep, --overwrite replaces it: give one of them"
    if bad:
        print(f"cmlsim sweep: {bad}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from sim.sweep import SweepError, n_samples, run_sweep

    sw = sc.sweep
    assert sw is not None
    n = n_samples(sw)
    size = f"n = {sw.n}" if sw.n else "full grid"
    if sw.design == "sobol":
        size += ", second order" if sw.second_order else ", first and total order"
    print(
        f"{sc.name}: {sw.design} design ({size}) over {len(sw.params)} parameters, {n:,} runs "
        f"of {_months(sc.horizon)}, seed {sc.seed}"
    )
    try:
        res = run_sweep(
            sc,
            results_root=args.results,
            resume=args.resume,
            overwrite=args.overwrite,
            executor=args.executor,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=not args.quiet,
            figures=sc.figure and not args.no_figure,
            formats=sc.formats or ("png", "pdf"),
        )
    except SweepError as exc:
        print(f"cmlsim sweep: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"cmlsim sweep: cannot write results under {args.results}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    except KeyboardInterrupt:
        print(
            "cmlsim sweep: interrupted; finished chunks are kept: continue with "
            + _sweep_resume_command(args),
            file=sys.stderr,
        )
        import gc

        # exit at once, without the interpreter's last collection over every object the
        # libraries loaded (numba, xarray), the slowest part of its exit
        gc.freeze()
        return 130
    t = res.timings
    done_now = f"{res.computed} of {res.chunks} chunks computed now" if args.resume else ""
    rate = f", {n / t['run']:,.0f} runs/s" if t["run"] > 0 and not args.resume else ""
    print(
        f"  {res.executor}: kernels loaded in {t['workers']:.1f} s; runs {t['run']:.1f} s"
        f"{rate} ({t['kernel']:.1f} s in the kernel){'; ' + done_now if done_now else ''}; "
        f"total {t['total']:.1f} s"
    )
    for k, err in sorted(res.failed.items())[:3]:
        print(f"cmlsim sweep: warning: chunk {k} failed: {err}", file=sys.stderr)
    if res.failed:
        print(
            f"cmlsim sweep: {len(res.failed)} of {res.chunks} chunks failed; the others are "
            f"stored: rerun with --resume to retry them",
            file=sys.stderr,
        )
    if res.solver_failure_runs:
        print(f"  warning: {res.solver_failure_runs} runs with solver failures (status 2)")
    if res.run_errors:
        j, msg = min(res.run_errors.items())
        print(
            f"  warning: the kernel raised on {len(res.run_errors)} runs (status 3, metrics NaN), "
            f"e.g. run {j}: {msg}"
        )
    tab = res.sensitivity
    if tab is not None:
        for out in dict.fromkeys(tab["output"]):
            rows = tab[(tab["output"] == out) & tab["index"].isin(["ST", "mu_star"])]
            rows = rows.sort_values("value", ascending=False).head(4)
            what = "total Sobol index" if rows["index"].iloc[0] == "ST" else "Morris mu*"
            print(
                f"  {out}: {what} (95 % CI): "
                + ", ".join(
                    f"{r.parameter} {r.value:.2f} ({r.ci_low:.2f} to {r.ci_high:.2f})"
                    for r in rows.itertuples()
                )
            )
    for note in res.notes:
        print(f"  note: {note}")
    print(f"  results: {res.path}")
    return 1 if res.failed else 0


class _CohortSize(argparse.Action):
    """``cohort --size N``: the range of the scenario's ``[cohort] size``, checked as the option
    is read; out of range it prints one line and exits with code 2 (argparse's own error would
    add its usage lines)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from sim.scenario import MAX_COHORT
        from sim.units import abridge

        text = str(values).strip()
        # ASCII digits only: int() also reads other scripts' digits
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_COHORT):
            print(
                f"cmlsim cohort: --size: found {abridge(str(values))!r}, expected an integer "
                f"from 1 to {MAX_COHORT:,}",
                file=sys.stderr,
            )
            raise SystemExit(EXIT_BAD_INPUT)
        setattr(namespace, self.dest, int(text))


_KEEP_FAILED = "write the results even when the solver failed (flagged; exit code 0)"


def package_version() -> str:
    """The installed distribution's version (``importlib.metadata``), else ``sim.__version__``."""
    from importlib import metadata

    try:
        return metadata.version("cmlsim")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        import sim

        return sim.__version__


class _Version(argparse.Action):
    """``--version``: the version is looked up only when asked for."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"cmlsim {package_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmlsim",
        description="Simulate CML under TKI therapy with the immune system in the loop.",
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="print the package version and exit"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a scenario and write results/<name>/")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--overwrite", action="store_true", help="replace results/<name>/ if it exists")
    p.add_argument("--no-figure", action="store_true", help="skip the figure")
    p.add_argument(
        "--seed", metavar="N", help="random seed (default: the scenario's; recorded with the run)"
    )
    p.add_argument("--keep-failed", action="store_true", help=_KEEP_FAILED)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "compare",
        help="run scenarios on the same patient and seed and compare them side by side",
    )
    p.add_argument("scenario", nargs="+", help="two or more scenario files (TOML)")
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument(
        "--name", help="results/<NAME>/ (default: compare-<name>_vs_<name>..., shortened)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace results/<NAME>/ if it exists")
    p.add_argument(
        "--seed", metavar="N", help="common random seed (default: the first scenario's seed)"
    )
    p.add_argument("--no-figure", action="store_true", help="skip the figure")
    p.add_argument("--keep-failed", action="store_true", help=_KEEP_FAILED)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser(
        "cohort", help="run a virtual cohort through a trial design and write results/<name>/"
    )
    p.add_argument("scenario", help="scenario file with a [cohort] section (TOML)")
    p.add_argument(
        "--size",
        action=_CohortSize,
        metavar="N",
        help="number of patients, 1 to 10,000,000 like [cohort] size (default: [cohort] size)",
    )
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--overwrite", action="store_true", help="replace results/<name>/ if it exists")
    p.add_argument("--threads", type=int, help="numba threads (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--keep-failed", action="store_true", help=_KEEP_FAILED)
    p.set_defaults(func=_cmd_cohort)

    p = sub.add_parser(
        "plot", help="draw the figures of a results folder (run, compare, cohort or sweep)"
    )
    p.add_argument("result_dir", help="folder written by cmlsim run, compare, cohort or sweep")
    from sim.plots.render import FIGURES, SWEEP_FIGURES

    kinds = "; ".join(
        f"{folder}: {', '.join(names)}"
        for folder, names in {**FIGURES, "sweep": SWEEP_FIGURES}.items()
    )
    p.add_argument(
        "--kind",
        action="append",
        help=f"figure to draw (repeatable; default all for the folder): {kinds}",
    )
    p.add_argument("--style", default="nature", help="nature (default), blood or poster")
    p.add_argument(
        "--format", action="append", help="pdf, svg or png (repeatable; default png and pdf)"
    )
    p.add_argument("--out", help="output folder (default: RESULT_DIR/figures)")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("gallery", help="draw every figure type from the shipped scenarios")
    p.add_argument(
        "--out", default="results/gallery", help="output folder (default: results/gallery)"
    )
    p.add_argument("--style", default="nature", help="nature (default), blood or poster")
    p.add_argument(
        "--format", action="append", help="pdf, svg or png (repeatable; default png and pdf)"
    )
    p.add_argument(
        "--cohort-size", type=int, default=300, help="patients of the gallery cohort (default 300)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_gallery)

    p = sub.add_parser(
        "sweep", help="run a scenario's [sweep]: runs, sensitivity indices, figures (resumable)"
    )
    p.add_argument("scenario", help="scenario file with a [sweep] section (TOML)")
    p.add_argument(
        "--executor",
        choices=("serial", "processes", "dask"),
        default="processes",
        help="serial, local processes (default) or dask (a LocalCluster unless --scheduler)",
    )
    p.add_argument("--workers", type=int, help="worker processes (default: the cores available)")
    p.add_argument("--scheduler", help="address of a Dask scheduler (tcp://host:8786)")
    p.add_argument(
        "--resume", action="store_true", help="continue results/<name>/: only missing chunks"
    )
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--overwrite", action="store_true", help="replace results/<name>/ if it exists")
    p.add_argument("--no-figure", action="store_true", help="skip the figures")
    p.add_argument("--quiet", action="store_true", help="no progress (bar and analysis steps)")
    p.set_defaults(func=_cmd_sweep, sweep_parser=p)

    p = sub.add_parser("validate", help="check scenario files; exit code 2 on the first error")
    p.add_argument("scenario", nargs="+")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("models", help="list the models and their parameter tables")
    p.add_argument("name", nargs="?", help="one model only")
    p.set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cmlsim`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"cmlsim {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
