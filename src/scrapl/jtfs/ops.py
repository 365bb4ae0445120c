"""Tensor primitives of the JTFS: the modulus of complex data held as real planes (with a safe
gradient), Fourier-domain decimation, padding, and the construction of "filter + decimate"
operators as dense matrices.
"""

from __future__ import annotations

import torch
from torch import Tensor

MODULUS_EPS = 1e-12
"""The reference adds it to every modulus, ``|z| + MODULUS_EPS`` (see :func:`modulus` for where
this engine accounts for it)."""

__all__ = ["MODULUS_EPS", "modulus", "fold_mean", "reflect_pad", "circulant_decimation_matrix"]


_EPS_SQUARED = torch.tensor(MODULUS_EPS**2, dtype=torch.float64)  # a 0-dim CPU scalar for any device


class _Modulus(torch.autograd.Function):
    """``sqrt(re^2 + im^2 + eps^2)`` of planes stacked on axis -3, gradient ``g (re, im) / out``
    (finite, 0 at ``z = 0``). The backward is made of differentiable operations on the saved input
    and output, so it can be differentiated again."""

    @staticmethod
    def forward(ctx, planes: Tensor) -> Tensor:
        re, im = planes.select(-3, 0), planes.select(-3, 1)
        out = torch.addcmul(_EPS_SQUARED, re, re).addcmul_(im, im).sqrt_()
        ctx.save_for_backward(planes, out)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Tensor:
        planes, out = ctx.saved_tensors
        return planes * (grad_out / out).unsqueeze(-3)


def modulus(planes: Tensor) -> Tensor:
    """Return the modulus ``sqrt(re^2 + im^2 + eps^2)``, ``eps = 1e-12``, of complex data held as
    real planes ``planes[..., 0, :, :] = re``, ``planes[..., 1, :, :] = im``.

    This is ``|z|`` to within ``eps^2 / (2 |z|)`` (at most ``eps`` for ``|z| <= eps``, at most
    ``5e-13 eps`` for ``|z| >= 1``), and it is never 0, so its gradient ``g (re, im) / out`` is 0,
    not NaN, at ``z = 0``: silent inputs give zero gradients, as in scrapl-loss 0.1.0. The reference
    computes ``|z| + eps`` and divides the gradient by it: the same to within ``eps / |z|``
    relative. Its ``+ eps`` on the coefficients is added after the (linear) averagings, where it is
    a constant (:class:`~scrapl.jtfs.plan.FrequentialPlan`); the first-order moduli only reach the
    loss through the second-order wavelets, which are zero at frequency 0, where a constant lives.

    Shape: ``(..., 2, R, M) -> (..., R, M)``.

    Example:
        >>> modulus(torch.tensor([[[3.0]], [[4.0]]])).item()
        5.0
    """
    return _Modulus.apply(planes)


def fold_mean(V: Tensor, s: int, dim: int = -1) -> Tensor:
    """Decimate in time by folding a spectrum: ``out[k] = 2**-s sum_m V[k + m M / 2**s]``.

    ``IDFT(fold_mean(DFT(v), s))[t] = v[2**s t]``. Shape: ``(..., M, ...) -> (..., M / 2**s, ...)``
    along ``dim``.
    """
    if s == 0:
        return V
    dim = dim % V.dim()
    M = V.shape[dim]
    shape = V.shape[:dim] + (2**s, M // 2**s) + V.shape[dim + 1 :]
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
