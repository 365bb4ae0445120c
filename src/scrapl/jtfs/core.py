"""The JTFS path computation as pure functions over tensors (no module state).

One second-order path ``(n2, n_fr)`` of a batch of padded signals (``jtfs-spec.md`` §4–6):

``S[n2, n_fr] = A_F( A_T( | psi_fr[n_fr] *_{n1} Y[n2] |_eps ) )``, with
``Y[n2][n1] = ( |x_pad * psi1[n1]|_eps  ↓2^j1 ) * psi2[n2] ↓2^(j2-j1)`` for ``n1 < n1_max(n2)``
(complex, no modulus), ``|z|_eps = |z| + 1e-12``, ``A_T`` the temporal low-pass ``phi`` with stride
``2**log2_T`` (or a global sum), ``A_F`` the frequential low-pass ``phi_F`` with stride
``2**log2_F`` (or a global sum; skipped for the spin-0 filter ``n_fr = 0``). All convolutions are
circular on the padded lengths; decimation in time is a mean-fold of the spectrum.

The frequential filter, the temporal averaging and the frequential averaging are linear maps on
short axes; they are applied as dense matrices (``ops.circulant_decimation_matrix``), which on a CPU
is several times faster than the equivalent FFTs and identical in exact arithmetic.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .ops import MODULUS_EPS, modulus, mul_real

__all__ = [
    "first_order",
    "second_order_temporal",
    "Band",
    "filter_band",
    "place",
    "frequential_scattering",
    "FrequentialOperator",
    "frequential_operator",
    "stack_operators",
    "unprune_rows",
    "average_time",
    "average_frequency",
]


class Band(NamedTuple):
    """The bins where real filters of length ``M`` are not negligible, as circular windows.

    Filter ``g`` is read on bins ``k = (start_g + i) mod M``, ``i < S`` (its smallest circular
    interval holding every bin with ``|h| >= rel_tol max|h|``; ``weight`` is 0 past its own width).
    ``index`` points into the half spectrum of a real signal (``k`` for ``k <= M/2``, else
    ``M - k``), and ``conj`` marks the bins read conjugated (``X[k] = conj(X[M - k])``).
    ``weight`` includes the ``2**-s`` of the mean-fold onto ``n_out = M / 2**s`` bins.
    Shapes ``(G, S)`` for ``G`` filters, ``(S,)`` for one (``start`` a tensor ``(G,)`` or an int).
    """

    index: Tensor
    conj: Tensor
    weight: Tensor
    start: Tensor | int
    n_out: int


def _circular_hull(mask: Tensor) -> tuple[int, int]:
    """``(start, width)`` of the smallest circular interval covering the True entries of ``mask``."""
    M = mask.shape[-1]
    on = torch.nonzero(mask).flatten().tolist()
    if not on:
        return 0, 1
    gaps = [(on[(i + 1) % len(on)] - on[i]) % M or M for i in range(len(on))]
    i = max(range(len(on)), key=lambda i: gaps[i])  # the largest empty arc ends the interval
    start = on[(i + 1) % len(on)]
    return start, M - gaps[i] + 1


def filter_band(h_f: Tensor, s: int, rel_tol: float = 1e-12) -> Band:
    """Return the :class:`Band` of real filters ``h_f`` (shape ``(M,)`` or ``(G, M)``).

    Dropping the bins below ``rel_tol max|h|`` changes a result by less than ``rel_tol`` of its
    scale, far below float32 (and float64 test) precision: the Gaussian tails make most bins that
    small, so a filter of width ``sigma`` keeps about ``15 sigma M`` bins.
    """
    if h_f.dim() == 1:
        band = filter_band(h_f[None], s, rel_tol)
        return Band(band.index[0], band.conj[0], band.weight[0], int(band.start[0]), band.n_out)
    M = h_f.shape[-1]
    hulls = [_circular_hull(h.abs() >= rel_tol * h.abs().max()) for h in h_f]
    width = max(w for _, w in hulls)
    k = (torch.tensor([a for a, _ in hulls])[:, None] + torch.arange(width)) % M  # (G, S)
    k = k.to(h_f.device)
    weight = torch.gather(h_f, 1, k) * 2.0**-s
    weight = weight * (torch.arange(width, device=h_f.device) < torch.tensor(
        [w for _, w in hulls], device=h_f.device)[:, None])
    index = torch.where(k <= M // 2, k, M - k)
    start = torch.tensor([a % (M // 2**s) for a, _ in hulls])
    return Band(index, k > M // 2, weight, start, M // 2**s)


def place(V: Tensor, start: int, n_out: int) -> Tensor:
    """Fold a window of bins ``start .. start + S - 1`` (last axis of ``V``) onto ``n_out`` bins:
    ``out[(start + i) mod n_out] += V[i]``, by zero-padding (and summing wrapped blocks).

    Shape: ``(..., S) -> (..., n_out)``.
    """
    S = V.shape[-1]
    end = start + S
    if end <= n_out:
        return torch.nn.functional.pad(V, (start, n_out - end))
    r = -(-end // n_out)
    W = torch.nn.functional.pad(V, (start, r * n_out - end))
    return W.reshape(*V.shape[:-1], r, n_out).sum(dim=-2)


def _read(half: Tensor, band: Band, index: Tensor) -> Tensor:
    # (B, H) with (G, S) indices -> (B, G, S); (B, G, H) with (S,) indices -> (B, G, S)
    V = half[:, index] if index.dim() > 1 else half.index_select(-1, index)
    V = torch.where(band.conj, V.conj(), V)
    return mul_real(V, band.weight)


def first_order(x_rfft: Tensor, band: Band) -> Tensor:
    """Return the first-order scalograms ``U1 = |IDFT(fold_mean(DFT(x_pad) psi1_f, k1))|_eps``.

    Each wavelet's window is placed at bin 0 of the decimated spectrum instead of at its own
    position: a circular shift of the spectrum multiplies the signal by a unit-modulus phase, which
    the modulus removes, so ``U1`` is unchanged (the bins' relative positions, hence any aliasing of
    the fold, are kept).

    Args:
        x_rfft: half spectrum of the padded signals. Shape ``(B, Np/2 + 1)``.
        band: :class:`Band` of ``G`` first-order wavelets sharing the decimation ``k1``
            (``min(j1, log2_T)``), indices of shape ``(G, S)``.

    Returns:
        Shape ``(B, G, Np / 2**k1)`` real.
    """
    V = _read(x_rfft, band, band.index)  # (B, Np/2+1) -> (B, G, S)
    return modulus(torch.fft.ifft(place(V, 0, band.n_out)))


def second_order_temporal(U1_rfft: Tensor, band: Band) -> Tensor:
    """Return ``Y = IDFT(fold_mean(DFT(U1) psi2_f, s))``: second-order wavelet, decimation ``2**s``.

    Only the window where the wavelet is not negligible (``band``, see :func:`filter_band`) is
    multiplied and folded; the spectrum of the real ``U1`` is read from its half spectrum.

    Args:
        U1_rfft: ``rfft`` of the first-order scalograms at decimation ``k1``. Shape ``(B, G, M/2+1)``.
        band: :class:`Band` of the second-order wavelet at level ``k1``, decimation ``s = j2 - k1``
            (indices of shape ``(S,)``).

    Returns:
        Shape ``(B, G, M / 2**s)`` complex (no modulus: frequential scattering follows).
    """
    V = _read(U1_rfft, band, band.index)  # (B, G, S)
    return torch.fft.ifft(place(V, int(band.start), band.n_out))


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


class _ModulusParts(torch.autograd.Function):
    """``sqrt(re^2 + im^2) + eps`` of separate planes, gradient ``g (re, im) / (|z| + eps)``."""

    @staticmethod
    def forward(ctx, re: Tensor, im: Tensor) -> Tensor:  # type: ignore[override]
        out = torch.addcmul(re * re, im, im).sqrt_().add_(MODULUS_EPS)
        ctx.save_for_backward(re, im, out)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        re, im, out = ctx.saved_tensors
        w = grad_out / out
        return re * w, im * w


def frequential_scattering(Y: Tensor, op: FrequentialOperator) -> Tensor:
    """Return ``U2 = |H @ Y|_eps``: frequential filter along ``n1`` (with decimation), then modulus.

    The complex product runs as one real matrix product on stacked (re, im) planes, which BLAS
    does several times faster than a complex product with a short inner dimension.

    Args:
        Y: second-order temporal coefficients (complex, or real for the first-order paths),
            ``n1`` on axis -2 (zero beyond ``n1_max``). Shape ``(B, n1_max, M)``.
        op: :class:`FrequentialOperator` with ``R`` kept rows.

    Returns:
        Shape ``(B, R, M)`` real.
    """
    if Y.is_complex():
        planes = torch.cat([Y.real, Y.imag], dim=-2)  # (B, 2 n1, M)
        out = torch.matmul(op.H_block, planes)  # (2R, 2 n1) @ (B, 2 n1, M) -> (B, 2R, M)
    else:
        n1 = Y.shape[-2]
        out = torch.matmul(op.H_block[:, :n1], Y)  # real input: only the (Re H; Im H) columns
    R = out.shape[-2] // 2
    return _ModulusParts.apply(out[..., :R, :], out[..., R:, :])


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


def average_time(U2: Tensor, Phi: Tensor | None) -> Tensor:
    """Average along time: ``U2 @ Phi`` (low-pass ``phi`` at stride ``2**log2_T``), or a global sum.

    Args:
        U2: Shape ``(B, n_rows, M)``.
        Phi: real matrix ``Phi[t, tau] = Re(phi)[(2**s tau - t) mod M]``, or None for ``T='global'``
            (a sum over all ``M`` samples, padding included, as in the reference).

    Returns:
        Shape ``(B, n_rows, n_time)``.
    """
    if Phi is None:
        return U2.sum(dim=-1, keepdim=True)
    return torch.matmul(U2, Phi)  # (B, n_rows, M) @ (M, n_time)


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
