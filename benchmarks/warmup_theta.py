"""Benchmark: θ-IS warmup, per-θ loop vs batched over θ, for n_theta = 2 and 14.

Four ways to compute the curvature values of the same paths, side by side in one process:

* ``direct/loop``: the reference's structure (scrapl-loss 0.1.0): the gradients g_u of all θ
  built with one vmapped VJP, then one power iteration per θ, each product a double backward
  through encoder, synth and path loss;
* ``direct/vmap``: the same products, all running θ in one vmapped backward pass;
* ``factored/loop`` and ``factored/vmap``: the θ-space Hessian H (nθ products through synth and
  loss per path, one more to check it is block-diagonal), then power iterations that only
  differentiate the encoder.

Every method starts from the same seeded vectors, so the values agree up to float32 rounding;
the table reports that agreement next to the time. Times are the minimum over ``--repeats``
rounds, the methods alternating within each round; speed-ups are ratios to ``direct/loop``
measured in the same run. The stand-in path loss is a multi-resolution spectral distance
(windowed FFTs, magnitudes, a fixed random projection per path), smooth and FFT-bound like the
JTFS.

Usage::

    python benchmarks/warmup_theta.py [--n-theta 2 14] [--paths 3] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch import nn

from scrapl.warmup import run_warmup

METHODS = [("direct", "loop"), ("direct", "vmap"), ("factored", "loop"), ("factored", "vmap")]


class SpectralPathLoss:
    """``L_p(x̂, x) = mean_b ‖R_p (|STFT_p x̂_b| − |STFT_p x_b|)‖²`` with path-specific frames."""

    def __init__(self, n_samples: int, n_paths: int, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.frames = [256 * 2 ** (p % 3) for p in range(n_paths)]  # 256, 512, 1024, ...
        self.proj = [torch.randn(f // 2 + 1, 16, generator=gen) / f for f in self.frames]
        self.windows = [torch.hann_window(f) for f in self.frames]

    def spectrum(self, x: torch.Tensor, p: int) -> torch.Tensor:
        f = self.frames[p]
        frames = x.squeeze(1).unfold(-1, f, f // 2) * self.windows[p]  # (B, n_frames, f)
        spec = torch.fft.rfft(frames, dim=-1)  # (B, n_frames, f/2 + 1)
        mag = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-6)
        return mag @ self.proj[p]  # (B, n_frames, 16)

    def __call__(self, x_hat: torch.Tensor, x: torch.Tensor, path_idx: int) -> torch.Tensor:
        d = self.spectrum(x_hat, path_idx) - self.spectrum(x, path_idx)
        return (d**2).sum(dim=(1, 2)).mean()


def make_problem(n_theta: int, n_samples: int, batch: int, n_paths: int, seed: int = 0):
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(n_samples, 32), nn.Tanh(), nn.Linear(32, n_theta),
                            nn.Sigmoid())
    decoder = nn.Sequential(nn.Linear(n_theta, 64), nn.Tanh(), nn.Linear(64, n_samples),
                            nn.Tanh())
    x = torch.rand(batch, 1, n_samples) * 2 - 1
    return {
        "path_loss": SpectralPathLoss(n_samples, n_paths, seed),
        "theta_fn": lambda x: encoder(x.squeeze(1)),
        "synth_fn": lambda theta: decoder(theta).unsqueeze(1),
        "theta_fn_kwargs": [{"x": x}],
        "params": list(encoder.parameters()),
    }


def run(problem, n_paths, n_theta, engine, batching, n_iter):
    t0 = time.perf_counter()
    res = run_warmup(problem["path_loss"], problem["theta_fn"], problem["synth_fn"],
                     problem["theta_fn_kwargs"], problem["params"], n_paths=n_paths,
                     n_theta=n_theta, save_dir=None, n_iter=n_iter, engine=engine,
                     theta_batching=batching, progress=False)
    wall = time.perf_counter() - t0
    vals = torch.stack([res.vals[p][0] for p in range(n_paths)])  # (P, nθ)
    iters = sum(int(r[0].n_iters.sum()) for r in res.convergence.values())
    return wall, vals, iters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-theta", type=int, nargs="+", default=[2, 14])
    ap.add_argument("--paths", type=int, default=3)
    ap.add_argument("--samples", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--n-iter", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {platform.processor() or platform.platform()}, "
          f"torch {torch.__version__}, {args.threads} thread(s)")
    print(f"config: N={args.samples}, B={args.batch}, paths={args.paths}, "
          f"n_iter={args.n_iter}, tol=1e-4, init=seeded, repeats={args.repeats} (min)\n")
    print("| n_theta | method | time per path (s) | speed-up vs direct/loop | matvecs per path "
          "| max rel. diff of values vs direct/loop |")
    print("|---|---|---|---|---|---|")
    for n_theta in args.n_theta:
        problem = make_problem(n_theta, args.samples, args.batch, args.paths)
        best = {m: float("inf") for m in METHODS}
        out = {}
        run(problem, 1, n_theta, "direct", "loop", 2)  # warm-up (allocator, vmap rules)
        for r in range(args.repeats):
            for m in METHODS[r % len(METHODS):] + METHODS[:r % len(METHODS)]:
                wall, vals, iters = run(problem, args.paths, n_theta, *m, args.n_iter)
                best[m] = min(best[m], wall)
                out[m] = (vals, iters)
        base_t, (base_vals, _) = best[METHODS[0]], out[METHODS[0]]
        for m in METHODS:
            vals, iters = out[m]
            diff = ((vals - base_vals).abs() / base_vals.abs().clamp_min(1e-12)).max().item()
            print(f"| {n_theta} | {m[0]}/{m[1]} | {best[m] / args.paths:.3f} | "
                  f"{base_t / best[m]:.2f}x | {iters / args.paths:.0f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
