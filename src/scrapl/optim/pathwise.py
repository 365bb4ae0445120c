"""P-Adam and P-SAGA over a set of parameter tensors: the explicit, resumable optimizer object.

:class:`PathwiseOptimizer` transforms gradients; it never changes parameters. It is used either
explicitly, between ``backward()`` and a downstream ``SGD.step()``::

    loss = scrapl_loss(model(x), x_target)          # samples one path
    loss.backward()
    scaler.unscale_(sgd)                            # optional: AMP, clipping, DDP averaging ...
    pathwise.step(scrapl_loss.curr_path_idx)        # p.grad <- P-SAGA(P-Adam(grad_mult · p.grad))
    sgd.step()

or through :class:`~scrapl.optim.hooks.PathwiseHooks`, which calls :meth:`process_grad` from tensor
hooks during ``backward()`` (the behaviour of scrapl-loss 0.1.0's ``attach_params``). Both run the
pure rules of :mod:`scrapl.optim.functional`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from ._checks import as_bool, as_float, as_int_in, check_params
from .functional import Compat, adam_time, p_adam_update, p_saga_update, saga_denominator
from .provenance import BackwardPaths, GradPaths, check_one_path
from .state import MemoryReport, PathwiseState

__all__ = ["PathwiseConfig", "PathwiseOptimizer"]

_FORMAT = "scrapl.optim.PathwiseOptimizer/1"
_STRUCTURAL = ("n_paths", "compat", "use_p_adam", "use_p_saga")


@dataclass(frozen=True)
class PathwiseConfig:
    """Validated hyperparameters of :class:`PathwiseOptimizer` (see its docstring)."""

    n_paths: int
    grad_mult: float = 1e8
    use_p_adam: bool = True
    use_p_saga: bool = True
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    compat: Compat = "paper"
    offload: bool = False

    def __post_init__(self) -> None:
        as_int_in("n_paths", self.n_paths, 1)
        grad_mult = as_float("grad_mult", self.grad_mult)
        if grad_mult <= 0.0:
            raise ValueError(f"grad_mult must be > 0, got {self.grad_mult!r}")
        for name in ("b1", "b2"):
            value = getattr(self, name)
            if not 0.0 <= as_float(name, value) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if as_float("eps", self.eps) < 0.0:
            raise ValueError(f"eps must be >= 0, got {self.eps!r}")
        if self.compat not in ("paper", "reference"):
            raise ValueError(f"compat must be 'paper' or 'reference', got {self.compat!r}")
        for name in ("use_p_adam", "use_p_saga", "offload"):
            as_bool(name, getattr(self, name))


class PathwiseOptimizer:
    """Path-wise Adam and SAGA for gradients of a loss that samples one path per step.

    Per parameter tensor and per visited path ``p`` it keeps the P-Adam moments ``m_p, v_p``, the
    clock ``τ_p`` of the last visit and the P-SAGA memory ``M_p``; per tensor, the running sum ``S``
    of the memory rows. One step on path ``p`` with gradient ``g`` (paper Eq. 6-9, Algorithm 1)::

        g  ← grad_mult · g
        ĝ  = P-Adam(g; m_p, v_p, τ_p, t)            (if use_p_adam, else ĝ = g)
        out = ĝ − M_p + S / D                        (if use_p_saga, else out = ĝ)
        M_p ← ĝ,  S ← S − M_p + ĝ

    with ``t = k`` and ``D = n_seen`` (``compat="paper"``), or ``t = k + 1`` and
    ``D = max(1, n_seen − 1)`` (``compat="reference"``, step for step scrapl-loss 0.1.0), where
    ``k`` counts training steps and ``n_seen`` the distinct visited paths, the current one
    included. The per-step cost is O(numel) whatever the number of paths. State is allocated on a
    path's first visit, on the parameters' device and dtype; with ``offload=True`` the per-path
    rows stay in (pinned) host memory and only the running sums, O(numel), stay on the device.

    Use vanilla SGD (no momentum) downstream: it supplies the learning rate. With ``n_paths=1``,
    ``grad_mult=1`` and ``use_p_saga=False`` in paper mode, this followed by ``SGD(lr)`` is exactly
    ``Adam(lr, betas=(b1, b2), eps=eps)``; a ``grad_mult`` of ``c`` corresponds to Adam's
    ``eps / c``.

    Args:
        params: Leaf tensors whose gradients are transformed (distinct, floating point).
        n_paths: Number of paths ``P`` of the loss, at least 1.
        grad_mult: Factor applied to every gradient first (default 1e8: JTFS gradients are tiny,
            and squaring them in float32 would underflow). Must be > 0.
        use_p_adam: Apply P-Adam (default True).
        use_p_saga: Apply P-SAGA to P-Adam's output (default True).
        b1: ``β1`` in [0, 1) (default 0.9).
        b2: ``β2`` in [0, 1) (default 0.999).
        eps: ``ε`` >= 0, added to ``sqrt(v̂)`` (default 1e-8).
        compat: ``"paper"`` (default) or ``"reference"``.
        offload: Keep per-path rows in host memory (default False).
        backward_paths: Where the loss records the paths of each backward pass (a
            :class:`~scrapl.optim.provenance.BackwardPaths`; ``SCRAPLLoss.make_optimizer`` passes
            its own). Given it, :meth:`step` refuses gradients of another path than ``path_idx``,
            or of several paths (:class:`~scrapl.optim.provenance.MixedPathsError`). Default None:
            no check.

    Example:
        >>> import torch
        >>> w = torch.nn.Parameter(torch.zeros(3))
        >>> opt = PathwiseOptimizer([w], n_paths=4, grad_mult=1.0, eps=0.0)
        >>> w.grad = torch.tensor([0.5, -2.0, 3.0])
        >>> opt.step(path_idx=2)           # first visit of a path: the sign of the gradient
        >>> w.grad
        tensor([ 1., -1.,  1.])
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        n_paths: int,
        *,
        grad_mult: float = 1e8,
        use_p_adam: bool = True,
        use_p_saga: bool = True,
        b1: float = 0.9,
        b2: float = 0.999,
        eps: float = 1e-8,
        compat: Compat = "paper",
        offload: bool = False,
        backward_paths: BackwardPaths | None = None,
    ) -> None:
        self.config = PathwiseConfig(
            n_paths=n_paths, grad_mult=grad_mult, use_p_adam=use_p_adam, use_p_saga=use_p_saga,
            b1=b1, b2=b2, eps=eps, compat=compat, offload=offload,
        )  # fmt: skip
        self._params = check_params(params)
        self._state = PathwiseState(self._params, offload=offload)
        self.grad_paths = None if backward_paths is None else GradPaths(self._params, backward_paths)

    @property
    def params(self) -> tuple[Tensor, ...]:
        """The parameter tensors, in the order of ``param_index``."""
        return tuple(self._params)

    @property
    def step_count(self) -> int:
        """Latest training step ``k`` processed (0 before the first)."""
        return self._state.step

    @property
    def visited_paths(self) -> frozenset[int]:
        """Distinct paths processed so far."""
        return frozenset(self._state.visited)

    def __repr__(self) -> str:
        c = self.config
        n = sum(p.numel() for p in self._params)
        return (
            f"PathwiseOptimizer({len(self._params)} tensors, {n} weights, n_paths={c.n_paths}, "
            f"compat={c.compat!r}, use_p_adam={c.use_p_adam}, use_p_saga={c.use_p_saga}, "
            f"grad_mult={c.grad_mult}, offload={c.offload})"
        )

    def process_grad(
        self, param_index: int, grad: Tensor, path_idx: int, t: int, n_seen: int | None = None
    ) -> Tensor:
        """Transform one gradient of parameter ``param_index`` for path ``path_idx`` at step ``t``.

        ``grad`` is not modified; the result is a new tensor unless every transform is off
        (``grad_mult=1``, no P-Adam, no P-SAGA). Calling it twice with the same ``t`` (two
        ``backward`` passes through one forward) leaves the moments unchanged and returns
        ``S / D`` the second time, as the reference does.

        Args:
            param_index: Index of the tensor in :attr:`params`.
            grad: Its gradient for the current path (any strides, e.g. expanded).
            path_idx: Path ``p`` in ``[0, n_paths)``.
            t: Training-step counter ``k``, the current step included (>= 1 in paper mode, >= 0
                in reference mode); P-Adam's clock is ``k`` (paper) or ``k + 1`` (reference).
            n_seen: Distinct visited paths, the current one included, in ``[1, n_paths]``. None
                (default) counts the paths this optimizer has processed. Reference mode passes
                the loss's ``len(path_counts)``, as scrapl-loss 0.1.0 does.

        Returns:
            The transformed gradient, shaped like ``grad``.

        Raises:
            TypeError, ValueError: For an invalid argument, or a ``t`` earlier than the path's
                last step (a clock that went backwards: reset the optimizer instead).

        Shape:
            ``grad``: ``params[param_index].shape``; the output has the same shape, on
            ``grad``'s device and in its dtype.
        """
        c = self.config
        i = as_int_in("param_index", param_index, 0, len(self._params))
        grad = self._check_grad(i, grad)
        path = as_int_in("path_idx", path_idx, 0, c.n_paths)
        k = as_int_in("t", t, 1 if c.compat == "paper" else 0)
        if n_seen is not None:
            n_seen = as_int_in("n_seen", n_seen, 1, c.n_paths + 1)
        clock = adam_time(k, c.compat)
        last = self._state.last_step(i, path)
        if c.use_p_adam and clock < last:
            raise ValueError(
                f"t={t!r} is earlier than the last step of path {path} ({last}, compat "
                f"{c.compat!r}); the step counter went backwards: call reset() first"
            )
        self._state.visited.add(path)
        self._state.step = max(self._state.step, k)
        if n_seen is None:
            n_seen = len(self._state.visited)
        with torch.no_grad():
            return self._update(i, grad, path, clock, n_seen)

    def _check_grad(self, i: int, grad: object) -> Tensor:
        if not isinstance(grad, Tensor):
            raise TypeError(f"grad must be a torch.Tensor, got {type(grad).__name__}")
        if grad.layout != torch.strided:
            raise TypeError(f"grad must be a dense (strided) tensor, got layout {grad.layout}")
        shape = self._params[i].shape
        if grad.shape != shape:
            raise ValueError(f"grad has shape {tuple(grad.shape)}, expected params[{i}]'s {tuple(shape)}")
        return grad

    def _update(self, i: int, grad: Tensor, path: int, clock: int, n_seen: int) -> Tensor:
        c = self.config
        g = grad * c.grad_mult if c.grad_mult != 1.0 else grad
        if not (c.use_p_adam or c.use_p_saga):
            return g
        row = self._state.get_row(i, path)
        new_row: dict[str, Tensor] = {}
        if c.use_p_adam:
            adam = p_adam_update(
                g, row.get("exp_avg"), row.get("exp_avg_sq"),
                step=clock, last_step=self._state.last_step(i, path), n_paths=c.n_paths,
                b1=c.b1, b2=c.b2, eps=c.eps,
            )  # fmt: skip
            update = adam.update
            new_row.update(exp_avg=adam.exp_avg, exp_avg_sq=adam.exp_avg_sq)
        else:
            update = g.clone() if g is grad else g  # the memory must not alias the caller's grad
        if c.use_p_saga:
            saga = p_saga_update(
                update, row.get("memory"), self._state.get_sum(i),
                denominator=saga_denominator(n_seen, c.compat),
            )  # fmt: skip
            new_row["memory"] = saga.memory
            self._state.put_sum(i, saga.memory_sum)
            update = saga.update
        last = clock if c.use_p_adam else 0
        self._state.put_row(i, path, last_step=last, tensors=new_row)
        return update

    @torch.no_grad()
    def step(self, path_idx: int, *, n_seen: int | None = None) -> None:
        """Transform ``p.grad`` of every parameter in place, as one training step on ``path_idx``.

        Call it after ``backward()`` (and after ``GradScaler.unscale_``, clipping or DDP's
        averaging, which it then sees) and before the downstream ``SGD.step()``. The step counter
        advances by one; parameters whose ``grad`` is None are skipped. With AMP, skip this call
        on the steps where ``GradScaler`` skips ``SGD.step()`` (non-finite gradients), or the
        infinities enter the moments.

        Args:
            path_idx: The path the gradients were computed for, in ``[0, n_paths)``.
            n_seen: As in :meth:`process_grad`; None (default) counts this optimizer's paths.

        Raises:
            MixedPathsError: (with ``backward_paths``) the gradients come from another path than
                ``path_idx``, or from several (accumulated over micro-batches that drew different
                paths). Nothing is changed then.
        """
        path = as_int_in("path_idx", path_idx, 0, self.config.n_paths)
        if self.grad_paths is not None:
            check_one_path(self.grad_paths.held(), path, f"step(path_idx={path}) was called")
        k = self._state.step + 1
        for i, p in enumerate(self._params):
            if p.grad is not None:
                p.grad.copy_(self.process_grad(i, p.grad, path, k, n_seen))
        self._state.visited.add(path)
        self._state.step = k
        if self.grad_paths is not None:
            self.grad_paths.clear()

    def reset(self) -> None:
        """Forget all state: moments, memories, visited paths and the step counter."""
        self._state.clear()

    def memory_bytes(self) -> MemoryReport:
        """Bytes of state on the parameters' devices and offloaded to host memory."""
        return self._state.memory()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: hyperparameters, step, visited paths, moments, memories.

        Made of plain dicts, lists, ints, floats, bools, strings and tensors, so it loads with
        ``torch.load(weights_only=True)``. As in ``torch.optim``, tensors are shared with the live
        state: save or deep-copy it before the next step.
        """
        return {"format": _FORMAT, "hyperparameters": asdict(self.config), **self._state.to_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (copied, moved to the parameters' devices and dtypes).

        Hyperparameters that shape the state (``n_paths``, ``compat``, ``use_p_adam``,
        ``use_p_saga``) and the parameter shapes must match; ``grad_mult``, ``b1``, ``b2``,
        ``eps`` and ``offload`` are this object's own, so a resumed run may change them.

        Raises:
            TypeError, ValueError: If the state does not fit this optimizer.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        if state_dict.get("format") != _FORMAT:
            raise ValueError(f"state_dict['format'] must be {_FORMAT!r}, got {state_dict.get('format')!r}")
        saved = state_dict.get("hyperparameters", {})
        for key in _STRUCTURAL:
            if saved.get(key) != getattr(self.config, key):
                raise ValueError(
                    f"state_dict has {key}={saved.get(key)!r}, but this optimizer has "
                    f"{key}={getattr(self.config, key)!r}"
                )
        bad = [p for p in state_dict.get("visited", []) if not 0 <= p < self.config.n_paths]
        if bad:
            raise ValueError(f"state_dict['visited'] has paths outside [0, n_paths): {bad!r}")
        self._state.load_dict(state_dict)
