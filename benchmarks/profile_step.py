"""Where the time of one SCRAPL training step goes: per stage, and per operator (torch.profiler).

The step is the loss's: forward of ``x`` (with autograd), forward of ``x_target`` (without),
distance, backward to ``x``. Stages are timed with the calling thread's CPU time
(``time.thread_time``), which a busy shared machine disturbs much less than wall-clock time; run
with ``--threads 1`` so that all the work happens on that thread.

Usage::

    python -m benchmarks.profile_step --paths 0 157 300 [--config paper] [--ops 15]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

import torch

from scrapl.distance import path_distance

from .common import PAPER, QUICK, SEED
from .floor import floor_step

SETUPS = {"paper": PAPER, "seed": SEED, "quick": QUICK}


def _stages(jtfs, x: torch.Tensor, target: torch.Tensor, k: int) -> dict[str, float]:
    """Thread CPU seconds of each stage of one step on path ``k``."""
    p = jtfs.paths[k]
    reader = jtfs.plan.reader(p)
    t = {}

    def stage(name, fn):
        t0 = time.thread_time()
        out = fn()
        t[name] = t.get(name, 0.0) + time.thread_time() - t0
        return out

    def forward(sig, tag):
        x_pad = stage(f"{tag}: pad", lambda: jtfs.padded(sig))
        # as in ``path``: rfft, the first-order clusters and their moduli, then the second order
        U1 = stage(f"{tag}: first order", lambda: jtfs.first_order(x_pad, reader.parts))
        Y = stage(f"{tag}: second order", lambda: jtfs.second_order(U1, reader))
        return stage(f"{tag}: frequential + averaging", lambda: jtfs.frequential(Y, [p])[0])

    xr = x.clone().requires_grad_(True)
    S = forward(xr, "x")
    with torch.no_grad():
        St = forward(target, "target")
    loss = stage("distance", lambda: path_distance(S, St))
    stage("backward", loss.backward)
    return t


def fft_floor(jtfs, k: int, batch: int, repeats: int) -> float:
    """Thread-CPU ms of just the real FFTs an exact step on path ``k`` needs
    (:func:`benchmarks.floor.floor_step`), fastest of ``repeats`` runs after one warm-up."""
    run = floor_step(jtfs, k, batch)
    times = []
    for _ in range(repeats + 1):
        t0 = time.thread_time()
        run()
        times.append(time.thread_time() - t0)
    return min(times[1:]) * 1e3


def kernel_time(step: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """``(wall ms, system-CPU ms, minor page faults)`` per call of ``step``, over ``repeats`` calls
    after one warm-up call (``getrusage`` of the process; run with one thread).

    System time here is almost all first-touch page faults: the CPU allocator returns large blocks
    to the kernel when they are freed, and every fresh block is mapped (and zeroed) again.
    """
    step()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(repeats):
        step()
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    return (
        (t1 - t0) * 1e3 / repeats,
        (r1.ru_stime - r0.ru_stime) * 1e3 / repeats,
        (r1.ru_minflt - r0.ru_minflt) / repeats,
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=sorted(SETUPS), default="paper")
    ap.add_argument("--paths", type=int, nargs="+", default=[0, 157, 300])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ops", type=int, default=12, help="rows of the operator table (0: none)")
    ap.add_argument(
        "--fft-floor",
        action="store_true",
        help="also time only the first-order FFTs an exact step needs (fft_floor)",
    )
    ap.add_argument(
        "--kernel",
        action="store_true",
        help="also report system time and page faults per step, ours and auraloss's MSS",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import scrapl

    setup = SETUPS[args.config]
    jtfs = scrapl.TimeFrequencyScattering(**setup.kwargs())
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, setup.shape, generator=gen)
    target = torch.randn(args.batch, setup.shape, generator=gen)
    print(
        f"{setup.describe()}, batch {args.batch}, {torch.get_num_threads()} thread(s); "
        f"median thread-CPU ms over {args.repeats} steps\n"
    )
    for k in args.paths:
        p = jtfs.paths[k]
        _stages(jtfs, x, target, k)  # warm-up: cached operators
        runs = [_stages(jtfs, x, target, k) for _ in range(args.repeats)]
        med = {name: statistics.median(r[name] for r in runs) * 1e3 for name in runs[0]}
        total = sum(med.values())
        fastest = min(sum(r.values()) for r in runs) * 1e3
        print(
            f"path {k} {p.key}: j2={p.j2}, n1_max={p.n1_max}, j_fr={p.j_fr}, spin={p.spin}; "
            f"step {total:.1f} ms (fastest {fastest:.1f} ms)"
        )
        for name, ms in med.items():
            print(f"  {name:<34} {ms:8.1f} ms  {100 * ms / total:5.1f} %")
        if args.fft_floor:
            print(
                f"  first-order FFTs alone (fastest)   {fft_floor(jtfs, k, args.batch, args.repeats):8.1f} ms"
            )
        if args.kernel:

            def step(k: int = k) -> None:
                _stages(jtfs, x, target, k)

            wall, sys_ms, faults = kernel_time(step, args.repeats)
            print(f"  kernel: {sys_ms:.1f} of {wall:.1f} ms wall per step, {faults:.0f} minor faults")
        if args.ops:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                _stages(jtfs, x, target, k)
            print(
                prof.key_averages().table(
                    sort_by="self_cpu_time_total", row_limit=args.ops, max_name_column_width=48
                )
            )

    if args.kernel:
        import auraloss

        mss = auraloss.freq.MultiResolutionSTFTLoss()
        xs, ts = x[:, None], target[:, None]

        def mss_step() -> None:
            mss(xs.clone().requires_grad_(True), ts).backward()

        wall, sys_ms, faults = kernel_time(mss_step, args.repeats)
        print(f"auraloss MSS step: kernel {sys_ms:.1f} of {wall:.1f} ms wall, {faults:.0f} minor faults")


if __name__ == "__main__":
    main()
