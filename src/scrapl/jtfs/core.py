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
from torch import Tensor

from .ops import fold_mean, modulus

__all__ = [
    "first_order",
    "second_order_temporal",
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
    V = x_hat.unsqueeze(-2) * psi1_f  # (B, 1, Np) * (G, Np) -> (B, G, Np)
    return modulus(torch.fft.ifft(fold_mean(V, k1)))


def second_order_temporal(U1_hat: Tensor, psi2_f: Tensor, s: int) -> Tensor:
    """Return ``Y = IDFT(fold_mean(U1_hat * psi2_f, s))``: second-order wavelet, decimation ``2**s``.

    Args:
        U1_hat: spectrum of the first-order scalogram at decimation ``j1``. Shape ``(B, G, M)``.
        psi2_f: the second-order wavelet at level ``j1`` (length ``M``). Shape ``(M,)``.
        s: extra decimation ``j2 - j1``.

    Returns:
        Shape ``(B, G, M / 2**s)`` complex (no modulus: frequential scattering follows).
    """
    return torch.fft.ifft(fold_mean(U1_hat * psi2_f, s))


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
