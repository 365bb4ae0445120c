"""The θ-IS curvature operator A_u and its Hessian-vector products ("direct" engine).

Notation (paper §3.4, scrapl-algorithms.md §7.1). ``w``: the encoder weights of one parameter
group, flattened to length ``n``. ``θ = theta_fn(**kw)``: ``(B, nθ)``. ``x̂ = synth_fn(θ)``.
``L_p = path_loss(x̂, x, p)``: a scalar. Then::

    c_{b,u}(w) = ∂L_p/∂θ_{b,u}                              (B, nθ), differentiable in w
    g_u(w)     = Σ_b c_{b,u}(w) ∇_w θ_{b,u}(w)              (n,): the gradient that reaches w
                                                             through θ_u alone
    A_u v      = ∇_w ⟨g_u(w), v⟩  = (∂g_u/∂w)ᵀ v           (n,), v held constant

``Σ_u A_u = ∇²_w L_p`` and each A_u alone is in general not symmetric. Its largest-magnitude
eigenvalue is the curvature value ``C_{u,p}`` of θ-IS.

:class:`DirectCurvature` builds ``g_u`` for every u with one batched vector-Jacobian product
through the encoder and applies ``A_u`` by differentiating ``⟨g_u, v⟩`` again, one backward pass
per θ row (the reference's structure: that backward runs through the path loss, and the JTFS's
backward cannot be vmapped). With several batches (multibatch), every application recomputes the
forward per batch and **sums** the products over batches, as scrapl-loss 0.1.0 does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .problem import PathLoss, WarmupBatch

__all__ = [
    "DirectCurvature",
    "flat_size",
    "forward_path_loss",
    "hvp_rows",
    "theta_loss_grad",
    "theta_param_grads",
]


def flat_size(params: Sequence[Tensor]) -> int:
    """Total number of weights ``n`` of a parameter group."""
    return sum(p.numel() for p in params)


def _flatten(tensors: Sequence[Tensor], lead: int) -> Tensor:
    return torch.cat([t.reshape(lead, -1) for t in tensors], dim=1)  # (lead, n)


def _split(flat: Tensor, params: Sequence[Tensor]) -> list[Tensor]:
    """``(k, n) -> [(k, *p.shape) for p in params]``."""
    out, start = [], 0
    for p in params:
        chunk = flat[:, start : start + p.numel()].reshape(flat.shape[0], *p.shape)
        out.append(chunk.to(p.dtype))
        start += p.numel()
    return out


def forward_path_loss(
    *,
    path_loss: PathLoss,
    theta_fn: Callable[..., Tensor],
    synth_fn: Callable[..., Tensor],
    batch: WarmupBatch,
    path_idx: int,
    n_theta: int,
    theta: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Run encoder, synth and path loss on one batch.

    Args:
        path_loss: ``path_loss(x_hat, x, path_idx) -> scalar``, the one-path distance.
        theta_fn: the encoder, ``theta_fn(**kwargs) -> (B, nθ)``.
        synth_fn: the synth, ``synth_fn(θ, **kwargs) -> x̂``.
        batch: the data.
        path_idx: the path whose loss is computed.
        n_theta: expected number of synth parameters ``nθ``.
        theta: if given, use it instead of calling ``theta_fn`` (e.g. a detached leaf).

    Returns:
        ``(θ, L_p)`` with ``θ`` of shape ``(B, nθ)`` and ``L_p`` a scalar.

    Raises:
        ValueError: if θ is not ``(B, nθ)`` or the loss is not a scalar.
    """
    if theta is None:
        theta = theta_fn(**batch.theta_fn_kwargs)
    if not isinstance(theta, Tensor) or theta.ndim != 2 or theta.shape[1] != n_theta:
        shape = tuple(theta.shape) if isinstance(theta, Tensor) else type(theta).__name__
        raise ValueError(f"theta_fn must return a (batch, n_theta={n_theta}) tensor, got {shape}")
    x_hat = synth_fn(theta, **batch.synth_fn_kwargs)
    loss = path_loss(x_hat, batch.target, path_idx)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError(
            f"path_loss must return a scalar tensor, got {type(loss).__name__} "
            f"of shape {tuple(getattr(loss, 'shape', ()))}"
        )
    return theta, loss.reshape(())


def theta_loss_grad(loss: Tensor, theta: Tensor) -> Tensor:
    """``c = ∂L/∂θ`` with its graph kept (``create_graph=True``); ``(B, nθ)``."""
    return torch.autograd.grad(loss, theta, create_graph=True, materialize_grads=True)[0]


def theta_param_grads(
    c: Tensor, theta: Tensor, params: Sequence[Tensor], theta_indices: Sequence[int]
) -> list[Tensor]:
    """Compute ``g_u(w) = Σ_b c_{b,u} ∇_w θ_{b,u}`` for the requested u, differentiably.

    The cotangent of θ is ``c`` with every column but u zeroed; all rows are one vmapped VJP.

    Args:
        c: ``(B, nθ)`` loss gradient w.r.t. θ (with graph).
        theta: ``(B, nθ)`` encoder output (with graph).
        params: the parameter group.
        theta_indices: the ``k`` θ indices u.

    Returns:
        One tensor per parameter, ``(k, *p.shape)``, with graph (``create_graph=True``).
    """
    idx = torch.as_tensor(list(theta_indices), dtype=torch.long, device=c.device)
    masks = torch.eye(c.shape[1], dtype=c.dtype, device=c.device)[idx]  # (k, nθ)
    cot = c.unsqueeze(0) * masks.unsqueeze(1)  # (1, B, nθ) * (k, 1, nθ) -> (k, B, nθ)
    if len(idx) == 1:
        grads = torch.autograd.grad(
            theta, params, grad_outputs=cot[0], create_graph=True, retain_graph=True, materialize_grads=True
        )
        return [g.unsqueeze(0) for g in grads]
    grads = torch.autograd.grad(
        theta,
        params,
        grad_outputs=cot,
        create_graph=True,
        retain_graph=True,
        materialize_grads=True,
        is_grads_batched=True,
    )
    return list(grads)


def hvp_rows(
    grads: Sequence[Tensor], params: Sequence[Tensor], vectors: Tensor, *, retain_graph: bool
) -> Tensor:
    """Apply ``A_u v = ∇_w ⟨g_u(w), v⟩`` for ``k`` pairs ``(g_u, v)``, one backward pass each.

    Args:
        grads: per parameter, ``(k, *p.shape)``: row i is ``g_{u_i}`` (with graph).
        params: the parameter group ``w``.
        vectors: ``(k, n)``, row i is ``v_i``.
        retain_graph: keep the graph after the last backward pass.

    Returns:
        ``(k, n)``: row i is ``A_{u_i} v_i``.
    """
    k = vectors.shape[0]
    v_split = _split(vectors, params)
    rows = []
    for i in range(k):
        out = torch.autograd.grad(
            [g[i] for g in grads],
            params,
            grad_outputs=[v[i] for v in v_split],
            retain_graph=retain_graph or i < k - 1,
            materialize_grads=True,
        )
        rows.append(_flatten(out, 1)[0])
    return torch.stack(rows)  # (k, n)


class DirectCurvature:
    """The operators ``A_0 … A_{nθ−1}`` of one path and one parameter group.

    With one batch (and ``multibatch=False``) the forward, ``c`` and every ``g_u`` are computed
    once and their graph is reused by every product. Otherwise each call recomputes them per batch
    and sums the products over the batches (``A_u = Σ_batches A_u^{(batch)}``): one forward per
    batch *and per θ*, exactly as the reference.

    Args:
        path_loss: ``path_loss(x_hat, x, path_idx) -> scalar``, the one-path distance.
        theta_fn: the encoder, ``theta_fn(**kwargs) -> (B, nθ)``.
        synth_fn: the synth, ``synth_fn(θ, **kwargs) -> x̂``.
        batches: the warmup data (at least one batch).
        params: the parameter group ``w``.
        path_idx: the path p.
        n_theta: ``nθ``.
        multibatch: recompute per product (forced when there are several batches).

    Example:
        ``op = DirectCurvature(...); op(V, torch.tensor([0, 2]))`` returns
        ``[A_0 V[0], A_2 V[1]]``, shape ``(2, n)``.
    """

    def __init__(
        self,
        *,
        path_loss: PathLoss,
        theta_fn: Callable[..., Tensor],
        synth_fn: Callable[..., Tensor],
        batches: Sequence[WarmupBatch],
        params: Sequence[Tensor],
        path_idx: int,
        n_theta: int,
        multibatch: bool = False,
    ) -> None:
        self.path_loss, self.theta_fn, self.synth_fn = path_loss, theta_fn, synth_fn
        self.batches = list(batches)
        self.params = list(params)
        self.path_idx = path_idx
        self.n_theta = n_theta
        self.multibatch = multibatch or len(self.batches) > 1
        self.dim = flat_size(self.params)
        self._grads: list[Tensor] | None = None
        if not self.multibatch:
            self._grads = self._param_grads(self.batches[0], range(n_theta))

    def _param_grads(self, batch: WarmupBatch, theta_indices: Sequence[int]) -> list[Tensor]:
        theta, loss = forward_path_loss(
            path_loss=self.path_loss,
            theta_fn=self.theta_fn,
            synth_fn=self.synth_fn,
            batch=batch,
            path_idx=self.path_idx,
            n_theta=self.n_theta,
        )
        c = theta_loss_grad(loss, theta)
        return theta_param_grads(c, theta, self.params, theta_indices)

    def __call__(self, vectors: Tensor, index: Tensor) -> Tensor:
        """Return ``A_{index[i]} vectors[i]`` for every row; ``(k, n) -> (k, n)``."""
        if self._grads is not None:
            grads = [g[index] for g in self._grads]  # (k, *p.shape) per parameter
            return hvp_rows(grads, self.params, vectors, retain_graph=True)
        total: Tensor | None = None
        for batch in self.batches:
            part = torch.cat(
                [
                    hvp_rows(
                        self._param_grads(batch, [u]), self.params, vectors[i : i + 1], retain_graph=False
                    )
                    for i, u in enumerate(index.tolist())
                ]
            )
            total = part if total is None else total + part
        assert total is not None  # at least one batch
        return total

    def release(self) -> None:
        """Drop the retained graph."""
        self._grads = None
