"""Argument checks shared by the optimizer and the hooks: errors name the argument and the value."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable

import torch
from torch import Tensor


def as_int(name: str, value: object) -> int:
    """Return ``value`` as an int; raise TypeError for bools and non-integers."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None


def as_int_in(name: str, value: object, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high)`` (``high=None``: unbounded above)."""
    k = as_int(name, value)
    if k < low or (high is not None and k >= high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high})"
        raise ValueError(f"{name} must be {bounds}, got {value!r}")
    return k


def as_float(name: str, value: object) -> float:
    """Return ``value`` as a finite float; raise TypeError for bools and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return x


def as_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool; raise TypeError otherwise."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def check_params(params: Iterable[Tensor]) -> list[Tensor]:
    """Return the parameters as a list of distinct, floating-point leaf tensors."""
    if isinstance(params, Tensor):
        raise TypeError(
            "params must be an iterable of tensors, got a single tensor of shape "
            f"{tuple(params.shape)}; wrap it in a list"
        )
    try:
        out = list(params)
    except TypeError:
        raise TypeError(f"params must be an iterable of tensors, got {params!r}") from None
    if not out:
        raise ValueError("params must contain at least one tensor, got an empty iterable")
    seen: set[int] = set()
    for i, p in enumerate(out):
        if not isinstance(p, Tensor):
            raise TypeError(f"params[{i}] must be a torch.Tensor, got {type(p).__name__}")
        if not torch.is_floating_point(p):
            raise TypeError(f"params[{i}] must have a floating-point dtype, got {p.dtype}")
        if not p.is_leaf:
            raise ValueError(f"params[{i}] must be a leaf tensor (a parameter), got a non-leaf")
        if id(p) in seen:
            raise ValueError(f"params[{i}] appears more than once in params")
        seen.add(id(p))
    return out
