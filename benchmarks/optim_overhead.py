"""Per-step cost and memory of P-Adam + P-SAGA: scrapl.optim against scrapl-loss 0.1.0's hooks.

Hook cost is isolated from the JTFS: the same random gradients (scaled like JTFS gradients) are
passed straight to each implementation's per-parameter hook, with the reference's counters
(``curr_path_idx``, ``scrapl_t``, ``path_counts``) set by hand, as its forward would set them.

* reference: ``SCRAPLLoss.grad_hook`` after ``attach_params`` (seed configuration, P = 315).
* ours, paper: ``PathwiseOptimizer.process_grad`` (default ``compat="paper"``).
* ours, reference compat: ``compat="reference"``, fed the reference's ``len(path_counts)``; its
  outputs are compared with the reference's at every step (correctness next to speed).

Model: the seed's toy model (Linear(48000, 8), PReLU, Linear(8, 48000), Tanh; 816,009 weights).
Timing: per step = the 5 hooks of one backward pass, on already-visited paths, after 1 and after
100 distinct paths were visited; the three implementations alternate step by step (median).
Memory: bytes of optimizer state for the toy model at P = 315.

Usage: ``python -m benchmarks.optim_overhead [--steps 10] [--threads 1]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from scrapl.optim import PathwiseOptimizer

__all__ = ["OptimResult", "toy_model", "bench_optim"]

SEED_CONFIG = dict(shape=48000, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2)
NAMES = {
    "reference": "scrapl-loss 0.1.0 `grad_hook`",
    "paper": "ours, `compat='paper'`",
    "compat": "ours, `compat='reference'`",
}


def toy_model(n_samples: int = 48000) -> nn.Module:
    """The seed README's model (816,009 weights in 5 tensors for 48000 samples)."""
    return nn.Sequential(nn.Linear(n_samples, 8), nn.PReLU(), nn.Linear(8, n_samples), nn.Tanh())


@dataclass
class OptimResult:
    """Median ms per step after 1 and after `distinct` visited paths, per implementation; state bytes."""

    n_weights: int
    n_paths: int
    steps: int
    distinct: int
    after_1: dict[str, float]
    after_many: dict[str, float]
    max_rel_err: float
    state_bytes: dict[str, tuple[int, int, int]]  # name -> bytes after 1, distinct, all paths


class _Runner:
    """Feeds one step's gradients to the three implementations and times each."""

    def __init__(self, ref, params: list[torch.Tensor], n_grad_sets: int = 4) -> None:
        self.ref = ref
        self.paper = PathwiseOptimizer(params, ref.n_paths)
        self.compat = PathwiseOptimizer(params, ref.n_paths, compat="reference")
        gen = torch.Generator().manual_seed(0)
        self.grads = [
            [torch.randn(p.shape, generator=gen) * 1e-7 for p in params] for _ in range(n_grad_sets)
        ]
        self.k = 0
        self.times: dict[str, list[float]] = {name: [] for name in NAMES}
        self.max_rel_err = 0.0

    def step(self, path: int, timed: bool) -> None:
        self.k += 1
        ref = self.ref
        ref.curr_path_idx, ref.scrapl_t = path, self.k  # what the reference's forward does
        ref.path_counts[path] += 1
        grads = self.grads[self.k % len(self.grads)]
        n_seen = len(ref.path_counts)
        clones = [g.clone() for g in grads]  # the reference scales its input in place
        t0 = time.perf_counter()
        ref_out = [ref.grad_hook(g, param_idx=i) for i, g in enumerate(clones)]
        t1 = time.perf_counter()
        for i, g in enumerate(grads):
            self.paper.process_grad(i, g, path, self.k)
        t2 = time.perf_counter()
        ours = [self.compat.process_grad(i, g, path, self.k, n_seen) for i, g in enumerate(grads)]
        t3 = time.perf_counter()
        if timed:
            for name, dt in (("reference", t1 - t0), ("paper", t2 - t1), ("compat", t3 - t2)):
                self.times[name].append(dt)
        for a, b in zip(ours, ref_out, strict=True):
            self.max_rel_err = max(self.max_rel_err, ((a - b).norm() / b.norm()).item())

    def take_medians(self) -> dict[str, float]:
        out = {k: statistics.median(v) * 1e3 for k, v in self.times.items()}
        self.times = {k: [] for k in self.times}
        return out


def _our_state_bytes(n_samples: int, n_paths: int, visits: tuple[int, ...]) -> list[int]:
    params = list(toy_model(n_samples).parameters())
    opt = PathwiseOptimizer(params, n_paths)
    grads = [torch.randn(p.shape) * 1e-7 for p in params]
    out = []
    for k, path in enumerate(range(max(visits)), start=1):
        for i, g in enumerate(grads):
            opt.process_grad(i, g, path, k)
        if k in visits:
            out.append(opt.memory_bytes().device_bytes)
    return out


def bench_optim(
    ref_module, *, steps: int = 10, distinct: int = 100, config: dict | None = None
) -> OptimResult:
    """Median hook time per step after 1 and after ``distinct`` visited paths (see module doc).

    ``config``: the loss configuration (default: the seed's, 48000 samples, P = 315); the toy
    model takes its ``shape`` as input and output size.
    """
    config = dict(SEED_CONFIG if config is None else config)
    torch.manual_seed(0)
    ref = ref_module.SCRAPLLoss(**config)
    params = list(toy_model(config["shape"]).parameters())
    ref.attach_params(params)
    runner = _Runner(ref, params)
    runner.step(0, timed=False)
    for _ in range(steps):
        runner.step(0, timed=True)
    after_1 = runner.take_medians()
    for path in range(1, distinct):
        runner.step(path, timed=False)
    for j in range(steps):
        runner.step((7 * j) % distinct, timed=True)
    after_many = runner.take_medians()
    P = ref.n_paths
    ref_bytes = sum(b.nbytes for m in (ref.p_adam_m, ref.p_adam_v, ref.prev_path_grads) for b in m.buffers())
    ref.attach_params([])
    visits = (1, min(distinct, P), P)
    return OptimResult(
        n_weights=sum(p.numel() for p in params),
        n_paths=P,
        steps=steps,
        distinct=distinct,
        after_1=after_1,
        after_many=after_many,
        max_rel_err=runner.max_rel_err,
        state_bytes={
            "reference": (ref_bytes,) * 3,
            "paper": tuple(_our_state_bytes(config["shape"], P, visits)),
        },
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per setting")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from .common import import_reference
    from .report import optim_table

    print("\n".join(optim_table(bench_optim(import_reference(), steps=args.steps))))


if __name__ == "__main__":
    main()
