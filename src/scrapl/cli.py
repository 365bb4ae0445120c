"""The ``scrapl`` console script: ``demo``, ``paths`` and ``bench``.

* ``scrapl demo``: the end-to-end unsupervised sound-matching comparison (:mod:`scrapl.demo`).
* ``scrapl paths``: list the scattering paths of a JTFS configuration with their metadata.
* ``scrapl bench``: forward the arguments to the benchmark runner ``benchmarks/run.py`` of a source
  checkout (the benchmarks are not part of the installed package).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "build_parser", "path_rows", "BENCH_RUNNER"]

# src/scrapl/cli.py -> the repository root of a source checkout
BENCH_RUNNER = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"

_PATH_COLUMNS = ("index", "n2", "n_fr", "j2", "j_fr", "spin", "rate_hz", "scale_cycles_per_octave")


def _averaging(value: str):
    """Parse ``--T`` / ``--F``: ``none``, ``global`` or a positive int."""
    if value.lower() == "none":
        return None
    if value.lower() == "global":
        return "global"
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'none', 'global' or an int, got {value!r}") from None


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {value!r}")
    return n


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``scrapl`` command."""
    parser = argparse.ArgumentParser(prog="scrapl", description="SCRAPL: JTFS as a fast training loss.")
    sub = parser.add_subparsers(dest="command", metavar="{demo,paths,bench}")
    sub.required = True
    _add_demo_parser(sub)
    _add_paths_parser(sub)
    sub.add_parser(
        "bench", help="run benchmarks/run.py of a source checkout (arguments forwarded)", add_help=False
    )
    return parser


def _add_demo_parser(sub) -> None:
    from .demo.config import RUNS, WARMUP_INIT, WARMUP_METHOD, WARMUP_ON

    p = sub.add_parser(
        "demo",
        help="unsupervised sound matching: SCRAPL vs MSS vs supervised (CPU, minutes)",
        description="Train an encoder to recover the AM and FM rates of a chirplet synthesizer from "
        "its sound, with SCRAPL (θ-IS and uniform sampling, P-Adam + P-SAGA), the "
        "multi-resolution STFT loss and a supervised parameter loss, on the same data "
        "from the same initial weights. Writes metrics (CSV, JSON) and PNG figures.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="seconds-long smoke run of every stage")
    mode.add_argument(
        "--paper",
        action="store_true",
        help="the paper's setting (4 s signals, 315 paths, 8000 steps): a GPU job",
    )
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--steps", type=_positive_int, help="training steps of every run")
    p.add_argument("--batch-size", type=_positive_int, help="batch size of every run")
    p.add_argument("--seed", type=int, default=0, help="data split, weights, batches (default 0)")
    p.add_argument(
        "--draw-seed",
        type=int,
        help="seed of the SCRAPL runs' path draws only (default: --seed); data, weights and "
        "batches stay those of --seed",
    )
    p.add_argument(
        "--warmup-on",
        choices=WARMUP_ON,
        help="θ-IS warmup curvature through the encoder's initial weights (the paper's) or with "
        "respect to the synth parameters at predictions drawn from the prior",
    )
    p.add_argument(
        "--warmup-batch",
        type=int,
        help="number of training examples the θ-IS warmup is made on (default: the preset's)",
    )
    p.add_argument(
        "--warmup-init",
        choices=WARMUP_INIT,
        help="power-iteration start vectors of the θ-IS warmup: seeded per path, or each path from "
        "the previous path's eigenvectors (fewer products; default: the preset's)",
    )
    p.add_argument(
        "--warmup-method",
        choices=WARMUP_METHOD,
        help="eigenvalue estimator of the θ-IS warmup: power iteration (the reference's) or "
        "Arnoldi (Krylov subspace, stops on the residual; default: the preset's)",
    )
    p.add_argument(
        "--min-prob-frac",
        type=float,
        help="θ-IS floor: the fraction of the probability mass spread uniformly over the paths, in "
        "[0, 1) (default: the preset's)",
    )
    p.add_argument("--out-dir", default="scrapl_demo", help="output directory (default: scrapl_demo)")
    p.add_argument("--runs", help=f"comma-separated subset of {','.join(RUNS)}")
    p.add_argument(
        "--am", choices=("slow", "fast"), help="θ_AM range: slow [0.99, 1.98] Hz or fast [3.96, 7.92] Hz"
    )
    p.add_argument(
        "--fm",
        choices=("slow", "mid", "fast"),
        help="θ_FM range: slow [0.5, 1], mid [2, 4] or fast [8, 16] octaves/s",
    )
    p.add_argument("--threads", type=_positive_int, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--workers",
        type=_positive_int,
        help="runs made in parallel processes on the CPU (default: one per core, at most "
        "one per run; each gets cores / workers threads)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true", help="show the library's INFO log lines")
    p.set_defaults(handler=_cmd_demo, subparser=p)


def _add_paths_parser(sub) -> None:
    p = sub.add_parser(
        "paths",
        help="list the scattering paths of a JTFS configuration",
        description="List the second-order JTFS paths (n2, n_fr) that SCRAPLLoss samples from, with "
        "their temporal rate in Hz and frequential scale in cycles per octave. The "
        "defaults are the paper's configuration.",
    )
    p.add_argument("--shape", type=_positive_int, default=32768, help="signal length (default 32768)")
    p.add_argument("--J", type=int, default=12, help="octaves, temporal wavelets (default 12)")
    p.add_argument("--Q1", type=int, default=8, help="first-order wavelets per octave (default 8)")
    p.add_argument("--Q2", type=int, default=2, help="second-order wavelets per octave (default 2)")
    p.add_argument("--J-fr", type=int, default=3, help="octaves, frequential wavelets (default 3)")
    p.add_argument("--Q-fr", type=int, default=2, help="frequential wavelets per octave (default 2)")
    p.add_argument("--T", type=_averaging, default=None, help="temporal averaging: none, global or int")
    p.add_argument("--F", type=_averaging, default=None, help="frequential averaging: none, global or int")
    p.add_argument("--sr", type=float, default=8192.0, help="sample rate for the rates in Hz (8192)")
    p.add_argument("--demo", action="store_true", help="the demo's configuration (overrides the above)")
    p.add_argument("--csv", action="store_true", help="write CSV instead of a table")
    p.set_defaults(handler=_cmd_paths, subparser=p)


def path_rows(paths: Sequence, sr: float) -> list[tuple]:
    """One row per path: index, n2, n_fr, j2, j_fr, spin, rate in Hz, scale in cycles/octave."""
    return [
        (p.idx, p.n2, p.n_fr, p.j2, p.j_fr, p.spin, p.rate_hz(sr), p.scale_cycles_per_octave) for p in paths
    ]


def _cmd_paths(args, parser: argparse.ArgumentParser) -> int:
    from .jtfs.config import JTFSConfig
    from .jtfs.filterbank import FilterBank

    if args.demo:
        from .demo.config import DemoConfig

        d = DemoConfig()
        args.shape, args.J, args.Q1, args.Q2, args.J_fr, args.Q_fr, args.T, args.F, args.sr = (
            d.n_samples,
            d.J,
            d.Q1,
            d.Q2,
            d.J_fr,
            d.Q_fr,
            d.T,
            None,
            d.sr,
        )
    if not args.sr > 0:
        parser.error(f"argument --sr: must be > 0, got {args.sr!r}")
    try:
        config = JTFSConfig(args.shape, args.J, args.Q1, args.Q2, args.J_fr, args.Q_fr, args.T, args.F)
        paths = FilterBank(config).paths
    except (TypeError, ValueError) as err:
        parser.error(f"invalid JTFS configuration: {err}")
    rows = path_rows(paths, args.sr)
    if args.csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(_PATH_COLUMNS)
        writer.writerows(r[:6] + (f"{r[6]:.6g}", f"{r[7]:.6g}") for r in rows)
        sys.stdout.write(buf.getvalue())
        return 0
    header = ("index", "(n2,n_fr)", "j2", "j_fr", "spin", f"rate Hz (sr={args.sr:g})", "scale cyc/oct")
    body = [
        (str(r[0]), f"({r[1]},{r[2]})", str(r[3]), str(r[4]), f"{r[5]:+d}", f"{r[6]:.3f}", f"{r[7]:+.3f}")
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    print(
        f"JTFS shape={args.shape}, J={args.J}, Q1={args.Q1}, Q2={args.Q2}, J_fr={args.J_fr}, "
        f"Q_fr={args.Q_fr}, T={args.T}, F={args.F}: {len(rows)} paths"
    )
    for line in [header, tuple("-" * w for w in widths), *body]:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))
    return 0


def _cmd_demo(args, parser: argparse.ArgumentParser) -> int:
    import torch

    from .demo.config import preset
    from .demo.run import format_table, run_demo

    try:
        device = torch.device(args.device)
    except RuntimeError as err:
        parser.error(f"argument --device: {err}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"argument --device: {args.device!r} requested but CUDA is not available")
    runs = None if args.runs is None else tuple(r.strip() for r in args.runs.split(",") if r.strip())
    name = "quick" if args.quick else "paper" if args.paper else "default"
    try:
        cfg = preset(
            name,
            steps=args.steps,
            batch_size=args.batch_size,
            seed=args.seed,
            draw_seed=args.draw_seed,
            warmup_on=args.warmup_on,
            warmup_batch=args.warmup_batch,
            warmup_init=args.warmup_init,
            warmup_method=args.warmup_method,
            min_prob_frac=args.min_prob_frac,
            runs=runs,
            am=args.am,
            fm=args.fm,
        )
    except ValueError as err:
        parser.error(str(err))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    scrapl_log = logging.getLogger("scrapl")
    level = scrapl_log.level
    if not args.verbose:
        scrapl_log.setLevel(logging.WARNING)
    try:
        print(
            f"scrapl demo ({name}): {len(cfg.runs)} runs × {cfg.steps} steps, batch {cfg.batch_size}, "
            f"seed {cfg.seed}{'' if cfg.draw_seed is None else f' (path draws {cfg.draw_seed})'}, "
            f"device {device} -> {args.out_dir}"
        )
        workers = args.workers or min(len(cfg.runs), os.cpu_count() or 1)
        result = run_demo(
            cfg,
            args.out_dir,
            device=str(device),
            progress=not args.no_progress,
            workers=workers if device.type == "cpu" else 1,
            threads=args.threads,
        )
    finally:
        scrapl_log.setLevel(level)
    print()
    print(format_table(result))
    print(
        f"\nwrote {Path(args.out_dir) / 'metrics.csv'}, metrics.json, val_history.csv, "
        f"val_error.png" + (", theta_is_probs.png" if result.probs is not None else "")
    )
    return 0


def _cmd_bench(argv: list[str]) -> int:
    if not BENCH_RUNNER.is_file():
        print(
            f"scrapl bench: error: needs a source checkout of scrapl (benchmarks/run.py not found at "
            f"{BENCH_RUNNER}); clone the repository and install it with `pip install -e .`",
            file=sys.stderr,
        )
        return 2
    spec = importlib.util.spec_from_file_location("scrapl_bench_runner", BENCH_RUNNER)
    if spec is None or spec.loader is None:
        print(f"scrapl bench: error: cannot load {BENCH_RUNNER}", file=sys.stderr)
        return 2
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(list(argv))
    return int(code or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scrapl`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return _cmd_bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args, args.subparser)  # errors are reported by the subcommand's parser
    except BrokenPipeError:  # `scrapl paths | head`: the reader left, nothing more to say
        try:
            sys.stdout.close()
        except BrokenPipeError:
            pass
        return 0
