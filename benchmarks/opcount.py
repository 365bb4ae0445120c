"""Count the working operators of one training step, and the host synchronisations in it.

On a GPU a SCRAPL step at the paper's size is bound by operator launches: each aten operator that
does work is at least one kernel launch and one trip through the dispatcher and autograd. A
``TorchDispatchMode`` sees every aten operator that reaches a backend, forward and backward.

* **Working operators** are all of them except views (``func.is_view``, plus ``_unsafe_view`` and
  ``_reshape_alias``, which only make metadata) and bare allocations (``empty``, ``empty_like``,
  ``empty_strided``, ``new_empty``, ``new_empty_strided``): a fill (``zeros``, ``zero_``), a copy
  or a cast counts, since it launches a kernel.
* **Host synchronisations** are operators whose result the host must wait for, or that move data
  between the host and the device: ``_local_scalar_dense`` (``.item()``, ``float(t)``,
  ``if t:``), operators whose output shape depends on the data (``nonzero``, ``masked_select``,
  ``unique``, indexing with a boolean mask, ...), ``equal`` and ``is_nonzero``, a tensor built from
  host data (``torch.tensor(...)``: ``lift_fresh``), and a copy between devices. ``.tolist()`` and
  ``.numpy()`` read memory without dispatching an operator; running a step on
  ``FakeTensorMode`` tensors (no data at all, as the tests do) catches those too.

A step with no host synchronisation can be captured in a CUDA graph.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["OpCount", "OpCounter", "count_ops", "training_step"]

_METADATA = frozenset({"_unsafe_view", "_reshape_alias", "lift"})
_ALLOCATIONS = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})
_DATA_DEPENDENT = frozenset(
    {
        "_local_scalar_dense",
        "nonzero",
        "nonzero_numpy",
        "masked_select",
        "unique_dim",
        "_unique",
        "_unique2",
        "unique_consecutive",
        "equal",
        "is_nonzero",
        "lift_fresh",
        "_assert_async",
    }
)


def _is_sync(func, args) -> bool:
    name = func.overloadpacket.__name__
    if name in _DATA_DEPENDENT:
        return True
    if name in ("index", "index_put", "index_put_", "_index_put_impl_"):  # a boolean mask is a nonzero
        indices = args[1] if len(args) > 1 else ()
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices)
    if name == "repeat_interleave" and len(args) > 1 and isinstance(args[1], torch.Tensor):
        return True  # without output_size its result length is the sum of the repeats
    if name in ("_to_copy", "copy_"):
        tensors = [a for a in args[:2] if isinstance(a, torch.Tensor)]
        return len({t.device for t in tensors}) > 1
    return False


@dataclass
class OpCount:
    """Working operators by name, and host synchronisations (operator names, in call order)."""

    ops: Counter = field(default_factory=Counter)
    syncs: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Number of working operators."""
        return sum(self.ops.values())


class OpCounter(TorchDispatchMode):
    """A dispatch mode that fills an :class:`OpCount` while active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = OpCount()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if _is_sync(func, args):
            self.count.syncs.append(name)
        if not func.is_view and name not in _METADATA and name not in _ALLOCATIONS:
            self.count.ops[name] += 1
        return func(*args, **(kwargs or {}))


def count_ops(fn: Callable[[], object]) -> OpCount:
    """Run ``fn`` once under an :class:`OpCounter` and return what it counted."""
    with OpCounter() as counter:
        fn()
    return counter.count


def training_step(loss_fn: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor) -> Callable[[], None]:
    """A callable running one training step: a fresh leaf ``x`` from ``x0``, ``loss_fn(x)``,
    ``backward()`` (the leaf's creation, a copy, is outside the count)."""

    def step() -> None:
        loss_fn(x0.detach().requires_grad_(True)).backward()

    return step
