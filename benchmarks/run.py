"""Run every benchmark side by side and write ``benchmarks/RESULTS.md`` and the step-time plot.

Sections (all in one process, on the same inputs, methods interleaved, medians over repeats):

1. ``steps``: one training step of ``scrapl.SCRAPLLoss`` against scrapl-loss 0.1.0 on the same
   spread of paths and against auraloss's ``MultiResolutionSTFTLoss``, with peak memory, the
   relative error of our loss and gradient against the reference, and the aten operators each
   step dispatches (all paths counted for ours) (paper and seed configurations);
2. ``sweep``: the same step for signal lengths 2^13 .. 2^17 (paper hyperparameters), and the plot;
3. ``full``: the full JTFS forward + backward against the reference's vendored kymatio;
4. ``optim``: P-Adam + P-SAGA overhead per step after 1 and after 100 visited paths;
5. ``warmup``: θ-IS warmup time for nθ = 2 and 14, ours against the reference.

Usage::

    python benchmarks/run.py --threads 1     # everything (about 16 minutes on a 2-core CPU)
    python benchmarks/run.py --quick         # CI smoke test: small sizes, seconds
    python benchmarks/run.py --sections steps full --threads 2

On a machine shared with other jobs, prefer ``--threads 1``: a second intra-op thread that has to
wait for a core turns each small FFT from microseconds into milliseconds, for every method.

``scrapl bench`` calls :func:`main` with its arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # loaded by file path (``scrapl bench``): make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.common import (  # noqa: E402
    PAPER,
    QUICK,
    SEED,
    PeakMemory,
    import_reference,
    load_average,
    machine_info,
    quiet_logs,
)

SECTIONS = ("steps", "sweep", "full", "optim", "warmup")
DEFAULT_OUT = ROOT / "benchmarks" / "RESULTS.md"
DEFAULT_PLOT = ROOT / "benchmarks" / "step_time_vs_length.png"

# (full run, --quick) settings
PLAN = {
    False: dict(
        step_setups=[PAPER, SEED],
        step_paths=None,
        sweep_base=PAPER,
        sweep_lengths=[2**k for k in range(13, 18)],
        sweep_paths=5,
        batch=4,
        full_setups=[PAPER],
        full_batch=4,
        repeats=7,
        ref_repeats=3,
        full_repeats=3,
        full_ref_repeats=1,
        optim=dict(steps=10, distinct=100, config=None),
        warmup=dict(n_thetas=(2, 14), n_paths=3, n_iter=20, repeats=2, setup=None),
    ),
    True: dict(
        step_setups=[QUICK],
        step_paths=2,
        sweep_base=QUICK,
        sweep_lengths=[2**11, 2**12],
        sweep_paths=2,
        batch=2,
        full_setups=[QUICK],
        full_batch=1,
        repeats=1,
        ref_repeats=1,
        full_repeats=1,
        full_ref_repeats=1,
        optim=dict(steps=2, distinct=5, config=QUICK.kwargs()),
        warmup=dict(n_thetas=(2,), n_paths=1, n_iter=2, repeats=1, setup=QUICK.kwargs()),
    ),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="scrapl bench", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and few repeats (CI smoke test; timings are not meaningful)",
    )
    ap.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="which benchmarks to run (default: all)",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"Markdown file to write (default: {DEFAULT_OUT.relative_to(ROOT)} for a "
        f"full run, none with --quick)",
    )
    ap.add_argument(
        "--plot",
        type=Path,
        default=None,
        help=f"PNG of step time vs length (default: {DEFAULT_PLOT.relative_to(ROOT)} "
        f"for a full run, none with --quick)",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the raw numbers as JSON")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's default for this machine)",
    )
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    ap.add_argument("--repeats", type=int, default=None, help="timed steps per path (ours, MSS)")
    ap.add_argument(
        "--ref-repeats", type=int, default=None, help="timed steps per path for scrapl-loss 0.1.0"
    )
    ap.add_argument("--no-memory", action="store_true", help="skip peak-memory measurements")
    ap.add_argument(
        "--note", default=None, help="a sentence about this run's conditions, written under the machine table"
    )
    args = ap.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    for name in ("repeats", "ref_repeats"):
        value = getattr(args, name)
        if value is not None and value < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if not args.quick:
        args.out = args.out or DEFAULT_OUT
        args.plot = args.plot or DEFAULT_PLOT
    return args


def _jsonable(obj):
    if is_dataclass(obj):
        return _jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def run(args: argparse.Namespace) -> dict:
    """Run the selected sections; return their results (dataclasses) and the machine info."""
    import scrapl
    from benchmarks.full_jtfs import bench_full
    from benchmarks.optim_overhead import bench_optim
    from benchmarks.steps import bench_steps, spread_paths
    from benchmarks.warmup_theta import bench_warmup

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    plan = PLAN[args.quick]
    repeats = args.repeats or plan["repeats"]
    ref_repeats = args.ref_repeats or plan["ref_repeats"]
    quiet_logs()
    ref_module = import_reference()
    memory = None if args.no_memory else PeakMemory(device)
    info = machine_info(device)
    info["memory_method"] = memory.method if memory is not None else "skipped"
    t_start = time.perf_counter()
    out: dict = {"info": info, "quick": args.quick, "note": args.note}

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def step_paths(setup, count):
        jtfs = scrapl.TimeFrequencyScattering(**setup.kwargs())
        return spread_paths(jtfs.paths, count)

    if "steps" in args.sections:
        out["steps"] = [
            bench_steps(
                s,
                scrapl=scrapl,
                ref_module=ref_module,
                batch=plan["batch"],
                paths=step_paths(s, plan["step_paths"]),
                repeats=repeats,
                ref_repeats=ref_repeats,
                device=device,
                memory=memory,
                all_path_ops=True,
                log=log,
            )
            for s in plan["step_setups"]
        ]
    if "sweep" in args.sections:
        out["sweep"] = []
        for n in plan["sweep_lengths"]:
            s = plan["sweep_base"].with_length(n)
            out["sweep"].append(
                bench_steps(
                    s,
                    scrapl=scrapl,
                    ref_module=ref_module,
                    batch=plan["batch"],
                    paths=step_paths(s, plan["sweep_paths"]),
                    repeats=repeats,
                    ref_repeats=max(1, ref_repeats - 1 if n > 2**15 else ref_repeats),
                    device=device,
                    memory=None,
                    low_memory=False,
                    log=log,
                )
            )
    if "full" in args.sections:
        out["full"] = [
            bench_full(
                s,
                scrapl=scrapl,
                ref_module=ref_module,
                batch=plan["full_batch"],
                repeats=plan["full_repeats"],
                ref_repeats=plan["full_ref_repeats"],
                device=device,
                memory=memory,
                log=log,
            )
            for s in plan["full_setups"]
        ]
    if "optim" in args.sections:
        out["optim"] = bench_optim(ref_module, **plan["optim"])
    if "warmup" in args.sections:
        out["warmup"] = bench_warmup(scrapl=scrapl, ref_module=ref_module, log=log, **plan["warmup"])
    info["load_average_end"] = load_average()
    info["wall"] = f"{(time.perf_counter() - t_start) / 60:.1f} min"
    return out


def render(results: dict, plot_name: str | None) -> str:
    """The Markdown document of ``results``."""
    info = results["info"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/run.py` (`scrapl bench`)"
        + (
            " in `--quick` mode (smoke test: sizes too small for the timings to mean anything)"
            if results["quick"]
            else ""
        )
        + "; do not edit by hand.",
        "",
        "## Machine and software",
        "",
        *report.machine_table(info),
        "",
        "The CPU is shared with other processes; methods are interleaved so that ratios stay "
        "fair, but absolute times move with the load average shown beside each table.",
        "",
    ]
    if results.get("note"):
        lines += [results["note"], ""]
    steps = {r.setup.name: r for r in results.get("steps", [])}
    full = results.get("full", [])
    if "paper" in steps:
        lines += [
            "## Targets (CPU, batch 4, paper configuration)",
            "",
            *report.targets_table(steps["paper"], full[0] if full else None),
            "",
        ]
        bounds = report.bounds_text(steps["paper"])
        if bounds:
            lines += [*bounds, ""]
    for res in results.get("steps", []):
        lines += [
            f"## One training step per path: {res.setup.name} configuration",
            "",
            f"`{res.setup.describe()}`; forward + backward to the input of one path.",
            "",
            *report.step_table(res),
            "",
        ]
        low = report.low_memory_table(res)
        if low:
            lines += [
                f"The same paths and inputs with `SCRAPLLoss(..., low_memory=True)` ({res.setup.name}):",
                "",
                *low,
                "",
            ]
    if results.get("sweep"):
        base = results["sweep"][0].setup
        lines += [
            "## Step time against signal length",
            "",
            f"J={base.J}, Q1={base.Q1}, Q2={base.Q2}, J_fr={base.J_fr}, Q_fr={base.Q_fr}, "
            f"T={base.T}, F={base.F}, batch {results['sweep'][0].batch}; paths spread over j2.",
            "",
            *report.sweep_table(results["sweep"]),
            "",
        ]
        if plot_name:
            lines += [f"![step time against signal length]({plot_name})", ""]
    if full:
        lines += ["## Full JTFS (every path), forward + backward", "", *report.full_table(full), ""]
    if results.get("optim") is not None:
        lines += [
            "## P-Adam + P-SAGA overhead per step",
            "",
            "Hooks timed in isolation from the JTFS: the same gradients go to each "
            "implementation's per-parameter hook (`benchmarks/optim_overhead.py`).",
            "",
            *report.optim_table(results["optim"]),
            "",
        ]
    if results.get("warmup"):
        w = results["warmup"][0].setup
        lines += [
            "## θ-IS warmup (the seed README's warmup example)",
            "",
            f"N={w['shape']}, J={w['J']}, Q1={w['Q1']}, Q2={w['Q2']}, J_fr={w['J_fr']}, "
            f"Q_fr={w['Q_fr']}; encoder and synth of the example with nθ outputs/inputs, one "
            f"batch of 4.",
            "",
            *report.warmup_table(results["warmup"]),
            "",
        ]
    lines += [
        "## How to read this",
        "",
        "- Every time is the median of repeated runs; methods alternate round-robin within "
        "each path so that ratios compare like with like. Ratios > 1 favour ours.",
        "- Correctness columns are relative errors ||ours - ref|| / ||ref|| of the loss and "
        "of dL/dx (float32) from the very calls that were timed.",
        "- `first call`: our first step on a path, untimed by the medians (the engine builds "
        "everything a path needs at construction, so it differs from the others only by the "
        "state of the allocator and caches).",
        f"- Peak memory: {info.get('memory_method', 'n/a')}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point (also of ``scrapl bench``). Returns the process exit status."""
    args = parse_args(argv)
    results = run(args)
    if args.plot is not None and results.get("sweep"):
        report.plot_sweep(results["sweep"], args.plot)
    plot_name = None
    if args.plot is not None and args.out is not None:
        try:
            plot_name = str(args.plot.resolve().relative_to(args.out.resolve().parent))
        except ValueError:
            plot_name = str(args.plot.resolve())
    text = render(results, plot_name)
    print(text)
    from scrapl._io import atomic_write_text

    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(text, args.out)
    if args.json is not None:
        atomic_write_text(json.dumps(_jsonable(results), indent=1, default=str), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
