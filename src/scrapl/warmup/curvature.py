"""The curvature values of one path: operators, start vectors and batched power iteration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from .factored import FactoredCurvature, HessianMode, batch_theta_hessian
from .hvp import DirectCurvature, PathLoss, ThetaBatching, WarmupBatch
from .power import PowerIterationResult, ReferenceInitStream, power_iteration, seeded_init

__all__ = ["Engine", "InitMode", "path_curvatures", "start_vectors"]

Engine = Literal["factored", "direct"]
InitMode = Literal["seeded", "reference", "chain"]


def path_curvatures(
    *,
    path_loss: PathLoss,
    theta_fn: Callable[..., Tensor],
    synth_fn: Callable[..., Tensor],
    batches: Sequence[WarmupBatch],
    groups: Sequence[Sequence[Tensor]],
    path_idx: int,
    n_theta: int,
    init_vectors: Sequence[Tensor],
    n_iter: int = 20,
    tol: float = 1e-4,
    engine: Engine = "factored",
    theta_batching: ThetaBatching = "loop",
    hessian: HessianMode = "auto",
    multibatch: bool = False,
) -> tuple[Tensor, list[PowerIterationResult]]:
    """Estimate ``C_{u,p} = |λ_max(A_u)|`` for every θ index u and parameter group of one path.

    The nθ operators of a group run as one batched power iteration.

    Args:
        path_loss: ``path_loss(x_hat, x, path_idx) -> scalar``, the one-path distance.
        theta_fn: the encoder, ``theta_fn(**kwargs) -> (B, nθ)``.
        synth_fn: the synth, ``synth_fn(θ, **kwargs) -> x̂``.
        batches: the warmup data.
        groups: parameter groups (``[params]``, or one group per tensor).
        path_idx: p.
        n_theta: nθ.
        init_vectors: per group, ``(nθ, n_g)`` start vectors.
        n_iter: power-iteration budget (maximum steps).
        tol: power-iteration tolerance on the relative change of λ.
        engine: ``"factored"`` (θ-space Hessian, :mod:`.factored`) or ``"direct"`` (:mod:`.hvp`).
        theta_batching: ``"vmap"`` or ``"loop"`` over θ.
        hessian: θ-space Hessian mode of the factored engine.
        multibatch: recompute forwards per product (forced by several batches).

    Returns:
        ``(vals, results)``: ``vals`` is ``(n_groups, nθ)`` float32; one result per group.
    """
    with torch.enable_grad():  # the warmup differentiates twice, even under no_grad()
        return _path_curvatures(
            path_loss=path_loss,
            theta_fn=theta_fn,
            synth_fn=synth_fn,
            batches=batches,
            groups=groups,
            path_idx=path_idx,
            n_theta=n_theta,
            init_vectors=init_vectors,
            n_iter=n_iter,
            tol=tol,
            engine=engine,
            theta_batching=theta_batching,
            hessian=hessian,
            multibatch=multibatch or len(batches) > 1,
        )


def _path_curvatures(
    *,
    path_loss,
    theta_fn,
    synth_fn,
    batches,
    groups,
    path_idx,
    n_theta,
    init_vectors,
    n_iter,
    tol,
    engine,
    theta_batching,
    hessian,
    multibatch,
):
    hessians = None
    if engine == "factored":
        all_params = [p for g in groups for p in g]
        hessians = [
            batch_theta_hessian(
                path_loss=path_loss,
                theta_fn=theta_fn,
                synth_fn=synth_fn,
                batch=b,
                params=all_params,
                path_idx=path_idx,
                n_theta=n_theta,
                theta_batching=theta_batching,
                hessian=hessian,
                keep_theta=not multibatch,
            )
            for b in batches
        ]
    vals, results = [], []
    for group, init in zip(groups, init_vectors, strict=True):
        if hessians is not None:
            op = FactoredCurvature(
                theta_fn=theta_fn,
                batches=batches,
                params=group,
                hessians=hessians,
                theta_batching=theta_batching,
            )
        else:
            op = DirectCurvature(
                path_loss=path_loss,
                theta_fn=theta_fn,
                synth_fn=synth_fn,
                batches=batches,
                params=group,
                path_idx=path_idx,
                n_theta=n_theta,
                multibatch=multibatch,
                theta_batching=theta_batching,
            )
        res = power_iteration(op, init, n_iter=n_iter, tol=tol)
        del op
        vals.append(res.eigenvalues.abs().float())
        results.append(res)
    return torch.stack(vals), results


def start_vectors(
    stream: ReferenceInitStream | None,
    *,
    seed: int,
    path: int,
    groups: Sequence[Sequence[Tensor]],
    n_theta: int,
) -> list[Tensor]:
    """The power-iteration start vectors of one path: per group ``(nθ, n_g)``.

    From ``stream`` (the reference's draws) if given, else :func:`seeded_init` keyed by
    ``(seed, path, group)`` in the dtype and on the device of the group.
    """
    dims = [sum(p.numel() for p in g) for g in groups]
    if stream is not None:
        drawn = stream.draw(n_theta, dims)  # float32 on the CPU, as the reference
        return [v.to(g[0].device) for v, g in zip(drawn, groups, strict=True)]
    return [
        seeded_init(n_theta, dims[gi], seed=seed, key=(path, gi), dtype=g[0].dtype, device=g[0].device)
        for gi, g in enumerate(groups)
    ]
