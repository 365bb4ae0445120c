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

import torch
from typing import NamedTuple

from torch import Tensor

from .ops import fold_mean, modulus, mul_real

__all__ = [
    "first_order",
    "second_order_temporal",
    "Band",
    "filter_band",
    "frequential_scattering",
    "average_time",
    "average_frequency",
]


def first_order(x_hat: Tensor, psi1_f: Tensor, k1: int) -> Tensor:
    """Return the first-order scalogram ``U1 = |IDFT(fold_mean(x_hat psi1_f, k1))|_eps``.

    Args:
        x_hat: DFT of the padded signals (complex). Shape ``(B, Np)``.
        psi1_f: first-order wavelets sharing the decimation ``k1`` (real). Shape ``(G, Np)``.
        k1: decimation exponent (``min(j1, log2_T)``).

    Returns:
        Shape ``(B, G, Np / 2**k1)`` real.
    """
    V = mul_real(x_hat.unsqueeze(-2), psi1_f)  # (B, 1, Np) * (G, Np) -> (B, G, Np)
    return modulus(torch.fft.ifft(fold_mean(V, k1)))


def second_order_temporal(U1_rfft: Tensor, band: Band) -> Tensor:
    """Return ``Y = IDFT(fold_mean(DFT(U1) * psi2_f, s))``: second-order wavelet, decimation ``2**s``.

    Only the bins where the wavelet is not negligible (``band``, see :func:`filter_band`) are
    multiplied and folded; the spectrum of the real ``U1`` is read from its half spectrum
    (``DFT(U1)[M - k] = conj(DFT(U1)[k])``).

    Args:
        U1_rfft: ``rfft`` of the first-order scalogram at decimation ``k1``. Shape ``(B, G, M/2 + 1)``.
        band: support of the second-order wavelet at level ``k1``, with the decimation ``s = j2 - k1``.

    Returns:
        Shape ``(B, G, M / 2**s)`` complex (no modulus: frequential scattering follows).
    """
    pos = mul_real(U1_rfft.index_select(-1, band.src_pos), band.w_pos)
    neg = mul_real(U1_rfft.index_select(-1, band.src_neg).conj_physical(), band.w_neg)
    F = U1_rfft.new_zeros(U1_rfft.shape[:-1] + (band.n_out,))
    F = F.index_add(-1, band.dst_pos, pos).index_add(-1, band.dst_neg, neg)
    return torch.fft.ifft(F) * band.scale


class Band(NamedTuple):
    """Where a real filter of length ``M`` is not negligible, and where its bins fold to after a
    decimation by ``2**s`` (``dst = k mod M / 2**s``); ``src_*`` index the half spectrum
    (``k`` for ``k <= M/2``, ``M - k`` for the conjugate-symmetric bins above)."""

    src_pos: Tensor
    w_pos: Tensor
    dst_pos: Tensor
    src_neg: Tensor
    w_neg: Tensor
    dst_neg: Tensor
    n_out: int
    scale: float


def filter_band(h_f: Tensor, s: int, rel_tol: float = 1e-12) -> Band:
    """Return the :class:`Band` of ``h_f`` (shape ``(M,)``, real): bins with ``|h| >= rel_tol max|h|``.

    Dropping the other bins changes a result by less than ``rel_tol`` of its scale, far below float32
    (and float64 test) precision; the Gaussian tails of the wavelets make most bins that small.
    """
    M = h_f.shape[-1]
    keep = torch.nonzero(h_f.abs() >= rel_tol * h_f.abs().max()).flatten()
    pos, neg = keep[keep <= M // 2], keep[keep > M // 2]
    n_out = M // 2**s
    return Band(pos, h_f[pos], pos % n_out, M - neg, h_f[neg], neg % n_out, n_out, 2.0**-s)


def frequential_scattering(Y: Tensor, H: Tensor) -> Tensor:
    """Return ``U2 = |H @ Y|_eps``: frequential filter along ``n1`` (with decimation), then modulus.

    Args:
        Y: second-order temporal coefficients, ``n1`` on axis -2 (zero beyond ``n1_max``).
            Shape ``(B, n1_max, M)``.
        H: circulant-with-decimation matrix of the frequential filter, restricted to the first
            ``n1_max`` columns. Shape ``(n_rows, n1_max)`` complex.

    Returns:
        Shape ``(B, n_rows, M)`` real.
    """
    return modulus(torch.matmul(H, Y))  # (n_rows, n1) @ (B, n1, M) -> (B, n_rows, M)


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
