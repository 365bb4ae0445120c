"""Tensor primitives of the JTFS: modulus with a safe gradient, Fourier-domain decimation, padding,
and the construction of "filter + decimate" operators as dense matrices.
"""

from __future__ import annotations

import torch
from torch import Tensor

MODULUS_EPS = 1e-12
"""Added to every modulus, as in scrapl-loss 0.1.0: ``|z| = sqrt(re^2 + im^2) + MODULUS_EPS``."""

__all__ = ["MODULUS_EPS", "modulus", "mul_real", "fold_mean", "reflect_pad", "circulant_decimation_matrix"]


def mul_real(z: Tensor, r: Tensor) -> Tensor:
    """Multiply a complex tensor by a real one (broadcasting) without promoting ``r`` to complex.

    ``z * r`` would first copy ``r`` into a complex tensor; this multiplies the interleaved
    (re, im) view instead. Shape: broadcast of ``z.shape`` and ``r.shape``.
    """
    return torch.view_as_complex(torch.view_as_real(z) * r.unsqueeze(-1))


class _Modulus(torch.autograd.Function):
    """``|z| + eps`` with gradient ``g z / (|z| + eps)``: finite (zero) at ``z = 0``, twice
    differentiable (the backward is written with differentiable ops, for Hessian-vector products)."""

    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:  # type: ignore[override]
        # sqrt(re^2 + im^2), as the reference; several times faster than complex abs on CPU
        out = torch.addcmul(z.real.square(), z.imag, z.imag).sqrt_().add_(MODULUS_EPS)
        ctx.save_for_backward(z, out)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:  # type: ignore[override]
        z, out = ctx.saved_tensors
        # out >= MODULUS_EPS > 0 in float32/float64 (the transform never runs in half precision)
        return mul_real(z, grad_out / out)


def modulus(z: Tensor) -> Tensor:
    """Return ``|z| + 1e-12`` elementwise (real tensor of ``z``'s shape).

    The gradient is ``g * z / (|z| + 1e-12)``, which is 0 (not NaN) at ``z = 0``: silent inputs give
    zero gradients, as in the reference (autograd's own ``abs`` would give NaN there).
    """
    return _Modulus.apply(z)


def fold_mean(V: Tensor, s: int, dim: int = -1) -> Tensor:
    """Decimate in time by folding a spectrum: ``out[k] = 2**-s sum_m V[k + m M / 2**s]``.

    ``IDFT(fold_mean(DFT(v), s))[t] = v[2**s t]``. Shape: ``(..., M, ...) -> (..., M / 2**s, ...)``
    along ``dim``.
    """
    if s == 0:
        return V
    dim = dim % V.dim()
    M = V.shape[dim]
    shape = V.shape[:dim] + (2**s, M // 2**s) + V.shape[dim + 1:]
    return V.reshape(shape).mean(dim=dim)


def reflect_pad(x: Tensor, pad_left: int, pad_right: int) -> Tensor:
    """Mirror-pad the last axis without repeating the edge sample (``x[pad_left - i]`` on the left).

    Shape: ``(..., N) -> (..., pad_left + N + pad_right)``; requires ``pad_left, pad_right < N``.
    """
    lead = x.shape[:-1]
    flat = x.reshape(-1, 1, x.shape[-1])
    out = torch.nn.functional.pad(flat, (pad_left, pad_right), mode="reflect")
    return out.reshape(*lead, out.shape[-1])


def circulant_decimation_matrix(h_f: Tensor, s: int, n_in: int) -> Tensor:
    """Return the matrix of "circular convolution with ``h``, then keep every ``2**s``-th sample".

    For a filter given by its length-``M`` DFT ``h_f``,
    ``IDFT_{M/2^s}(fold_mean(DFT_M(y) * h_f, s)) == A @ y`` with ``A[i, t] = h[(2**s i - t) mod M]``,
    ``h = IDFT_M(h_f)``. Only the first ``n_in`` columns are returned (for inputs known to be zero
    beyond them). Computed in float64 from ``h_f`` as given.

    Shape: ``(M,) -> (M / 2**s, n_in)`` complex128.
    """
    M = h_f.shape[-1]
    h = torch.fft.ifft(h_f.to(torch.float64))
    rows = torch.arange(M // 2**s, device=h_f.device)[:, None] * 2**s
    cols = torch.arange(n_in, device=h_f.device)[None, :]
    return h[(rows - cols) % M]
