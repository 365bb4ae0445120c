"""``torch.compile`` of a SCRAPL training step: compile time per path, and the step time compiled
against eager, on the same inputs, interleaved.

The step's computation is the engine on ``x`` (with autograd) and on the target (without), then
the distance; it traces into one graph (``fullgraph=True``). A graph is specialised to its path
(each path has its own shapes), so a run that visits ``P`` paths compiles ``P`` graphs; raise
``torch._dynamo.config.cache_size_limit`` (default 8) above ``P`` to keep them all.

Usage::

    python -m benchmarks.compile_step --paths 0 180 305 --modes default reduce-overhead

Not part of ``run.py``: each path takes tens of seconds to compile on a CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch._dynamo

from .common import PAPER, QUICK, SEED

SETUPS = {"paper": PAPER, "seed": SEED, "quick": QUICK}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=sorted(SETUPS), default="paper")
    ap.add_argument("--paths", type=int, nargs="+", default=[0, 180, 305])
    ap.add_argument("--modes", nargs="+", default=["default", "reduce-overhead"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from scrapl import TimeFrequencyScattering
    from scrapl.distance import path_distance

    torch._dynamo.config.cache_size_limit = max(64, len(args.paths))
    setup = SETUPS[args.config]
    jtfs = TimeFrequencyScattering(**setup.kwargs())
    gen = torch.Generator().manual_seed(0)
    x0, target = (torch.randn(args.batch, setup.shape, generator=gen) for _ in range(2))

    def step(x: torch.Tensor, k: int) -> torch.Tensor:
        S = jtfs.path(x, k)
        with torch.no_grad():
            S_target = jtfs.path(target, k)
        return path_distance(S, S_target)

    def run(fn, k: int) -> tuple[float, torch.Tensor, torch.Tensor]:
        x = x0.clone().requires_grad_(True)
        t0 = time.thread_time()
        value = fn(x, k)
        value.backward()
        return time.thread_time() - t0, value.detach(), x.grad

    print(f"{setup.describe()}, batch {args.batch}, {args.threads} thread(s); thread-CPU ms, medians")
    for mode in args.modes:
        compiled = torch.compile(step, fullgraph=True, mode=None if mode == "default" else mode)
        for k in args.paths:
            t0 = time.perf_counter()
            _, value, grad = run(compiled, k)
            first = time.perf_counter() - t0
            _, ref_value, ref_grad = run(step, k)
            err = ((grad - ref_grad).norm() / ref_grad.norm()).item()
            times: dict[str, list[float]] = {"eager": [], "compiled": []}
            for r in range(args.repeats):
                order = [("eager", step), ("compiled", compiled)][:: 1 if r % 2 else -1]
                for name, fn in order:
                    times[name].append(run(fn, k)[0])
            eager, comp = (statistics.median(times[n]) * 1e3 for n in ("eager", "compiled"))
            print(
                f"mode={mode} path {k}: first call (compile) {first:.1f} s; step eager {eager:.1f} ms, "
                f"compiled {comp:.1f} ms (compiled / eager {comp / eager:.2f}); loss rel. diff "
                f"{abs(value - ref_value).item() / abs(ref_value).item():.1e}, grad {err:.1e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
