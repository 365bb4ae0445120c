"""Configurations and signals shared by the parity tests against scrapl-loss 0.1.0."""

from __future__ import annotations

import math

import torch

# name -> (constructor kwargs). A and B are the seed README's, C and D the paper's.
CONFIGS = {
    "A": dict(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1),
    "B": dict(shape=48000, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2),
    "C": dict(shape=32768, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2, T=4096, F=8),
    "D": dict(shape=44100, J=12, Q1=8, Q2=2, J_fr=5, Q_fr=2, T=2048, F=1, use_rho_log1p=True),
}
N_PATHS = {"A": 7, "B": 315, "C": 315, "D": 483}
SMALL = ("A",)
LARGE = ("B", "C", "D")


def make_signals(N: int, batch: int = 2, dtype=torch.float32, seed: int = 0):
    """An amplitude-modulated tone plus noise, and a delayed, differently noisy target.

    The target is not a near-copy of the input, so the distance is not a difference of nearly equal
    numbers and float32 results can be compared to 1e-4 (cf. ``jtfs-spec.md`` §9.4).
    Shapes: ``(batch, 1, N)`` each.
    """
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(N, dtype=torch.float64)

    def f(t, f0):
        return torch.sin(2 * math.pi * f0 * t / 8000) * (1 + 0.5 * torch.sin(2 * math.pi * 3 * t / 8000))

    rows_x, rows_y = [], []
    for b in range(batch):
        f0 = 440.0 * 2 ** (b / 3)
        rows_x.append(f(t, f0) + 0.1 * torch.randn(N, generator=g, dtype=torch.float64))
        rows_y.append(0.7 * f(t - 500, f0 * 1.1) + 0.1 * torch.randn(N, generator=g, dtype=torch.float64))
    x = torch.stack(rows_x)[:, None].to(dtype)
    y = torch.stack(rows_y)[:, None].to(dtype)
    return x, y


def spread_paths(paths, n: int = 16) -> list[int]:
    """At least ``n`` path indices covering every second-order decimation ``j2`` (first, last and one
    path of each ``j2`` with a rotating frequential filter, then evenly spaced ones)."""
    chosen = {0, len(paths) - 1}
    n_fr_count = max(p.n_fr for p in paths) + 1
    for j2 in sorted({p.j2 for p in paths}):
        group = [p for p in paths if p.j2 == j2]
        want = (j2 * 5) % n_fr_count
        chosen.add(next((p.idx for p in group if p.n_fr == want), group[0].idx))
    k = 0
    while len(chosen) < n:
        chosen.add(int(round(k * (len(paths) - 1) / (n - 1))))
        k += 1
    return sorted(chosen)
