"""Quickstart: a SCRAPL loss and its gradient on the seed README's configuration."""

import time

import torch

from scrapl import SCRAPLLoss

torch.manual_seed(0)
loss_fn = SCRAPLLoss(shape=48000, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2)
x = torch.randn(4, 1, 48000, requires_grad=True)
x_target = torch.randn(4, 1, 48000)
for _ in range(3):
    t0 = time.perf_counter()
    loss = loss_fn(x, x_target)
    loss.backward()
    p = loss_fn.paths[loss_fn.curr_path_idx]
    print(
        f"path {p.idx:3d} (n2={p.n2:2d}, n_fr={p.n_fr:2d}, j2={p.j2:2d}, "
        f"rate {p.rate_hz(48000):8.2f} Hz, scale {p.scale_cycles_per_octave:+.3f} c/o): "
        f"loss {loss.item():.4e}, |grad| {x.grad.norm():.3e}, {time.perf_counter() - t0:.2f} s"
    )
    x.grad = None
