"""Determinism of encoder and synth, and the fingerprints of the data and weights a warmup used.

(The warmup's arguments are checked where they are defined: :class:`~.problem.WarmupProblem` and
:class:`~.options.WarmupOptions`.)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .._logging import get_logger
from .problem import WarmupBatch

__all__ = ["check_is_deterministic", "data_sha256", "tensor_sha256"]

log = get_logger("scrapl.warmup")


def check_is_deterministic(
    theta_fn: Callable[..., Tensor],
    theta_fn_kwargs: Mapping[str, Any],
    synth_fn: Callable[..., Tensor],
    synth_fn_kwargs: Mapping[str, Any] | None = None,
    *,
    logger: logging.Logger | None = None,
) -> bool:
    """Call encoder and synth twice and compare (``torch.allclose``, rtol 1e-5, atol 1e-8).

    Logs the warnings of scrapl-loss 0.1.0 (``theta_fn is not deterministic: ...`` /
    ``synth_fn is not deterministic``) and returns False on the first mismatch, else True.
    """
    logger = logger or log
    with torch.no_grad():
        theta_1 = theta_fn(**theta_fn_kwargs)
        theta_2 = theta_fn(**theta_fn_kwargs)
        if not torch.allclose(theta_1, theta_2):
            logger.warning(f"theta_fn is not deterministic: theta_hat_1 = {theta_1}, theta_hat_2 = {theta_2}")
            return False
        synth_fn_kwargs = synth_fn_kwargs or {}
        if not torch.allclose(synth_fn(theta_1, **synth_fn_kwargs), synth_fn(theta_2, **synth_fn_kwargs)):
            logger.warning("synth_fn is not deterministic")
            return False
    return True


def tensor_sha256(tensors: Sequence[Tensor]) -> str:
    """SHA-256 of the dtypes, shapes and values of ``tensors`` (in order)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def data_sha256(batches: Sequence[WarmupBatch]) -> str:
    """SHA-256 of the warmup data: every tensor and plain value of every batch's kwargs."""
    h = hashlib.sha256()
    for b in batches:
        for kwargs in (b.theta_fn_kwargs, b.synth_fn_kwargs):
            for key in sorted(kwargs):
                value = kwargs[key]
                h.update(key.encode())
                if isinstance(value, Tensor):
                    h.update(tensor_sha256([value]).encode())
                elif isinstance(value, (int, float, str, bool, type(None))):
                    h.update(repr(value).encode())
                else:
                    h.update(type(value).__name__.encode())
    return h.hexdigest()
