"""Argument checks of the warmup (all run before any compute), determinism, and fingerprints."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .._logging import get_logger
from .hvp import WarmupBatch
from .probs import check_agg

__all__ = [
    "check_choice",
    "check_is_deterministic",
    "check_path_range",
    "check_warmup_inputs",
    "tensor_sha256",
    "data_sha256",
]

log = get_logger("scrapl.warmup")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` naming ``name``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_path_range(start_path_idx: Any, end_path_idx: Any, n_paths: int) -> tuple[int, int]:
    """Validate ``[start, end)`` (``end=None`` means ``n_paths``) and return it.

    Raises:
        TypeError: non-integer bounds.
        ValueError: not ``0 <= start < end <= n_paths``.
    """
    _check_int("start_path_idx", start_path_idx, 0)
    end = n_paths if end_path_idx is None else _check_int("end_path_idx", end_path_idx, 0)
    if not start_path_idx < end <= n_paths:
        raise ValueError(
            f"need 0 <= start_path_idx < end_path_idx <= n_paths={n_paths}, got "
            f"start_path_idx={start_path_idx}, end_path_idx={end_path_idx}"
        )
    return start_path_idx, end


def _check_params(params: Any) -> list[Tensor]:
    if isinstance(params, Tensor) or not isinstance(params, Sequence):
        raise TypeError(f"params must be a list of tensors, got {type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError("params must not be empty")
    seen = set()
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"params[{i}] must be a tensor, got {type(p).__name__}")
        if not p.requires_grad or not p.is_floating_point():
            raise ValueError(f"params[{i}] must be a floating-point tensor with requires_grad")
        if p.grad is not None:
            raise ValueError(
                f"params[{i}] already has a gradient (p.grad is not None); params "
                f"must have no prior gradients: use zero_grad(set_to_none=True)"
            )
        if id(p) in seen:
            raise ValueError(f"params[{i}] appears twice in params")
        seen.add(id(p))
    return params


def _check_kwargs_list(name: str, value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of dicts (one per batch), got {type(value).__name__}")
    for i, kw in enumerate(value):
        if not isinstance(kw, Mapping):
            raise TypeError(f"{name}[{i}] must be a dict, got {type(kw).__name__}")
    return list(value)


def check_warmup_inputs(
    *,
    path_loss: Any,
    theta_fn: Any,
    synth_fn: Any,
    theta_fn_kwargs: Any,
    synth_fn_kwargs: Any,
    params: Any,
    n_paths: Any,
    n_theta: Any,
    start_path_idx: Any,
    end_path_idx: Any,
    n_iter: Any,
    tol: Any,
    agg: Any,
    target_key: str,
    save_dir: Any,
) -> tuple[list[WarmupBatch], list[Tensor], int, int]:
    """Check every warmup argument; nothing is computed.

    Returns:
        ``(batches, params, start, end)``.

    Raises:
        TypeError / ValueError: naming the offending argument.
    """
    for name, fn in (("path_loss", path_loss), ("theta_fn", theta_fn), ("synth_fn", synth_fn)):
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    _check_int("n_paths", n_paths, 1)
    _check_int("n_theta", n_theta, 1)
    params = _check_params(params)
    theta_kw = _check_kwargs_list("theta_fn_kwargs", theta_fn_kwargs)
    if not theta_kw:
        raise ValueError("theta_fn_kwargs must not be empty (one dict per batch)")
    if synth_fn_kwargs is None:
        synth_kw: list[Mapping[str, Any]] = [{} for _ in theta_kw]
    else:
        synth_kw = _check_kwargs_list("synth_fn_kwargs", synth_fn_kwargs)
        if len(synth_kw) != len(theta_kw):
            raise ValueError(
                f"synth_fn_kwargs must have one dict per batch: "
                f"len(synth_fn_kwargs)={len(synth_kw)} != "
                f"len(theta_fn_kwargs)={len(theta_kw)}"
            )
    for i, kw in enumerate(theta_kw):
        if target_key not in kw:
            raise ValueError(f"theta_fn_kwargs[{i}] must contain the target signal under {target_key!r}")
        if not isinstance(kw[target_key], Tensor):
            raise TypeError(
                f"theta_fn_kwargs[{i}][{target_key!r}] must be a tensor, got {type(kw[target_key]).__name__}"
            )
    start, end = check_path_range(start_path_idx, end_path_idx, n_paths)
    _check_int("n_iter", n_iter, 1)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    check_agg(agg)
    if save_dir is not None and not isinstance(save_dir, (str, os.PathLike)):
        raise TypeError(f"save_dir must be a path or None, got {type(save_dir).__name__}")
    batches = [
        WarmupBatch(theta_fn_kwargs=t, synth_fn_kwargs=s, target=t[target_key])
        for t, s in zip(theta_kw, synth_kw, strict=True)
    ]
    return batches, params, start, end


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
