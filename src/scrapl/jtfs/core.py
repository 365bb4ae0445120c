"""The JTFS path computation as pure functions over tensors (no module state).

One second-order path ``(n2, n_fr)`` of a batch of padded signals (``jtfs-spec.md`` §4–6):

``S[n2, n_fr] = A_F( A_T( | psi_fr[n_fr] *_{n1} Y[n2] |_eps ) )``, with
``Y[n2][n1] = ( |x_pad * psi1[n1]|_eps  ↓2^j1 ) * psi2[n2] ↓2^(j2-j1)`` for ``n1 < n1_max(n2)``
(complex, no modulus), ``|z|_eps = |z| + 1e-12``, ``A_T`` the temporal low-pass ``phi`` with stride
``2**log2_T`` (or a global sum), ``A_F`` the frequential low-pass ``phi_F`` with stride
``2**log2_F`` (or a global sum; skipped for the spin-0 filter ``n_fr = 0``). All convolutions are
circular on the padded lengths; decimation in time is a mean-fold of the spectrum.

The temporal wavelets are applied on the band where they are not negligible
(:mod:`scrapl.jtfs.window`), and complex signals are carried as stacked real planes ``(re; im)``
so that every modulus is a contiguous real pass. The frequential filter, the temporal averaging and
the frequential averaging are linear maps on short axes; they are applied as dense matrices
(``ops.circulant_decimation_matrix``), which on a CPU is several times faster than the equivalent
FFTs and identical in exact arithmetic.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .ops import MODULUS_EPS, modulus
from .window import Window, synthesize, synthesize_real

__all__ = [
    "first_order",
    "second_order_temporal",
    "frequential_scattering",
    "FrequentialOperator",
    "frequential_operator",
    "stack_operators",
    "unprune_rows",
    "average_time",
    "average_frequency",
]


def first_order(x_rfft: Tensor, window: Window, full: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Return the first-order scalograms ``U1 = |IDFT(fold_mean(DFT(x_pad) psi1_f, k1))|_eps``.

    Each wavelet's band is placed at bin 0 of the decimated spectrum instead of at its own
    position: a circular shift of the spectrum multiplies the signal by a unit-modulus phase, which
    the modulus removes, so ``U1`` is unchanged (the bins' relative positions, hence any aliasing of
    the fold, are kept).

    Args:
        x_rfft: half spectrum of the padded signals. Shape ``(B, Np/2 + 1)``.
        window: :class:`~scrapl.jtfs.window.Window` of ``G`` first-order wavelets sharing the
            decimation ``k1`` (``min(j1, log2_T)``), runs at offset 0.
        full: optionally, :func:`~scrapl.jtfs.window.full_spectrum` of ``x_rfft``, shared by the
            groups (wide runs are then read from it as slices).

    Returns:
        Shape ``(B, G, Np / 2**k1)`` real.
    """
    return modulus(synthesize(x_rfft, window, full))


def second_order_temporal(U1: Tensor, window: Window) -> Tensor:
    """Return ``Y = IDFT(fold_mean(DFT(U1) psi2_f, s))`` as planes: second-order wavelet, decimation
    ``2**s``, up to a phase common to every row of the path (placement at ``window.offset``).

    Args:
        U1: the first-order scalograms at decimation ``k1``, real, shape ``(B, G, M)``, or their
            ``rfft``, complex, shape ``(B, G, M/2+1)`` (when it is shared by several wavelets).
        window: :class:`~scrapl.jtfs.window.Window` of the second-order wavelet at level ``k1``,
            decimation ``s = j2 - k1`` (``index`` of shape ``(S,)``).

    Returns:
        Planes ``(Re Y, Im Y)`` of shape ``(B, 2, G, M / 2**s)`` (no modulus: frequential
        scattering follows).
    """
    return synthesize(U1, window) if U1.is_complex() else synthesize_real(U1, window)


class FrequentialOperator(NamedTuple):
    """A frequential filter with decimation, as a real block matrix acting on (re, im) planes.

    ``H_block = [[Re H, -Im H], [Im H, Re H]]`` of shape ``(2 R, 2 n_in)`` for the ``R`` rows
    ``rows`` (of ``n_rows``) that are kept (``rows`` is None when all are).
    """

    H_block: Tensor
    rows: Tensor | None
    n_rows: int


def frequential_operator(H: Tensor, rel_tol: float) -> FrequentialOperator:
    """Build a :class:`FrequentialOperator` from a complex matrix ``H`` (shape ``(n_rows, n_in)``),
    dropping the rows whose largest magnitude is below ``rel_tol`` of the largest entry.

    Such a row's output is ``|H_i y| + eps``, within ``n_in rel_tol`` of the coefficients' scale of
    the constant eps; its averaged coefficient is set to that constant (:func:`unprune_rows`). For a
    frequential wavelet far from the ``n1_max`` occupied bins this skips most of the ``N_fr`` rows,
    hence most of the modulus and temporal-averaging work. With float32 filters the kernels have a
    rounding floor near 1e-8 of their peak, so ``rel_tol`` must sit above it to prune anything.
    """
    row_max = H.abs().amax(dim=1)
    keep = torch.nonzero(row_max >= rel_tol * row_max.max()).flatten()
    rows = None if keep.numel() == H.shape[0] else keep
    Hk = H if rows is None else H[keep]
    H_block = torch.cat([torch.cat([Hk.real, -Hk.imag], 1), torch.cat([Hk.imag, Hk.real], 1)], 0)
    return FrequentialOperator(H_block, rows, H.shape[0])


def frequential_scattering(planes: Tensor, op: FrequentialOperator) -> Tensor:
    """Return ``U2 = |H @ Y|_eps``: frequential filter along ``n1`` (with decimation), then modulus.

    The complex product runs as one real matrix product on stacked (re; im) planes, which BLAS
    does several times faster than a complex product with a short inner dimension.

    Args:
        planes: second-order temporal coefficients as stacked planes ``(Re Y; Im Y)``, shape
            ``(B, 2 n1, M)``, or real coefficients ``(B, n1, M)`` (the first-order paths), ``n1``
            rows of the ``n_in`` the operator was built for.
        op: :class:`FrequentialOperator` with ``R`` kept rows.

    Returns:
        Shape ``(B, R, M)`` real.
    """
    n_in = op.H_block.shape[1] // 2
    if planes.shape[-2] == 2 * n_in:
        out = torch.matmul(op.H_block, planes)  # (2R, 2 n1) @ (B, 2 n1, M) -> (B, 2R, M)
    else:  # real input: only the (Re H; Im H) columns
        out = torch.matmul(op.H_block[:, : planes.shape[-2]], planes)
    return modulus(out.unflatten(-2, (2, out.shape[-2] // 2)))


def unprune_rows(S: Tensor, op: FrequentialOperator, Phi: Tensor | None, M: int) -> Tensor:
    """Put the time-averaged rows ``S`` (shape ``(B, len(rows), n_time)``) back among the pruned
    rows, whose coefficient is the average of the constant ``MODULUS_EPS``. Shape: ``(B, n_rows, n_time)``.
    """
    if op.rows is None:
        return S
    if Phi is None:
        fill = S.new_full((S.shape[-1],), MODULUS_EPS * M)
    else:
        fill = MODULUS_EPS * Phi.sum(dim=0)  # (n_time,)
    full = fill.expand(*S.shape[:-2], op.n_rows, S.shape[-1])
    return full.index_copy(-2, op.rows, S)


AVERAGE_BLOCK = 512
"""Samples per block of the temporal averaging's inner products (:func:`average_time`)."""


def _blocked_matmul(U2: Tensor, Phi: Tensor) -> Tensor:
    """``U2 @ Phi`` as ``sum_b U2[..., block b] @ Phi[block b]``: one batched product over blocks of
    :data:`AVERAGE_BLOCK` samples, then a sum of the ``M / 512`` partial results."""
    M, n_time = Phi.shape
    nb = M // AVERAGE_BLOCK
    blocks = U2.reshape(-1, nb, AVERAGE_BLOCK).transpose(0, 1)  # (nb, B n_rows, 512), a view
    partial = torch.bmm(blocks, Phi.reshape(nb, AVERAGE_BLOCK, n_time))  # (nb, B n_rows, n_time)
    return partial.sum(dim=0).reshape(*U2.shape[:-1], n_time)


class _BlockedAverage(torch.autograd.Function):
    """``U2 @ Phi`` summed by blocks (:func:`_blocked_matmul`); the backward is the plain product
    ``g @ Phi^T``, whose sums have only ``n_time`` terms (written with differentiable operations,
    so that it can be differentiated again). ``Phi`` is a constant."""

    @staticmethod
    def forward(ctx, U2: Tensor, Phi: Tensor) -> Tensor:
        ctx.save_for_backward(Phi)
        return _blocked_matmul(U2, Phi)

    @staticmethod
    def backward(ctx, g: Tensor):
        (Phi,) = ctx.saved_tensors
        return torch.matmul(g, Phi.T), None


def average_time(U2: Tensor, Phi: Tensor | None) -> Tensor:
    """Average along time: ``U2 @ Phi`` (low-pass ``phi`` at stride ``2**log2_T``), or a global sum.

    The inner products run over up to ``M = 65536`` samples. A BLAS may accumulate each in one
    running sum, whose float32 rounding error grows like ``sqrt(M)`` (measured: 1.7e-6 relative for
    ``M = 16384`` with MKL on an AMD EPYC, ten times the reference's FFT-based averaging, and enough
    to take a loss gradient 20x further from float64 than the reference's). So the product is
    summed over blocks of :data:`AVERAGE_BLOCK` samples (7e-8 on the same case, at about the
    same speed): the same value in exact arithmetic.

    Args:
        U2: Shape ``(B, n_rows, M)``.
        Phi: real matrix ``Phi[t, tau] = Re(phi)[(2**s tau - t) mod M]``, or None for ``T='global'``
            (a sum over all ``M`` samples, padding included, as in the reference).

    Returns:
        Shape ``(B, n_rows, n_time)``.
    """
    if Phi is None:
        return U2.sum(dim=-1, keepdim=True)
    M = Phi.shape[0]
    if M <= AVERAGE_BLOCK or M % AVERAGE_BLOCK:
        return torch.matmul(U2, Phi)  # (B, n_rows, M) @ (M, n_time)
    return _BlockedAverage.apply(U2, Phi)


def average_frequency(S: Tensor, A: Tensor | None) -> Tensor:
    """Average along the frequential axis: ``A @ S`` (low-pass ``phi_F``, stride ``2**log2_F``), or a
    global sum over all bins, zero-padded ones included (``F='global'``).

    Returns:
        Shape ``(B, n_freq, n_time)`` from ``S`` of shape ``(B, n_rows, n_time)``.
    """
    if A is None:
        return S.sum(dim=-2, keepdim=True)
    return torch.matmul(A, S)  # (n_freq, n_rows) @ (B, n_rows, n_time)


def stack_operators(ops: list[FrequentialOperator]) -> FrequentialOperator:
    """One operator whose kept rows are those of ``ops`` in turn (``rows``/``n_rows`` of the first
    are meaningless: split the output by each operator's ``H_block.shape[0] // 2``)."""
    R = [op.H_block.shape[0] // 2 for op in ops]
    re = torch.cat([op.H_block[:r] for op, r in zip(ops, R, strict=True)])
    im = torch.cat([op.H_block[r:] for op, r in zip(ops, R, strict=True)])
    return FrequentialOperator(torch.cat([re, im]), None, sum(R))
