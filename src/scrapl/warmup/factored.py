"""The θ-IS curvature operator through the θ-space Hessian ("factored" engine).

When the weights reach the loss only through θ (the encoder/synth architecture of θ-IS), the
operator of :mod:`scrapl.warmup.hvp` factors exactly. With ``J = ∂θ/∂w`` (``(B·nθ) × n``),
``H = ∂²L_p/∂θ∂θ`` (``(B·nθ) × (B·nθ)``), ``c = ∂L_p/∂θ`` and ``D_u`` the projection on the
entries ``(b, u)``::

    A_u v = Jᵀ H D_u J v  +  Σ_b c_{b,u} ∇²_w θ_{b,u} v                          (1)
          = ∇_w [ ⟨Y_u, θ(w)⟩ + ⟨D_u c, J(w) v⟩ ],   Y_u = H D_u J v  (held constant)

Only ``c`` and ``H`` involve the synth and the path loss, and neither depends on v: they are
computed once per path (and batch). Every power-iteration step then differentiates the encoder
alone. ``H`` is built from Hessian-vector products in θ-space:

* ``"block"``: when the loss is a sum of per-example terms and the synth is per-example, ``H`` is
  block-diagonal with B blocks ``(nθ, nθ)``, and nθ products (cotangent ``e_k`` on every example)
  give all blocks at once;
* ``"full"``: ``B·nθ`` products give every column;
* ``"auto"`` (default): build the blocks, then probe the structure with one extra product whose
  cotangent is random on one example ``b0`` and zero elsewhere. A per-example computation gives
  a response that vanishes, exactly, off ``b0``; if it does not (norm off ``b0`` above
  ``block_rtol`` times the norm on ``b0``), the examples are coupled and the full matrix is built.
  The probe tests the structure, not the values: in float32 the double backward through a JTFS
  path is only accurate to a few per cent (the demo's paths 0-2: ``‖Hz − blocks·z‖ / ‖Hz‖`` of
  3-7 % for a loss that is exactly per-example), so comparing values would reject blocks that are
  right and build all ``B·nθ`` columns, just as noisy, at ``B`` times the cost. Coupling that
  leaves ``b0`` out (say, only between examples 3 and 5) is not seen; batch statistics couple
  every example, ``b0`` included. Use ``"full"`` when in doubt. A warmup run probes on its first
  path (the first whose probe responds at all) and keeps the decision for its other paths: the
  structure belongs to encoder, synth and loss, not to the path.

So the expensive double backward through synth and path loss runs nθ times per path and batch
(+1 for the probe), against up to ``n_iter·nθ`` times for the direct engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._logging import get_logger
from .hvp import _flatten, _split, flat_size, forward_path_loss, theta_loss_grad
from .options import HessianMode, ThetaBatching
from .problem import PathLoss, WarmupBatch

__all__ = [
    "BatchHessian",
    "FactoredCurvature",
    "ThetaHessian",
    "batch_theta_hessian",
    "encoder_jacobian",
    "loss_reaches_params",
    "theta_hessian",
]

log = get_logger("scrapl.warmup")


def loss_reaches_params(loss: Tensor, params: Sequence[Tensor]) -> bool:
    """Whether the autograd graph of ``loss`` leads to any of ``params`` (graph walk, no compute)."""
    ids = {id(p) for p in params}
    seen, stack = set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        var = getattr(node, "variable", None)
        if var is not None and id(var) in ids:
            return True
        stack.extend(nxt for nxt, _ in node.next_functions)
    return False


def _hessian_columns(c: Tensor, theta: Tensor, cot: Tensor) -> Tensor:
    """``(k, B, nθ)`` cotangents -> ``(k, B, nθ)`` products ``H cot_i``, one backward each
    (through synth and path loss, whose JTFS backward cannot be vmapped; graph retained)."""
    return torch.stack(
        [
            torch.autograd.grad(c, theta, grad_outputs=z, retain_graph=True, materialize_grads=True)[0]
            for z in cot
        ]
    )


class ThetaHessian:
    """``H = ∂²L/∂θ∂θ`` of one path and batch, block-diagonal ``(B, nθ, nθ)`` or full.

    Attributes:
        blocks: ``(B, nθ, nθ)`` with ``blocks[b, j, k] = H[(b, j), (b, k)]``, or None.
        full: ``(B, nθ, B, nθ)`` with ``full[b, j, b', k] = H[(b, j), (b', k)]``, or None.
        probed: whether an ``"auto"`` probe decided the structure (its response was not zero);
            a warmup run keeps that decision for its other paths.
    """

    def __init__(
        self, *, blocks: Tensor | None = None, full: Tensor | None = None, probed: bool = False
    ) -> None:
        if (blocks is None) == (full is None):
            raise ValueError("ThetaHessian needs exactly one of blocks and full")
        self.blocks, self.full, self.probed = blocks, full, probed

    def apply_column(self, t: Tensor, theta_idx: Tensor) -> Tensor:
        """Compute ``Y_i = H D_{u_i} t_i``.

        Args:
            t: ``(k, B)``, ``t[i, b] = (J v_i)_{b, u_i}``.
            theta_idx: ``(k,)`` the u_i.

        Returns:
            ``(k, B, nθ)``.
        """
        if self.blocks is not None:
            cols = self.blocks[:, :, theta_idx]  # (B, nθ, k): column u_i of every block
            return cols.permute(2, 0, 1) * t.unsqueeze(-1)  # (k, B, nθ) * (k, B, 1)
        assert self.full is not None  # exactly one of blocks and full (see __init__)
        cols = self.full[:, :, :, theta_idx]  # (B, nθ, B', k)
        return torch.einsum("bjck,kc->kbj", cols, t)  # Σ_b' H[(b,j),(b',u_i)] t[i,b']


def _block_probe(
    c: Tensor, theta: Tensor, blocks: Tensor, generator: torch.Generator | None
) -> tuple[float, float, bool]:
    """Probe ``H`` with a cotangent ``z`` random on one example ``b0`` and zero elsewhere.

    Returns:
        ``(coupling, noise, informative)``: ``‖(Hz)_{b≠b0}‖ / ‖(Hz)_{b0}‖`` (0 for a per-example
        loss), ``‖(Hz)_{b0} − blocks[b0] z_{b0}‖ / ‖(Hz)_{b0}‖`` (the rounding of the double
        backward), and whether the response was not zero everywhere (a zero response, e.g. from a
        path with no gradient, says nothing about the structure).
    """
    B, n_theta = theta.shape
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    b0 = int(torch.randint(B, (1,), generator=gen))
    z = torch.zeros(B, n_theta, dtype=theta.dtype, device=theta.device)
    z[b0] = torch.randn(n_theta, generator=gen, dtype=torch.float64).to(theta)
    resp = torch.autograd.grad(c, theta, grad_outputs=z, retain_graph=True, materialize_grads=True)[0]
    on = torch.linalg.vector_norm(resp[b0]).clamp_min(torch.finfo(resp.dtype).tiny)
    off = torch.linalg.vector_norm(torch.cat([resp[:b0], resp[b0 + 1 :]]))
    noise = torch.linalg.vector_norm(resp[b0] - blocks[b0] @ z[b0])
    informative = bool(resp.abs().amax() > 0)
    return (off / on).item(), (noise / on).item(), informative


def theta_hessian(
    c: Tensor,
    theta: Tensor,
    *,
    mode: HessianMode = "auto",
    block_rtol: float = 1e-3,
    generator: torch.Generator | None = None,
) -> ThetaHessian:
    """Build ``H = ∂c/∂θ`` from θ-space Hessian-vector products (graph of ``c`` retained).

    Args:
        c: ``(B, nθ)`` loss gradient w.r.t. the leaf ``theta``, with graph.
        theta: ``(B, nθ)`` leaf tensor.
        mode: ``"block"``, ``"full"`` or ``"auto"`` (see the module docstring).
        block_rtol: the ``"auto"`` probe's tolerance: the response off the probed example,
            relative to the response on it (exactly 0 for a per-example loss).
        generator: CPU generator for the check's random cotangent (default: fixed seed 0).

    Returns:
        A :class:`ThetaHessian`.
    """
    B, n_theta = theta.shape
    eye = torch.eye(n_theta, dtype=theta.dtype, device=theta.device)
    if mode in ("block", "auto"):
        cot = eye.unsqueeze(1).expand(n_theta, B, n_theta)  # (k, B, nθ): e_k on every example
        cols = _hessian_columns(c, theta, cot)  # (k, B, nθ)
        blocks = cols.permute(1, 2, 0).contiguous()  # blocks[b, j, k] = cols[k, b, j]
        if mode == "block" or B == 1:
            return ThetaHessian(blocks=blocks.detach())
        coupling, noise, probed = _block_probe(c, theta, blocks, generator)
        if coupling <= block_rtol:
            log.debug("theta Hessian is block-diagonal (values agree to %.3g)", noise)
            return ThetaHessian(blocks=blocks.detach(), probed=probed)
        log.debug(
            "theta Hessian is not block-diagonal (response off the probed example: %.3g of the "
            "response on it): building all %d columns",
            coupling,
            B * n_theta,
        )
    cot = torch.eye(B * n_theta, dtype=theta.dtype, device=theta.device).reshape(-1, B, n_theta)
    cols = _hessian_columns(c, theta, cot)  # (B·nθ, B, nθ): column (b', k) of H
    full = cols.reshape(B, n_theta, B, n_theta).permute(2, 3, 0, 1).contiguous()
    return ThetaHessian(full=full.detach(), probed=mode == "auto")


def _jvp_rows(
    theta: Tensor, params: Sequence[Tensor], vectors: Tensor, theta_batching: ThetaBatching
) -> Tensor:
    """``T_i = J(w) v_i``, ``(k, B, nθ)``, differentiable in w (double-VJP trick)."""
    r = torch.zeros_like(theta, requires_grad=True)
    q = torch.autograd.grad(
        theta, params, grad_outputs=r, create_graph=True, materialize_grads=True
    )  # Jᵀ r, linear in r
    v_split = _split(vectors, params)
    k = vectors.shape[0]
    if theta_batching == "vmap" and k > 1:
        return torch.autograd.grad(q, r, grad_outputs=v_split, create_graph=True, is_grads_batched=True)[0]
    return torch.stack(
        [
            torch.autograd.grad(q, r, grad_outputs=[v[i] for v in v_split], create_graph=True)[0]
            for i in range(k)
        ]
    )


def encoder_jacobian(theta: Tensor, params: Sequence[Tensor]) -> Tensor:
    """The encoder's Jacobian ``J[b, u] = ∇_w θ_{b,u}`` as a dense tensor (graph of θ retained).

    One backward pass per entry of θ (a vmapped backward was 2.6x slower on the demo's encoder,
    CPU). With J at hand, the two first-order terms of Eq. (1), ``J v`` and ``Jᵀ Y``, are matrix
    products, and a product of the operator differentiates the encoder once (the residual term)
    instead of twice: 200-245 against 285-290 ms per product at 32 examples on the demo's encoder
    (41k weights; three measurements, two of them with the other core busy).

    Args:
        theta: ``(B, nθ)`` encoder output with its graph.
        params: the weights ``w`` (``n`` in all).

    Returns:
        ``(B, nθ, n)`` in the dtype of ``params``.
    """
    rows = []
    for i in range(theta.numel()):
        e = torch.zeros_like(theta)
        e.view(-1)[i] = 1.0
        grads = torch.autograd.grad(theta, params, grad_outputs=e, retain_graph=True, materialize_grads=True)
        rows.append(_flatten(grads, 1)[0])
    return torch.stack(rows).reshape(*theta.shape, -1)


@dataclass(frozen=True)
class BatchHessian:
    """What the factored operator keeps of one batch.

    Attributes:
        c: ``(B, nθ)`` detached loss gradient ``∂L/∂θ``.
        hessian: the θ-space Hessian ``H``.
        theta: ``(B, nθ)`` encoder output with its graph (reused by every product), or None to
            recompute the encoder forward at each product (multibatch: bounded memory).
    """

    c: Tensor
    hessian: ThetaHessian
    theta: Tensor | None = None


def batch_theta_hessian(
    *,
    path_loss: PathLoss,
    theta_fn: Callable[..., Tensor],
    synth_fn: Callable[..., Tensor],
    batch: WarmupBatch,
    params: Sequence[Tensor],
    path_idx: int,
    n_theta: int,
    hessian: HessianMode = "auto",
    keep_theta: bool = False,
    theta: Tensor | None = None,
) -> BatchHessian:
    """Compute ``c̄ = ∂L/∂θ`` and ``H`` of one batch; the synth/loss graph is freed afterwards.

    Args:
        path_loss: ``path_loss(x_hat, x, path_idx) -> scalar``, the one-path distance.
        theta_fn: the encoder, ``theta_fn(**kwargs) -> (B, nθ)``.
        synth_fn: the synth, ``synth_fn(θ, **kwargs) -> x̂``.
        batch: the data.
        params: all weights that will be differentiated (checked not to reach the loss directly).
        path_idx: the path p.
        n_theta: ``nθ``.
        hessian: ``"auto"``, ``"block"`` or ``"full"``.
        keep_theta: keep θ with its encoder graph in the result.
        theta: ``theta_fn``'s output on this batch, with its graph, to reuse instead of calling
            ``theta_fn`` (the paths of a warmup share it: the weights do not change).

    Raises:
        ValueError: if the loss depends on ``params`` other than through θ.
    """
    if theta is None:
        theta = theta_fn(**batch.theta_fn_kwargs)
    leaf = theta.detach().requires_grad_(True) if isinstance(theta, Tensor) else theta
    leaf, loss = forward_path_loss(
        path_loss=path_loss,
        theta_fn=theta_fn,
        synth_fn=synth_fn,
        batch=batch,
        path_idx=path_idx,
        n_theta=n_theta,
        theta=leaf,
    )
    if loss_reaches_params(loss, params):
        raise ValueError(
            "engine='factored' needs params to reach the loss only through theta, "
            "but synth_fn or path_loss uses them directly; use engine='direct'"
        )
    c = theta_loss_grad(loss, leaf)
    hess = theta_hessian(c, leaf, mode=hessian)
    return BatchHessian(c=c.detach(), hessian=hess, theta=theta if keep_theta else None)


class FactoredCurvature:
    """The operators ``A_0 … A_{nθ−1}`` of one path and parameter group via Eq. (1).

    Each product differentiates the encoder only and is summed over the batches. A batch whose
    :class:`BatchHessian` keeps θ reuses that encoder graph; otherwise the encoder forward is
    recomputed at each product. With a kept graph and ``theta_batching="loop"``, the graph of
    ``q_u = J(w)ᵀ D_u c`` is also built once per θ index and kept (nθ double-backward graphs of
    the encoder in memory), so that each product is two backward passes (1.27x faster than
    rebuilding it, on the demo's encoder). Given the encoder's Jacobian of that batch
    (:func:`encoder_jacobian`), the first-order terms are matrix products and only the residual
    term differentiates the encoder (one double backward per product).

    Args:
        theta_fn: the encoder.
        batches: the warmup data.
        params: the parameter group ``w`` (a subset of the weights θ depends on).
        hessians: one :class:`BatchHessian` per batch (from :func:`batch_theta_hessian`; they do
            not depend on the group and can be shared between groups).
        theta_batching: ``"vmap"``: vmapped backward passes over the θ rows; ``"loop"``: one each.
        jacobians: per batch, ``(B, nθ, n)`` Jacobian of θ w.r.t. this group, or None (used with
            a kept graph and ``"loop"``).

    Example:
        ``op(V, torch.tensor([0, 2]))`` returns ``[A_0 V[0], A_2 V[1]]``, shape ``(2, n)``.
    """

    def __init__(
        self,
        *,
        theta_fn: Callable[..., Tensor],
        batches: Sequence[WarmupBatch],
        params: Sequence[Tensor],
        hessians: Sequence[BatchHessian],
        theta_batching: ThetaBatching = "loop",
        jacobians: Sequence[Tensor | None] | None = None,
    ) -> None:
        if len(hessians) != len(batches):
            raise ValueError(
                f"need one BatchHessian per batch, got {len(hessians)} for {len(batches)} batches"
            )
        self.theta_fn = theta_fn
        self.batches = list(batches)
        self.params = list(params)
        self.hessians = list(hessians)
        self.theta_batching = theta_batching
        self.jacobians = list(jacobians) if jacobians is not None else [None] * len(self.batches)
        self.dim = flat_size(self.params)
        for J in self.jacobians:
            if J is not None and J.shape[-1] != self.dim:
                raise ValueError(f"jacobian has {J.shape[-1]} columns, the group has {self.dim} weights")
        self._cache: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}

    def _prepared(self, i: int, bh: BatchHessian, u: int) -> tuple[Tensor, Tensor]:
        """``(r_u, q_u)`` of batch i: the leaf ``r_u = D_u c`` and ``q_u = J(w)ᵀ r_u`` with graph."""
        key = (i, u)
        if key not in self._cache:
            assert bh.theta is not None
            r = torch.zeros_like(bh.c)
            r[:, u] = bh.c[:, u]
            r.requires_grad_(True)
            q = torch.autograd.grad(
                bh.theta, self.params, grad_outputs=r, create_graph=True, materialize_grads=True
            )
            self._cache[key] = (r, _flatten(q, 1)[0])
        return self._cache[key]

    def _kept_product(self, i: int, bh: BatchHessian, vectors: Tensor, index: Tensor) -> Tensor:
        """Eq. (1) on a batch whose encoder graph is kept: two backward passes per row.

        ``q_u(w, r) = J(w)ᵀ r`` is built once per θ index (graph kept), at ``r = D_u c``. One
        backward of ``⟨q_u, v⟩`` gives ``∂/∂r = J v`` and ``∂/∂w = Σ_b c_{b,u} ∇²θ_{b,u} v`` together;
        one more through θ gives ``Jᵀ Y``, ``Y = H D_u J v``. With the batch's Jacobian, ``J v``
        and ``Jᵀ Y`` are matrix products and the backward of ``⟨q_u, v⟩`` is taken w.r.t. w only.
        """
        assert bh.theta is not None
        J = self.jacobians[i]
        rows = []
        for j in range(vectors.shape[0]):
            u = int(index[j])
            r, q = self._prepared(i, bh, u)
            if J is not None:  # J v and Jᵀ Y as matrix products; one double backward
                v = vectors[j].to(q.dtype)
                residual = torch.autograd.grad(
                    q, self.params, grad_outputs=v, retain_graph=True, materialize_grads=True
                )
                t = J[:, u] @ v  # (B,)
                y = bh.hessian.apply_column(t.unsqueeze(0), index[j : j + 1])[0]  # (B, nθ)
                rows.append(torch.einsum("bk,bkn->n", y.to(J.dtype), J) + _flatten(residual, 1)[0])
                continue
            t, *second = torch.autograd.grad(
                q,
                [r, *self.params],
                grad_outputs=vectors[j].to(q.dtype),
                retain_graph=True,
                materialize_grads=True,
            )
            y = bh.hessian.apply_column(t[:, u].unsqueeze(0), index[j : j + 1])[0]  # (B, nθ)
            first = torch.autograd.grad(
                bh.theta, self.params, grad_outputs=y, retain_graph=True, materialize_grads=True
            )
            rows.append(_flatten(first, 1)[0] + _flatten(second, 1)[0])
        return torch.stack(rows)

    def __call__(self, vectors: Tensor, index: Tensor) -> Tensor:
        """Return ``A_{index[i]} vectors[i]`` for every row; ``(k, n) -> (k, n)``."""
        k = vectors.shape[0]
        total: Tensor | None = None
        for i, (batch, bh) in enumerate(zip(self.batches, self.hessians, strict=True)):
            if bh.theta is not None and self.theta_batching == "loop":
                part = self._kept_product(i, bh, vectors, index)
                total = part if total is None else total + part
                continue
            retain = bh.theta is not None  # a retained graph is reused by the next products
            theta = bh.theta if bh.theta is not None else self.theta_fn(**batch.theta_fn_kwargs)
            T = _jvp_rows(theta, self.params, vectors, self.theta_batching)  # (k, B, nθ), graph
            T_u = T.gather(2, index.view(k, 1, 1).expand(k, T.shape[1], 1))[..., 0]  # (k, B)
            Y = bh.hessian.apply_column(T_u.detach(), index)  # (k, B, nθ) = H D_u J v
            c_u = bh.c[:, index].T  # (B, k) -> (k, B)
            # s_i = ⟨Y_i, θ(w)⟩ + Σ_b c_{b,u_i} (J(w) v_i)_{b,u_i}; ∇_w s_i = A_{u_i} v_i
            s = (Y * theta.unsqueeze(0)).sum(dim=(1, 2)) + (c_u * T_u).sum(dim=1)  # (k,)
            if self.theta_batching == "vmap" and k > 1:
                eye = torch.eye(k, dtype=s.dtype, device=s.device)
                out = torch.autograd.grad(
                    s,
                    self.params,
                    grad_outputs=eye,
                    retain_graph=retain,
                    materialize_grads=True,
                    is_grads_batched=True,
                )
                part = _flatten(out, k)
            else:
                part = torch.cat(
                    [
                        _flatten(
                            torch.autograd.grad(
                                s[j], self.params, retain_graph=retain or j < k - 1, materialize_grads=True
                            ),
                            1,
                        )
                        for j in range(k)
                    ]
                )
            total = part if total is None else total + part
        assert total is not None  # at least one batch
        return total
