"""A toy θ-IS problem small enough to materialise every curvature operator densely.

Shared by the ``test_warmup_*`` modules (imported as ``test_warmup_toy``); its own tests check
the dense construction itself. Encoder: ``Linear(N, 4) -> tanh -> Linear(4, nθ) -> sigmoid``
(``n = 4N + 4 + 4nθ + nθ`` weights); synth: ``Linear(nθ, 5) -> tanh -> Linear(5, N)``; the stand-in
path loss of path p compares a few fixed random projections of ``x̂`` and ``x`` (a smooth,
non-quadratic function, one projection set per path).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch
from torch import nn
from torch.func import functional_call

from scrapl.warmup import Strategy, ThetaISState, WarmupOptions, WarmupResult, run_warmup

N_SAMPLES = 12


@dataclass
class Toy:
    encoder: nn.Module
    decoder: nn.Module
    proj: torch.Tensor  # (P, N, 3)
    batches: list[torch.Tensor]  # each (B, 1, N)
    n_theta: int
    coupled: bool = False
    direct_weight: bool = False
    calls: dict = field(default_factory=lambda: {"theta_fn": 0, "path_loss": 0})

    @property
    def n_paths(self) -> int:
        return self.proj.shape[0]

    @property
    def params(self) -> list[torch.Tensor]:
        return list(self.encoder.parameters())

    @property
    def theta_fn_kwargs(self) -> list[dict]:
        return [{"x": b} for b in self.batches]

    def theta_fn(self, x: torch.Tensor) -> torch.Tensor:
        self.calls["theta_fn"] += 1
        return self.encoder(x.squeeze(1))

    def synth_fn(self, theta: torch.Tensor) -> torch.Tensor:
        x_hat = self.decoder(theta)
        if self.direct_weight:  # the encoder's first bias reaches x̂ other than through θ
            x_hat = x_hat + 0.3 * self.encoder[0].bias.sum()
        return x_hat.unsqueeze(1)

    def path_loss(self, x_hat: torch.Tensor, x: torch.Tensor, path_idx: int) -> torch.Tensor:
        self.calls["path_loss"] += 1
        r = self.proj[path_idx]
        a, b = x_hat.squeeze(1) @ r, x.squeeze(1) @ r  # (B, 3)
        loss = ((a - b) ** 2).sum(1).mean() + 0.1 * (a**4).sum(1).mean()
        if self.coupled:  # couples the examples: the θ-Hessian is not block-diagonal
            loss = loss + 2.0 * (a.mean(0) ** 2).sum()
        return loss

    def warmup(self, **overrides) -> WarmupResult:
        """``run_warmup`` on this toy (every path, 8 iterations, no files, no progress bar).

        ``overrides`` replace any argument, the toy's own callables and tensors included: the
        problem's, the :class:`WarmupOptions`, the :class:`Strategy` (``engine``, ``hessian``,
        ``jacobian``), ``state``/``config``/``logger``, and ``min_prob_frac`` (of a fresh state).
        """
        args = (
            dict(
                path_loss=self.path_loss,
                theta_fn=self.theta_fn,
                synth_fn=self.synth_fn,
                theta_fn_kwargs=self.theta_fn_kwargs,
                params=self.params,
                n_paths=self.n_paths,
                n_theta=self.n_theta,
                save_dir=None,
                n_iter=8,
                progress=False,
            )
            | overrides
        )
        problem = {k: args.pop(k) for k in _PROBLEM if k in args}
        extra = {k: args.pop(k) for k in ("state", "config", "logger") if k in args}
        strategy = Strategy(**{k: args.pop(k) for k in ("engine", "hessian", "jacobian") if k in args})
        if "min_prob_frac" in args:
            floor = args.pop("min_prob_frac")
            extra["state"] = ThetaISState(
                n_paths=problem["n_paths"], n_theta=problem["n_theta"], min_prob_frac=floor
            )
        return run_warmup(**problem, options=WarmupOptions(**args), strategy=strategy, **extra)


_PROBLEM = (
    "path_loss",
    "theta_fn",
    "synth_fn",
    "theta_fn_kwargs",
    "params",
    "n_paths",
    "n_theta",
    "synth_fn_kwargs",
)


def make_toy(
    *,
    n_theta: int = 3,
    n_paths: int = 4,
    batch_size: int = 3,
    n_batches: int = 1,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    coupled: bool = False,
    direct_weight: bool = False,
) -> Toy:
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = nn.Sequential(nn.Linear(N_SAMPLES, 4), nn.Tanh(), nn.Linear(4, n_theta), nn.Sigmoid()).to(
            dtype
        )
        decoder = nn.Sequential(nn.Linear(n_theta, 5), nn.Tanh(), nn.Linear(5, N_SAMPLES)).to(dtype)
    proj = torch.randn(n_paths, N_SAMPLES, 3, generator=gen, dtype=dtype)
    batches = [torch.randn(batch_size, 1, N_SAMPLES, generator=gen, dtype=dtype) for _ in range(n_batches)]
    return Toy(encoder, decoder, proj, batches, n_theta, coupled, direct_weight)


def dense_operators(toy: Toy, path_idx: int, params: list[torch.Tensor] | None = None) -> torch.Tensor:
    """``(nθ, n, n)``: the matrices ``A_u`` (summed over batches), built with
    ``torch.autograd.functional.jacobian`` of ``g_u(w)`` (``A_u = (∂g_u/∂w)ᵀ``).

    ``params`` restricts w to a subset of the encoder tensors (the others held fixed).
    """
    names = [k for k, _ in toy.encoder.named_parameters()]
    all_params = dict(toy.encoder.named_parameters())
    params = toy.params if params is None else params
    sel = [k for k in names if any(all_params[k] is p for p in params)]
    sizes = [all_params[k].numel() for k in sel]
    w0 = torch.cat([all_params[k].detach().reshape(-1) for k in sel])

    def g_u(w: torch.Tensor, u: int) -> torch.Tensor:
        weights = {k: v.detach() for k, v in all_params.items()}
        weights.update({k: c.view_as(all_params[k]) for k, c in zip(sel, w.split(sizes), strict=True)})
        total = 0.0
        for x in toy.batches:
            theta = functional_call(toy.encoder, weights, (x.squeeze(1),))
            x_hat = toy.decoder(theta)
            if toy.direct_weight:
                x_hat = x_hat + 0.3 * weights["0.bias"].sum()
            loss = toy.path_loss(x_hat.unsqueeze(1), x, path_idx)
            c = torch.autograd.grad(loss, theta, create_graph=True)[0]
            mask = torch.zeros_like(c)
            mask[:, u] = 1.0
            g = torch.autograd.grad(
                theta, [weights[k] for k in sel], grad_outputs=c * mask, create_graph=True
            )
            total = total + torch.cat([q.reshape(-1) for q in g])
        return total

    mats = [torch.autograd.functional.jacobian(lambda w, u=u: g_u(w, u), w0).T for u in range(toy.n_theta)]
    return torch.stack(mats)


def dominant(matrix: torch.Tensor) -> torch.Tensor:
    """The eigenvalue of largest magnitude (complex) of a square matrix."""
    ev = torch.linalg.eigvals(matrix)
    return ev[ev.abs().argmax()]


def test_dense_operators_sum_to_the_weight_hessian():
    """Σ_u A_u = ∇²_w L_p: the θ slices add up to the full Hessian of the path loss."""
    toy = make_toy()
    A = dense_operators(toy, path_idx=1)
    names = [k for k, _ in toy.encoder.named_parameters()]
    sizes = [p.numel() for p in toy.params]
    w0 = torch.cat([p.detach().reshape(-1) for p in toy.params])

    def loss_of_w(w):
        weights = {k: c.view_as(p) for k, c, p in zip(names, w.split(sizes), toy.params, strict=True)}
        x = toy.batches[0]
        theta = functional_call(toy.encoder, weights, (x.squeeze(1),))
        return toy.path_loss(toy.decoder(theta).unsqueeze(1), x, 1)

    H = torch.autograd.functional.hessian(loss_of_w, w0)
    torch.testing.assert_close(A.sum(0), H, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("u", [0, 1, 2])
def test_dense_operators_are_not_symmetric(u):
    A = dense_operators(make_toy(), path_idx=0)[u]
    assert (A - A.T).abs().max() > 1e-3 * A.abs().max()
