"""Argument checks of the optimizer and the hooks (they live in :mod:`scrapl._checks`)."""

from __future__ import annotations

from .._checks import as_bool, as_float, as_int, as_int_in, check_params

__all__ = ["as_bool", "as_float", "as_int", "as_int_in", "check_params"]
