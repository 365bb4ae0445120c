"""The curvature values of one path: operators, start vectors and batched power iteration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from .._logging import get_logger
from .arnoldi import arnoldi_iteration
from .factored import BatchHessian, FactoredCurvature, HessianMode, batch_theta_hessian, encoder_jacobian
from .hvp import DirectCurvature, PathLoss, ThetaBatching, WarmupBatch, flat_size
from .power import PowerIterationResult, ReferenceInitStream, power_iteration, seeded_init

__all__ = [
    "Engine",
    "EigenMethod",
    "InitMode",
    "JacobianMode",
    "SharedEncoder",
    "path_curvatures",
    "start_vectors",
]

Engine = Literal["factored", "direct"]
InitMode = Literal["seeded", "reference", "chain"]
JacobianMode = Literal["auto", "on", "off"]
EigenMethod = Literal["power", "arnoldi"]

log = get_logger("scrapl.warmup")


class SharedEncoder:
    """What the paths of one warmup run share (factored engine): weights and data do not change.

    * Per batch kept in memory (one batch, not multibatch): the encoder output θ with its graph,
      computed once per run instead of once per path.
    * Per such batch and parameter group: the encoder's Jacobian ``J`` (:func:`encoder_jacobian`),
      with ``jacobian="on"``, or ``"auto"`` when it pays and fits: it costs ``B·nθ`` backward
      passes once and saves one per operator product, so "auto" builds it when the run expects at
      least twice as many products (``expected_products``) and it takes at most ``max_bytes``.
    * The θ-Hessian's structure once an ``"auto"`` probe has decided it (block-diagonal or not is
      a property of encoder, synth and loss, not of the path): later paths skip the probe, one
      double backward through synth and path loss each.

    Args:
        jacobian: ``"auto"``, ``"on"`` or ``"off"``.
        expected_products: operator products the run expects (to weigh the Jacobian's cost).
        max_bytes: the largest Jacobian "auto" builds (default 256 MiB).
    """

    def __init__(
        self, *, jacobian: JacobianMode = "auto", expected_products: int = 0, max_bytes: int = 2**28
    ) -> None:
        self.jacobian, self.expected_products, self.max_bytes = jacobian, expected_products, max_bytes
        self.structure: HessianMode | None = None  # decided by a probe
        self._theta: dict[int, Tensor] = {}
        self._jac: dict[int, Tensor | None] = {}  # batch -> J over all params, or None (not worth it)

    def hessian_mode(self, requested: HessianMode) -> HessianMode:
        """The mode to build the θ-Hessian with: a decided structure replaces ``"auto"``."""
        return self.structure if requested == "auto" and self.structure is not None else requested

    def record(self, requested: HessianMode, hessians: Sequence[BatchHessian], path_idx: int) -> None:
        """Keep the structure an ``"auto"`` probe found (on any batch) for the run's next paths."""
        if requested != "auto" or self.structure is not None:
            return
        if any(bh.hessian.probed for bh in hessians):
            full = any(bh.hessian.full is not None for bh in hessians)
            self.structure = "full" if full else "block"
            log.debug("theta Hessian decided on path %d: %s (not probed again)", path_idx, self.structure)

    def theta(self, i: int, batch: WarmupBatch, theta_fn: Callable[..., Tensor]) -> Tensor:
        """θ of batch ``i`` with its graph (computed on first use)."""
        if i not in self._theta:
            self._theta[i] = theta_fn(**batch.theta_fn_kwargs)
        return self._theta[i]

    def group_jacobian(self, i: int, all_params: Sequence[Tensor], group: Sequence[Tensor]) -> Tensor | None:
        """``(B, nθ, n_g)``: the Jacobian of batch ``i``'s θ w.r.t. ``group``, or None."""
        if i not in self._jac:
            theta, n = self._theta[i], flat_size(all_params)
            nbytes = theta.numel() * n * all_params[0].element_size()
            worth = self.expected_products >= 2 * theta.numel() and nbytes <= self.max_bytes
            build = self.jacobian == "on" or (self.jacobian == "auto" and worth)
            self._jac[i] = encoder_jacobian(theta, all_params).detach() if build else None
        J = self._jac[i]
        if J is None or [id(p) for p in group] == [id(p) for p in all_params]:
            return J
        offsets, start = {}, 0
        for p in all_params:
            offsets[id(p)] = (start, start + p.numel())
            start += p.numel()
        return torch.cat([J[..., offsets[id(p)][0] : offsets[id(p)][1]] for p in group], dim=-1)


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
    shared: SharedEncoder | None = None,
    method: EigenMethod = "power",
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
        shared: what the run's paths share (factored engine); None: nothing is shared.
        method: ``"power"`` (:func:`~.power.power_iteration`, the reference's) or ``"arnoldi"``
            (:func:`~.arnoldi.arnoldi_iteration`: the same eigenvalue from the Krylov subspace,
            ``tol`` then bounds the relative residual).

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
            shared=shared,
            method=method,
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
    shared,
    method,
):
    hessians = None
    all_params = [p for g in groups for p in g]
    kept = shared is not None and not multibatch  # θ (and J) shared by the run's paths
    if engine == "factored":
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
                hessian=shared.hessian_mode(hessian) if shared is not None else hessian,
                keep_theta=not multibatch,
                theta=shared.theta(i, b, theta_fn) if kept else None,
            )
            for i, b in enumerate(batches)
        ]
        if shared is not None:
            shared.record(hessian, hessians, path_idx)
    vals, results = [], []
    for group, init in zip(groups, init_vectors, strict=True):
        if hessians is not None:
            jacobians = None
            if kept and theta_batching == "loop":
                jacobians = [shared.group_jacobian(i, all_params, group) for i in range(len(batches))]
            op = FactoredCurvature(
                theta_fn=theta_fn,
                batches=batches,
                params=group,
                hessians=hessians,
                theta_batching=theta_batching,
                jacobians=jacobians,
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
        solve = arnoldi_iteration if method == "arnoldi" else power_iteration
        res = solve(op, init, n_iter=n_iter, tol=tol)
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
