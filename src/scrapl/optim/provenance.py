"""Which paths a parameter's gradient came from, so that no step mixes two paths silently.

P-Adam and P-SAGA credit a step's gradient to one path. If ``p.grad`` holds the sum of two paths'
gradients (two micro-batches that each drew a path, then one optimizer step), the update is
wrong without any error. Two pieces of bookkeeping prevent it:

* :class:`BackwardPaths` watches the loss values a SCRAPL loss returns: while a backward pass
  flows through them, it knows their paths (a tensor hook on each value; the set is cleared when
  the pass ends);
* :class:`GradPaths` keeps, for every parameter, the paths whose gradients its ``p.grad`` holds:
  a gradient accumulated into a ``p.grad`` that is None, or that was changed since the last
  accumulation (``zero_grad``), starts a new record; otherwise the paths add up.

:class:`~scrapl.optim.PathwiseOptimizer` checks the record in ``step(path_idx)`` (the explicit
route) and :class:`~scrapl.optim.PathwiseHooks` during the backward pass (the hook route). The cost
is two Python hooks per parameter tensor per backward pass; nothing synchronises with a device.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence

from torch import Tensor
from torch.autograd import Variable
from torch.utils.hooks import RemovableHandle

__all__ = ["BackwardPaths", "GradPaths", "MixedPathsError", "check_one_path"]


class MixedPathsError(ValueError):
    """A gradient of one path would be credited to another, or to several at once."""


class BackwardPaths:
    """The paths of the SCRAPL loss values the running backward pass flows through."""

    def __init__(self) -> None:
        self._current: set[int] = set()
        self._queued = False

    @property
    def current(self) -> frozenset[int]:
        """The paths of the backward pass in progress (empty outside one)."""
        return frozenset(self._current)

    def watch(self, value: Tensor, path_idx: int) -> None:
        """Record ``path_idx`` whenever a backward pass reaches ``value`` (if it requires grad)."""
        if not value.requires_grad:
            return
        try:
            value.register_hook(functools.partial(self._enter, path_idx))
        except RuntimeError:  # no hooks here (e.g. inside a functorch transform): no tracking
            pass

    def _enter(self, path_idx: int, grad: Tensor) -> None:
        self._current.add(path_idx)
        if not self._queued:  # cleared when this backward pass ends
            Variable._execution_engine.queue_callback(self._exit)
            self._queued = True

    def _exit(self) -> None:
        self._current, self._queued = set(), False


class GradPaths:
    """Per parameter, the paths whose gradients ``p.grad`` holds since it was last reset.

    Args:
        params: the parameter tensors (leaves).
        backward: where the paths of the running backward pass are known.
    """

    def __init__(self, params: Sequence[Tensor], backward: BackwardPaths) -> None:
        self._params = list(params)
        self._backward = backward
        n = len(self._params)
        self._paths: list[frozenset[int]] = [frozenset()] * n
        self._pending: list[frozenset[int]] = [frozenset()] * n
        self._grad: list[weakref.ref | None] = [None] * n  # the p.grad the record describes
        self._version: list[int] = [-1] * n  # its version after the last accumulation
        handles: list[RemovableHandle] = []
        me = weakref.ref(self)  # the hooks must not keep this record alive
        for i, p in enumerate(self._params):
            if p.requires_grad:
                handles.append(p.register_hook(functools.partial(_before, me, i)))
                handles.append(p.register_post_accumulate_grad_hook(functools.partial(_after, me, i)))
        self._finalizer = weakref.finalize(self, _remove_all, handles)

    def _held(self, i: int) -> frozenset[int]:
        """The record of ``params[i]`` if it still describes its ``.grad``, else nothing."""
        grad: Tensor | None = self._params[i].grad
        if grad is None or grad._version != self._version[i] or not self._describes(i, grad):
            return frozenset()
        return self._paths[i]

    def _describes(self, i: int, grad: Tensor) -> bool:
        """Whether the record of ``params[i]`` was made for this very ``grad`` tensor."""
        ref = self._grad[i]
        return ref is not None and ref() is grad

    def _before(self, i: int, grad: Tensor) -> None:
        self._pending[i] = self._held(i) | self._backward.current

    def _after(self, i: int, param: Tensor) -> None:
        assert param.grad is not None  # called right after accumulation
        self._paths[i], self._grad[i] = self._pending[i], weakref.ref(param.grad)
        self._version[i] = param.grad._version

    def incoming(self, i: int) -> frozenset[int]:
        """During a backward pass, the paths ``params[i]`` will hold after this accumulation."""
        return self._pending[i]

    def held(self) -> frozenset[int]:
        """The paths of every parameter's current ``.grad`` (a step reads these)."""
        out: frozenset[int] = frozenset()
        for i, p in enumerate(self._params):
            if p.grad is not None and self._describes(i, p.grad):
                out |= self._paths[i]
        return out

    def clear(self) -> None:
        """Forget every record (after a step has used the gradients)."""
        self._paths = [frozenset()] * len(self._params)

    def remove(self) -> None:
        """Unregister the hooks (idempotent)."""
        self._finalizer()


def _before(me: weakref.ref, i: int, grad: Tensor) -> None:
    record = me()
    if record is not None:
        record._before(i, grad)


def _after(me: weakref.ref, i: int, param: Tensor) -> None:
    record = me()
    if record is not None:
        record._after(i, param)


def _remove_all(handles: list[RemovableHandle]) -> None:
    for handle in handles:
        handle.remove()


def check_one_path(paths: frozenset[int], path_idx: int | None, where: str) -> None:
    """Raise :class:`MixedPathsError` unless ``paths`` is empty or exactly ``{path_idx}``.

    Args:
        paths: the paths the gradient came from.
        path_idx: the path it is about to be credited to.
        where: what is being done, for the message.
    """
    if not paths or paths == {path_idx}:
        return
    names = ", ".join(str(p) for p in sorted(paths))
    raise MixedPathsError(
        f"{where} for path {path_idx}, but the gradient comes from path(s) {names}: P-Adam and "
        f"P-SAGA credit a step to one path, so the gradients of different paths must not be "
        f"accumulated. To accumulate over micro-batches, draw one path per optimizer step "
        f"(path = loss_fn.sample_path()), pass path_idx=path to every micro-batch's loss and "
        f"call step(path) once; otherwise call zero_grad() between paths"
    )
