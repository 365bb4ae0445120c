"""Per-step cost and memory of P-Adam + P-SAGA: scrapl.optim vs scrapl-loss 0.1.0's gradient hooks.

Hook cost is isolated from the JTFS: the same random gradients (scaled like JTFS gradients) are
passed straight to each implementation's per-parameter hook, with the reference's counters
(``curr_path_idx``, ``scrapl_t``, ``path_counts``) set by hand, as its forward would set them.

* reference: ``SCRAPLLoss.grad_hook`` after ``attach_params`` (seed configuration, P = 315).
* ours, paper: ``PathwiseOptimizer.process_grad`` (default ``compat="paper"``).
* ours, reference compat: ``compat="reference"``, fed the reference's ``len(path_counts)``; its
  outputs are compared with the reference's at every timed step (correctness next to speed).

Model: the seed's toy model (Linear(48000, 8), PReLU, Linear(8, 48000), Tanh; 816,009 weights).
Timing: per step = the 5 hooks of one backward pass; steps revisit already-visited paths, after 1
and after 100 distinct paths were visited; the three implementations alternate step by step.
Memory: state bytes for the toy model and for a 604,186-weight model (Linear(24000, 25), PReLU,
Linear(25, 160)) at P = 315.

Usage: ``python benchmarks/optim_overhead.py [--steps 10] [--threads 1]``
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from scrapl.optim import PathwiseOptimizer  # noqa: E402

SEED_CONFIG = dict(shape=48000, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2)


def toy_model() -> nn.Module:
    return nn.Sequential(nn.Linear(48000, 8), nn.PReLU(), nn.Linear(8, 48000), nn.Tanh())


def model_604k() -> nn.Module:
    return nn.Sequential(nn.Linear(24000, 25), nn.PReLU(), nn.Linear(25, 160))


def import_reference():
    from fetch_reference import fetch

    sys.path.append(str(fetch()))
    import scrapl_ref

    for name in ("scrapl_ref", "scrapl_ref.scrapl_loss"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return scrapl_ref


class Runner:
    """Feeds one step's gradients to the three implementations and times each."""

    def __init__(self, ref, params: list[torch.Tensor], n_grad_sets: int = 4) -> None:
        self.ref = ref
        self.params = params
        self.paper = PathwiseOptimizer(params, ref.n_paths)
        self.compat = PathwiseOptimizer(params, ref.n_paths, compat="reference")
        gen = torch.Generator().manual_seed(0)
        self.grads = [
            [torch.randn(p.shape, generator=gen) * 1e-7 for p in params] for _ in range(n_grad_sets)
        ]
        self.k = 0
        self.times: dict[str, list[float]] = {"reference": [], "paper": [], "compat": []}
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
            err = ((a - b).norm() / b.norm()).item()
            self.max_rel_err = max(self.max_rel_err, err)

    def take_times(self) -> dict[str, tuple[float, float]]:
        out = {k: (min(v), statistics.median(v)) for k, v in self.times.items()}
        self.times = {k: [] for k in self.times}
        return out


def ours_memory(model: nn.Module, n_paths: int, visits: list[int], offload: bool) -> list:
    """Memory reports of a fresh paper-mode optimizer after each count in ``visits``."""
    params = list(model.parameters())
    opt = PathwiseOptimizer(params, n_paths, offload=offload)
    grads = [torch.randn(p.shape) * 1e-7 for p in params]
    reports, k = [], 0
    for path in range(max(visits)):
        k += 1
        for i, g in enumerate(grads):
            opt.process_grad(i, g, path, k)
        if k in visits:
            reports.append(opt.memory_bytes())
    return reports


def gib(n: int) -> str:
    return f"{n / 2**30:.3f} GiB" if n >= 2**26 else f"{n / 2**20:.2f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per setting")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, "
          f"python {platform.python_version()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")  # fmt: skip

    scrapl_ref = import_reference()
    ref = scrapl_ref.SCRAPLLoss(**SEED_CONFIG)
    model = toy_model()
    params = list(model.parameters())
    n = sum(p.numel() for p in params)
    ref.attach_params(params)
    P = ref.n_paths
    print(f"toy model: {n} weights in {len(params)} tensors; P = {P}\n")

    runner = Runner(ref, params)
    runner.step(0, timed=False)
    for _ in range(args.steps):
        runner.step(0, timed=True)
    after_1 = runner.take_times()
    for path in range(1, 100):
        runner.step(path, timed=False)
    for j in range(args.steps):
        runner.step((7 * j) % 100, timed=True)
    after_100 = runner.take_times()

    print("| hooks per step (5 tensors) | 1 visited path: min / median | "
          "100 visited paths: min / median | ref / ours (median, 100) |")  # fmt: skip
    print("|---|---|---|---|")
    names = {"reference": "scrapl-loss 0.1.0 grad_hook", "paper": "ours, compat='paper'",
             "compat": "ours, compat='reference'"}  # fmt: skip
    for key, label in names.items():
        a, b = after_1[key], after_100[key]
        ratio = after_100["reference"][1] / b[1]
        print(f"| {label} | {a[0] * 1e3:.1f} / {a[1] * 1e3:.1f} ms | "
              f"{b[0] * 1e3:.1f} / {b[1] * 1e3:.1f} ms | {ratio:.1f}x |")  # fmt: skip
    print(f"\nmax relative error, ours (compat='reference') vs reference hook outputs, over "
          f"{runner.k} steps: {runner.max_rel_err:.2e}\n")  # fmt: skip

    ref_bytes = {"toy (816,009)": sum(b.nbytes for m in (ref.p_adam_m, ref.p_adam_v,
                                                          ref.prev_path_grads)
                                      for b in m.buffers())}  # fmt: skip
    ref.attach_params([])
    del runner, ref
    m604 = model_604k()
    n604 = sum(p.numel() for p in m604.parameters())
    ref_bytes[f"604K ({n604:,})"] = 3 * P * n604 * 4  # attach_params: 3 (P, *shape) float32 tables

    print("| model (weights) | state | reference (preallocated) | "
          "ours, 1 visited | ours, 100 visited | ours, all 315 visited |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for (label, rb), m in zip(ref_bytes.items(), (toy_model(), m604), strict=True):
        for offload in (False, True):
            reports = ours_memory(m, P, [1, 100, P], offload)
            cells = [f"{gib(r.device_bytes)} dev + {gib(r.offloaded_bytes)} host" if offload
                     else gib(r.device_bytes) for r in reports]  # fmt: skip
            kind = "offload=True" if offload else "offload=False"
            print(f"| {label} | {kind} | {gib(rb)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
