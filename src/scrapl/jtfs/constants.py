"""A module of constant tensors that keep their float64 values through dtype casts.

The dense operators of the JTFS (frequential filters with decimation, temporal and frequential
averaging) are computed in float64 from the float32-rounded filters, as scrapl-loss 0.1.0 computes
them on the fly. A float32 buffer upcast by ``.double()`` would keep only its float32 digits, and
float64 results would then differ from the reference's by ~1e-7 instead of ~1e-12. So each such
constant is registered twice, both non-persistent buffers (``.to(device)`` moves them, nothing goes
into ``state_dict``):

* ``name``: the value for float32 computation (a floating buffer: ``.half()`` and ``.double()``
  cast it like any parameter);
* ``name + "_f64"``: the float64 value, kept as its int64 bit pattern, which dtype casts leave
  alone; :meth:`ConstantModule.constant` reinterprets it (a view, no copy) for float64 computation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ConstantModule"]


class ConstantModule(nn.Module):
    """An ``nn.Module`` holding constants as non-persistent buffers (see the module docstring)."""

    def register_constant(self, name: str, value: Tensor, value64: Tensor | None = None) -> None:
        """Register ``value`` (any floating dtype; stored as float32) for float32 computation and
        ``value64`` (default: ``value``, stored as float64) for float64 computation."""
        v64 = (value if value64 is None else value64).to(torch.float64).contiguous()
        self.register_buffer(name, value.to(torch.float32).contiguous(), persistent=False)
        self.register_buffer(name + "_f64", v64.view(torch.int64), persistent=False)

    def constant(self, name: str, dtype: torch.dtype) -> Tensor:
        """The constant ``name`` for computation in ``dtype`` (float64: the exact value)."""
        if dtype == torch.float64:
            return self.get_buffer(name + "_f64").view(torch.float64)
        value = self.get_buffer(name)
        return value if value.dtype == dtype else value.to(dtype)
