"""The signals at the boundary of ``SCRAPLLoss.forward``: shape, device, dtype and (optionally)
finiteness, checked with errors that name ``x`` or ``x_target``.

Decisions (documented in the training guide):

* **device**: a signal on another device than the loss is an error (found and expected named):
  moving it silently would hide a copy per step.
* **dtype**: the loss computes in the dtype of its filters (float32, or float64 after
  ``.double()``; a half-precision loss computes in float32). Signals of lower or equal precision
  (float16 and bfloat16 from autocast, float32 for a float64 loss) are cast up, which loses
  nothing. A signal of higher precision than the loss (float64 for a float32 loss) is an error:
  computing it in float32 would silently drop the precision the caller asked for.
* **NaN / inf**: not checked by default (the check reads a value back from the device, a
  synchronisation per step); ``check_finite=True`` turns it on.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_signal_pair", "compute_dtype"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def compute_dtype(buffer_dtype: torch.dtype) -> torch.dtype:
    """The dtype a loss whose filters are ``buffer_dtype`` computes in (float32 for half precision)."""
    return torch.float32 if buffer_dtype in _LOW_PRECISION else buffer_dtype


def _check_one(
    name: str, t: object, length: int, device: torch.device | None, dtype: torch.dtype | None
) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {t.dtype}")
    if t.dim() != 3:
        raise ValueError(
            f"{name} must have shape (batch, channels, {length}), got {tuple(t.shape)} ({t.dim()} dims)"
        )
    if t.shape[-1] != length:
        raise ValueError(f"{name} must have {length} samples (shape={length}), got {t.shape[-1]}")
    if device is not None and t.device != device:
        raise ValueError(
            f"{name} is on device {t.device}, but the loss is on {device}: move the signals, or the "
            f"loss with scrapl_loss.to({str(t.device)!r})"
        )
    if dtype is not None and t.dtype != dtype and torch.finfo(t.dtype).bits > torch.finfo(dtype).bits:
        raise TypeError(
            f"{name} has dtype {t.dtype}, but the loss computes in {dtype}: pass {dtype} signals, or "
            f"call scrapl_loss.to({t.dtype}) to compute in {t.dtype}"
        )
    return t


def check_signal_pair(
    x: object,
    x_target: object,
    *,
    length: int,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    check_finite: bool = False,
) -> tuple[Tensor, Tensor]:
    """Check ``x`` and ``x_target`` and fold channels into the batch.

    Args:
        x: signals, ``(batch, channels, length)``.
        x_target: target signals, same shape.
        length: the signal length N the loss was built for.
        device: the loss's device (None: not checked).
        dtype: the dtype the loss computes in (None: not checked); lower precisions are cast to it.
        check_finite: refuse NaN and inf (one device synchronisation).

    Returns:
        ``(x, x_target)`` reshaped to ``(batch · channels, length)``, in ``dtype`` if given.

    Raises:
        TypeError: not a tensor, not floating point, or a higher precision than ``dtype``.
        ValueError: wrong shape, another device, or (with ``check_finite``) a NaN or inf.

    Shape:
        ``(B, C, N)`` each -> ``(B·C, N)`` each.
    """
    x = _check_one("x", x, length, device, dtype)
    x_target = _check_one("x_target", x_target, length, device, dtype)
    if x.shape != x_target.shape:
        raise ValueError(
            f"x and x_target must have the same shape, got {tuple(x.shape)} and {tuple(x_target.shape)}"
        )
    if check_finite:
        finite = torch.stack([torch.isfinite(x).all(), torch.isfinite(x_target).all()]).tolist()
        for name, t, ok in (("x", x, finite[0]), ("x_target", x_target, finite[1])):
            if not ok:
                n_bad = int((~torch.isfinite(t)).sum())
                raise ValueError(f"{name} has {n_bad} non-finite value(s) (NaN or inf) (check_finite=True)")
    if dtype is not None:
        x, x_target = x.to(dtype), x_target.to(dtype)
    return x.reshape(-1, length), x_target.reshape(-1, length)
