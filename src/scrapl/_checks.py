"""Argument checks shared across the package: errors name the argument and the value."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["as_bool", "as_choice", "as_float", "as_int", "as_int_in", "check_params"]


def as_int(name: str, value: object) -> int:
    """Return ``value`` as an int; raise TypeError for bools and non-integers.

    Anything with ``__index__`` is accepted: Python and NumPy integers, and one-element integer
    tensors (``torch.tensor(3)``).
    """
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


def as_float(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite float within the given bounds.

    Raises:
        TypeError: for bools and non-numbers.
        ValueError: for a non-finite value or one outside ``[low, high]`` (open ends with
            ``low_open`` / ``high_open``).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return x


def as_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool; raise TypeError otherwise."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def as_choice(name: str, value: object, choices: tuple) -> object:
    """Return ``value`` if it is one of ``choices``; raise ValueError naming them otherwise."""
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_params(params: Iterable[Tensor], *, leaf: bool = True) -> list[Tensor]:
    """Return the parameters as a list of distinct, floating-point tensors (leaves if ``leaf``)."""
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
        if leaf and not p.is_leaf:
            raise ValueError(f"params[{i}] must be a leaf tensor (a parameter), got a non-leaf")
        if id(p) in seen:
            raise ValueError(f"params[{i}] appears more than once in params")
        seen.add(id(p))
    return out
