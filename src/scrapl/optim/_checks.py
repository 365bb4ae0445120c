"""Argument checks of the optimizer and the hooks (the scalar ones are :mod:`scrapl._checks`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from .._checks import as_bool, as_float, as_int, as_int_in

__all__ = ["as_bool", "as_float", "as_int", "as_int_in", "check_params"]


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
