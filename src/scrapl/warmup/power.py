"""Power iteration for the dominant eigenvalue of a batch of independent linear operators.

The θ-IS warmup (paper §3.4) needs, for every path p and every synth parameter u, the
largest-magnitude eigenvalue of a curvature operator ``A_u`` that is only available through
matrix-vector products. :func:`power_iteration` runs one power iteration per operator, all in
lock-step, so that one call of the batched matvec serves every operator that has not converged yet.

Two ways to draw the start vectors:

* :func:`seeded_init` (the default of the warmup): Gaussian, unit-norm rows drawn from a private
  generator seeded by ``(seed, path, group)``. The draw does not depend on the order in which paths
  are processed, so resumed and sharded runs equal one uninterrupted run.
* :class:`ReferenceInitStream`: the draws of scrapl-loss 0.1.0 (the vendored hessian-eigenthings),
  i.e. ``torch.rand(n)`` (U[0, 1), *not* normalised) followed by one unused ``torch.randn(n)``,
  per operator, replayed from a snapshot of torch's global CPU generator.

With an un-normalised start vector the first Rayleigh quotient is ``v0ᵀ A v0`` with
``‖v0‖² ≈ n/3``; the iteration reproduces that first step exactly as the reference does, which is
what makes the reference-compatible mode agree with scrapl-loss 0.1.0 to float32 rounding.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import as_float, as_int_in

__all__ = [
    "BatchedMatvec",
    "NonFiniteProductError",
    "PowerIterationResult",
    "ReferenceInitStream",
    "check_iteration_args",
    "dense_matvec",
    "power_iteration",
    "seeded_init",
]

BatchedMatvec = Callable[[Tensor, Tensor], Tensor]
"""``matvec(vectors, index) -> products``: ``vectors`` is ``(k, n)``, ``index`` a ``(k,)`` int64
tensor naming which of the ``m`` operators each row belongs to; returns ``A_index[i] @ vectors[i]``
for every row, shape ``(k, n)``."""


@dataclass(frozen=True)
class PowerIterationResult:
    """The outcome of :func:`power_iteration` for ``m`` operators of size ``n``.

    Attributes:
        eigenvalues: ``(m,)`` float64, the signed estimate ``λ_i = v_iᵀ A v_i`` of the last step
            (the Rayleigh quotient of the vector *before* its final normalisation).
        eigenvectors: ``(m, n)``, the last iterate ``A v / ‖A v‖`` (unit norm).
        errors: ``(n_steps, m)`` float64, ``|λ_i − λ_{i−1}| / |λ_i|`` per step (``λ_{−1} = 0``, so
            the first entry is 1); NaN once an operator has stopped.
        n_iters: ``(m,)`` int64, matvecs spent on each operator.
        converged: ``(m,)`` bool, whether the error fell below ``tol`` (or ``A v = 0`` exactly).
    """

    eigenvalues: Tensor
    eigenvectors: Tensor
    errors: Tensor
    n_iters: Tensor
    converged: Tensor

    @classmethod
    def collect(
        cls, lam: list[float], vecs: Tensor, errors: Tensor, n_done: list[int], converged: list[bool]
    ) -> PowerIterationResult:
        """Build the result from an iteration's per-operator Python lists."""
        return cls(
            eigenvalues=torch.tensor(lam, dtype=torch.float64),
            eigenvectors=vecs,
            errors=errors,
            n_iters=torch.tensor(n_done, dtype=torch.long),
            converged=torch.tensor(converged, dtype=torch.bool),
        )


class NonFiniteProductError(ValueError):
    """An operator's product ``A v`` (or its eigenvalue estimate) was NaN or infinite.

    The iteration stops at the first such product: more products cannot make it finite.

    Attributes:
        operator: the row (operator index) whose product was not finite.
        step: the 1-based number of the product.
    """

    def __init__(self, operator: int, step: int) -> None:
        super().__init__(f"operator {operator}: product {step} is not finite (NaN or inf)")
        self.operator, self.step = operator, step


def check_iteration_args(init: Tensor, n_iter: int, tol: float) -> None:
    """Refuse a non-floating or non-2-D ``init``, ``n_iter < 1`` (or not an int), ``tol < 0``/NaN."""
    if init.ndim != 2 or not init.is_floating_point():
        raise ValueError(f"init must be a floating (m, n) tensor, got shape {tuple(init.shape)}")
    as_int_in("n_iter", n_iter, 1)
    as_float("tol", tol, low=0.0)


def power_iteration(
    matvec: BatchedMatvec,
    init: Tensor,
    *,
    n_iter: int = 20,
    tol: float = 1e-4,
) -> PowerIterationResult:
    """Estimate the dominant eigenvalue of ``m`` operators by power iteration.

    For each operator, starting from ``v_0 = init[i]`` (used as given, normalised or not)::

        w_k = A v_k ;  λ_k = v_k · w_k ;  v_{k+1} = w_k / ‖w_k‖
        err_k = |λ_k − λ_{k−1}| / |λ_k|   (λ_{−1} = 0; err = 1 when λ_k = 0)

    and stops after ``n_iter`` steps or as soon as ``err_k < tol``. If ``w_k = 0`` exactly, the
    operator stops with ``λ = 0``. Rows stop independently; the matvec is only called on the rows
    still running. This is the rule of hessian-eigenthings' ``power_iteration`` (no momentum),
    which scrapl-loss 0.1.0 uses: with the reference start vectors it reproduces its values.

    A_u need not be symmetric. Power iteration converges to the eigenvalue of largest magnitude
    when that eigenvalue is real and strictly dominant; its sign is kept (callers take ``abs``).
    A product with a NaN or an infinity stops everything at once (no later product can repair it).

    Args:
        matvec: batched operator application, see :data:`BatchedMatvec`.
        init: ``(m, n)`` start vectors, one per operator (floating point).
        n_iter: maximum number of matvecs per operator (≥ 1). Default 20.
        tol: relative-change tolerance for early stopping (≥ 0; 0 never stops early). Default 1e-4.

    Returns:
        A :class:`PowerIterationResult`.

    Raises:
        NonFiniteProductError: at the first product (or λ) that is NaN or infinite.

    Shape:
        init: ``(m, n)``; matvec rows: ``(k, n)`` with ``k ≤ m``.

    Example:
        >>> A = torch.tensor([[[2.0, 1.0], [0.0, -5.0]]], dtype=torch.float64)
        >>> res = power_iteration(dense_matvec(A), torch.ones(1, 2, dtype=torch.float64),
        ...                       n_iter=200, tol=1e-12)
        >>> round(res.eigenvalues.item(), 6)
        -5.0
    """
    check_iteration_args(init, n_iter, tol)
    m = init.shape[0]
    vecs = init.detach().clone()
    lam = [0.0] * m
    lam_prev = [0.0] * m
    n_done = [0] * m
    converged = [False] * m
    errors = torch.full((n_iter, m), math.nan, dtype=torch.float64)
    active = list(range(m))
    n_steps = 0
    for step in range(n_iter):
        if not active:
            break
        n_steps = step + 1
        index = torch.tensor(active, dtype=torch.long, device=init.device)
        prods = matvec(vecs[index], index).detach().to(vecs.dtype)  # (k, n)
        still = []
        for row, op in enumerate(active):
            w = prods[row]
            norm = torch.linalg.vector_norm(w).item()
            n_done[op] = step + 1
            if not math.isfinite(norm):
                raise NonFiniteProductError(op, step + 1)
            if norm == 0.0:  # v is in the null space: λ = 0 exactly
                lam[op], converged[op] = 0.0, True
                errors[step, op] = 0.0
                continue
            lam[op] = torch.dot(vecs[op], w).item()
            if not math.isfinite(lam[op]):
                raise NonFiniteProductError(op, step + 1)
            vecs[op] = w / norm
            err = abs(lam[op] - lam_prev[op]) / abs(lam[op]) if lam[op] != 0.0 else 1.0
            errors[step, op] = err
            if err < tol:
                converged[op] = True
            else:
                lam_prev[op] = lam[op]
                still.append(op)
        active = still
    return PowerIterationResult.collect(lam, vecs, errors[:n_steps], n_done, converged)


def dense_matvec(matrices: Tensor) -> BatchedMatvec:
    """Wrap explicit matrices as a :data:`BatchedMatvec` (for tests and small problems).

    Args:
        matrices: ``(m, n, n)``, operator ``i`` is ``matrices[i]``.

    Returns:
        ``matvec(vectors (k, n), index (k,)) = matrices[index] @ vectors``.
    """

    def matvec(vectors: Tensor, index: Tensor) -> Tensor:
        return torch.einsum("kij,kj->ki", matrices[index], vectors)  # (k, n, n) x (k, n) -> (k, n)

    return matvec


def _mix_seed(*parts: int) -> int:
    digest = hashlib.sha256("/".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def seeded_init(
    n_ops: int,
    dim: int,
    *,
    seed: int,
    key: Sequence[int] = (),
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Draw ``n_ops`` unit-norm Gaussian start vectors from a private generator.

    The generator is seeded with a hash of ``(seed, *key)`` (the warmup uses
    ``key = (path_idx, group_idx)``), so the vectors do not depend on what was drawn before and
    never touch torch's global RNG. Drawn on the CPU in float64, then cast and moved.

    Args:
        n_ops: number of vectors ``m``.
        dim: their length ``n``.
        seed: base seed.
        key: extra integers that make the draw specific (e.g. path and group index).
        dtype: output dtype. Default float32.
        device: output device. Default CPU.

    Returns:
        ``(n_ops, dim)`` tensor with unit rows.
    """
    gen = torch.Generator().manual_seed(_mix_seed(seed, *key))
    v = torch.randn(n_ops, dim, generator=gen, dtype=torch.float64)
    v = v / torch.linalg.vector_norm(v, dim=1, keepdim=True)  # (m, n) unit rows
    return v.to(dtype=dtype, device=device)


class ReferenceInitStream:
    """Replay the start-vector draws of scrapl-loss 0.1.0 from a global-RNG snapshot.

    The reference draws, for every path in ``[start, end)`` in order, every parameter group and
    every θ index in order: ``v0 = torch.rand(n)`` (float32, U[0, 1), global CPU generator), then one
    unused ``torch.randn_like(v0)`` (on the CPU generator only when the parameters are on the
    CPU). Replaying those draws from the snapshot taken when the warmup starts gives the same
    vectors whatever order, subset or shard of the paths is actually computed; :meth:`final_state`
    is the state the reference would leave the global generator in.

    Args:
        state: a CPU generator state (``torch.get_rng_state()``) to start from.
        draw_normal: whether the unused normal draw advances this stream (True for CPU params).
    """

    def __init__(self, state: Tensor, *, draw_normal: bool = True) -> None:
        self._gen = torch.Generator()
        self._gen.set_state(state)
        self._draw_normal = draw_normal

    def draw(self, n_theta: int, dims: Sequence[int]) -> list[Tensor]:
        """Draw the start vectors of one path: one ``(n_theta, n_g)`` float32 tensor per group."""
        out = []
        for dim in dims:
            rows = []
            for _ in range(n_theta):
                rows.append(torch.rand(dim, generator=self._gen))
                if self._draw_normal:
                    torch.randn(dim, generator=self._gen)  # drawn and discarded, as the reference
            out.append(torch.stack(rows))
        return out

    def final_state(self) -> Tensor:
        """The generator state after every draw so far."""
        return self._gen.get_state()
