"""The curvature values of one path: operators, start vectors and batched power iteration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._logging import get_logger
from .arnoldi import arnoldi_iteration
from .factored import BatchHessian, FactoredCurvature, batch_theta_hessian, encoder_jacobian
from .hvp import DirectCurvature, flat_size
from .options import EigenMethod, Engine, HessianMode, JacobianMode, ThetaBatching
from .power import (
    NonFiniteProductError,
    PowerIterationResult,
    ReferenceInitStream,
    power_iteration,
    seeded_init,
)
from .problem import WarmupBatch, WarmupProblem

__all__ = [
    "CurvatureSettings",
    "NonFiniteCurvatureError",
    "SharedEncoder",
    "check_finite_vals",
    "path_curvatures",
    "start_vectors",
]

log = get_logger("scrapl.warmup")


class NonFiniteCurvatureError(ValueError):
    """A path's curvature value is NaN or infinite (from the encoder, the synth or the data).

    Attributes:
        path_idx: the path p.
        theta_idx: the θ index u.
        group: the parameter group (0 with ``agg="none"``).
    """

    def __init__(self, path_idx: int, theta_idx: int, group: int, detail: str) -> None:
        where = f"path {path_idx}, theta index {theta_idx}" + (f", parameter group {group}" if group else "")
        super().__init__(
            f"the curvature of {where} is not finite ({detail}): theta_fn, synth_fn or the warmup "
            f"data produce NaN or inf; nothing was saved for path {path_idx}"
        )
        self.path_idx, self.theta_idx, self.group = path_idx, theta_idx, group


def check_finite_vals(vals: Tensor, path_idx: int) -> None:
    """Raise :class:`NonFiniteCurvatureError` if a value of ``(n_groups, nθ)`` ``vals`` is not finite."""
    bad = (~torch.isfinite(vals)).nonzero()
    if len(bad):
        g, u = (int(i) for i in bad[0])
        raise NonFiniteCurvatureError(path_idx, u, g, f"value {vals[g, u].item()}")


@dataclass(frozen=True)
class CurvatureSettings:
    """How the operators of a path are built and solved (resolved by the driver).

    Attributes:
        engine: ``"factored"`` (:mod:`.factored`) or ``"direct"`` (:mod:`.hvp`).
        theta_batching: ``"vmap"`` or ``"loop"`` over θ in the factored engine's products, which
            differentiate the encoder only; whatever runs through the synth and the path loss
            (the θ-Hessian's columns, every direct product) loops, as the JTFS cannot be vmapped.
        hessian: the θ-space Hessian mode of the factored engine.
        multibatch: recompute forwards per product (forced by several batches).
        method: ``"power"`` (:func:`~.power.power_iteration`, the reference's) or ``"arnoldi"``
            (:func:`~.arnoldi.arnoldi_iteration`).
        n_iter: products per operator, at most.
        tol: the stopping tolerance of ``method``.
    """

    engine: Engine = "factored"
    theta_batching: ThetaBatching = "loop"
    hessian: HessianMode = "auto"
    multibatch: bool = False
    method: EigenMethod = "power"
    n_iter: int = 20
    tol: float = 1e-4


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
    problem: WarmupProblem,
    settings: CurvatureSettings,
    *,
    groups: Sequence[Sequence[Tensor]],
    path_idx: int,
    init_vectors: Sequence[Tensor],
    shared: SharedEncoder | None = None,
) -> tuple[Tensor, list[PowerIterationResult]]:
    """Estimate ``C_{u,p} = |λ_max(A_u)|`` for every θ index u and parameter group of one path.

    The nθ operators of a group run as one batched power (or Arnoldi) iteration.

    Args:
        problem: the functions, data and weights.
        settings: engine, batching and estimator.
        groups: parameter groups (``[params]``, or one group per tensor).
        path_idx: p.
        init_vectors: per group, ``(nθ, n_g)`` start vectors.
        shared: what the run's paths share (factored engine); None: nothing is shared.

    Returns:
        ``(vals, results)``: ``vals`` is ``(n_groups, nθ)`` float32, finite; one result per group.

    Raises:
        NonFiniteCurvatureError: a product or value is NaN or inf (naming path, θ index, group);
            the iteration stops at the first such product.
    """
    multibatch = settings.multibatch or len(problem.batches) > 1
    with torch.enable_grad():  # the warmup differentiates twice, even under no_grad()
        hessians = None
        if settings.engine == "factored":
            hessians = _batch_hessians(problem, settings, path_idx, multibatch, shared)
        vals, results = [], []
        for g, (group, init) in enumerate(zip(groups, init_vectors, strict=True)):
            op = _operator(problem, settings, hessians, group, path_idx, multibatch, shared)
            solve = arnoldi_iteration if settings.method == "arnoldi" else power_iteration
            try:
                res = solve(op, init, n_iter=settings.n_iter, tol=settings.tol)
            except NonFiniteProductError as err:
                detail = f"product {err.step} of the {settings.method} iteration"
                raise NonFiniteCurvatureError(path_idx, err.operator, g, detail) from err
            del op
            vals.append(res.eigenvalues.abs().float())
            results.append(res)
    out = torch.stack(vals)
    check_finite_vals(out, path_idx)
    return out, results


def _batch_hessians(
    problem: WarmupProblem,
    settings: CurvatureSettings,
    path_idx: int,
    multibatch: bool,
    shared: SharedEncoder | None,
) -> list[BatchHessian]:
    """The θ-space Hessian of every batch (factored engine); a probed structure is remembered."""
    kept = shared is not None and not multibatch  # θ (and J) shared by the run's paths
    hessians = [
        batch_theta_hessian(
            path_loss=problem.path_loss,
            theta_fn=problem.theta_fn,
            synth_fn=problem.synth_fn,
            batch=b,
            params=problem.params,
            path_idx=path_idx,
            n_theta=problem.n_theta,
            hessian=shared.hessian_mode(settings.hessian) if shared is not None else settings.hessian,
            keep_theta=not multibatch,
            theta=shared.theta(i, b, problem.theta_fn) if kept and shared is not None else None,
        )
        for i, b in enumerate(problem.batches)
    ]
    if shared is not None:
        shared.record(settings.hessian, hessians, path_idx)
    return hessians


def _operator(
    problem: WarmupProblem,
    settings: CurvatureSettings,
    hessians: list[BatchHessian] | None,
    group: Sequence[Tensor],
    path_idx: int,
    multibatch: bool,
    shared: SharedEncoder | None,
) -> Callable[[Tensor, Tensor], Tensor]:
    """The batched operator ``(vectors, index) -> A_index v`` of one parameter group."""
    if hessians is None:
        return DirectCurvature(
            path_loss=problem.path_loss,
            theta_fn=problem.theta_fn,
            synth_fn=problem.synth_fn,
            batches=problem.batches,
            params=group,
            path_idx=path_idx,
            n_theta=problem.n_theta,
            multibatch=multibatch,
        )
    jacobians = None
    if shared is not None and not multibatch and settings.theta_batching == "loop":
        jacobians = [shared.group_jacobian(i, problem.params, group) for i in range(len(problem.batches))]
    return FactoredCurvature(
        theta_fn=problem.theta_fn,
        batches=problem.batches,
        params=group,
        hessians=hessians,
        theta_batching=settings.theta_batching,
        jacobians=jacobians,
    )


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
