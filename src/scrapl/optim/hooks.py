"""Tensor hooks that run a :class:`PathwiseOptimizer` during ``backward()``: a thin adapter.

This is how scrapl-loss 0.1.0's ``attach_params`` behaves: every gradient that flows into an
attached parameter is transformed under the loss's current path before it is accumulated into
``p.grad``, so a plain ``SGD.step()`` follows. The loss supplies what the hooks need through a
callback returning a :class:`HookContext`, read at backward time.

Prefer the explicit :meth:`PathwiseOptimizer.step` when gradients must be seen whole first
(AMP's ``GradScaler``, clipping, DDP averaging): a hook sees each backward pass's local gradient.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor
from torch.utils.hooks import RemovableHandle

from .pathwise import PathwiseOptimizer
from .provenance import check_one_path

__all__ = ["HookContext", "PathwiseHooks"]


class HookContext(NamedTuple):
    """What a hook needs to know about the loss at backward time.

    Attributes:
        path_idx: Path of the loss's most recent forward, or None if none was sampled.
        step: Training-step counter ``k`` (train-mode forwards, the current one included).
        n_seen: Distinct visited paths, current included; None lets the optimizer count its own.
        training: Whether the loss is in training mode; hooks pass gradients through otherwise.
    """

    path_idx: int | None
    step: int
    n_seen: int | None
    training: bool


class PathwiseHooks:
    """Register tensor hooks that send every gradient of ``optimizer.params`` through it.

    In training mode each hook returns ``optimizer.process_grad(i, grad, path_idx, step, n_seen)``
    with the values of ``context()``; in eval mode it returns the gradient unchanged (no
    ``grad_mult`` either). The incoming gradient is never modified in place, so expanded or
    shared gradients are safe. If the optimizer tracks paths (``backward_paths``), a backward pass
    whose gradient comes from another path than ``context().path_idx``, or that would add to a
    ``p.grad`` holding another path's gradient, raises
    :class:`~scrapl.optim.provenance.MixedPathsError` before anything is transformed.

    Args:
        optimizer: The optimizer whose ``params`` get hooks.
        context: Called once per hooked gradient, at backward time.

    Raises:
        ValueError: If a parameter does not require grad; nothing is registered then.

    Example:
        >>> import torch
        >>> w = torch.nn.Parameter(torch.ones(2))
        >>> opt = PathwiseOptimizer([w], n_paths=3, grad_mult=1.0, use_p_saga=False)
        >>> hooks = PathwiseHooks(opt, lambda: HookContext(path_idx=1, step=1, n_seen=None,
        ...                                                training=True))
        >>> (w * torch.tensor([0.5, -4.0])).sum().backward()
        >>> w.grad
        tensor([ 1., -1.])
        >>> hooks.remove()
    """

    def __init__(self, optimizer: PathwiseOptimizer, context: Callable[[], HookContext]) -> None:
        if not isinstance(optimizer, PathwiseOptimizer):
            raise TypeError(f"optimizer must be a PathwiseOptimizer, got {type(optimizer).__name__}")
        if not callable(context):
            raise TypeError(f"context must be callable, got {context!r}")
        for i, p in enumerate(optimizer.params):
            if not p.requires_grad:
                raise ValueError(
                    f"params[{i}] (shape {tuple(p.shape)}) has requires_grad=False: a frozen "
                    "parameter gets no gradient to transform; attach only trainable parameters"
                )
        self.optimizer = optimizer
        self._context = context
        self._handles: list[RemovableHandle] = []
        try:
            for i, p in enumerate(optimizer.params):
                self._handles.append(p.register_hook(functools.partial(self._hook, i)))
        except Exception:
            self.remove()
            raise

    @property
    def attached(self) -> bool:
        """Whether the hooks are registered."""
        return bool(self._handles)

    def _hook(self, param_index: int, grad: Tensor) -> Tensor:
        ctx = self._context()
        if not ctx.training:
            return grad
        if ctx.path_idx is None:
            raise RuntimeError(
                "a hooked parameter received a gradient in training mode, but no path has been "
                "sampled: run the loss's forward before backward()"
            )
        if self.optimizer.grad_paths is not None:
            incoming = self.optimizer.grad_paths.incoming(param_index)
            check_one_path(incoming, ctx.path_idx, f"a backward pass into params[{param_index}] is processed")
        return self.optimizer.process_grad(param_index, grad, ctx.path_idx, ctx.step, ctx.n_seen)

    def remove(self) -> None:
        """Unregister every hook (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> PathwiseHooks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
