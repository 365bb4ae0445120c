"""Path-wise Adam (P-Adam) and path-wise SAGA (P-SAGA) as pure update rules.

Each function takes the state of one path of one parameter tensor and returns the new state. No
argument is modified in place, so the same rules serve the gradient hooks, the explicit optimizer
API and any test that re-derives them. Reference: Mitcheltree et al., "SCRAPL: Scattering Transform
with Random Paths for Machine Learning", ICLR 2026, Section 3.3 (Eq. 6-9, Algorithm 1).

Notation: ``P`` paths, ``k`` the training-step counter (steps taken so far, the current one
included), ``tau_p`` the step of the last visit of path ``p`` (0 if never visited), ``g`` the
gradient of the sampled path's loss.

Two conventions are offered (``compat``):

* ``"paper"``: the equations as written. P-Adam uses ``t = k``, so with ``P = 1`` it is exactly
  ``torch.optim.Adam``; P-SAGA averages the memory over the ``n_seen`` distinct visited paths, the
  current one included.
* ``"reference"``: step for step what scrapl-loss 0.1.0 computes. Its P-Adam clock runs one step
  ahead (``t = k + 1``, so the first step uses ``t = 2``) and its P-SAGA divides the memory sum by
  ``max(1, n_seen - 1)``.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from torch import Tensor

__all__ = [
    "COMPAT_MODES",
    "Compat",
    "PAdamResult",
    "PSagaResult",
    "adam_time",
    "p_adam_update",
    "p_saga_update",
    "saga_denominator",
]

Compat = Literal["paper", "reference"]
COMPAT_MODES: tuple[str, ...] = ("paper", "reference")


class PAdamResult(NamedTuple):
    """Output of :func:`p_adam_update`: the normalised gradient and the path's new moments."""

    update: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor


class PSagaResult(NamedTuple):
    """Output of :func:`p_saga_update`: the variance-reduced gradient and the new memory state."""

    update: Tensor
    memory: Tensor
    memory_sum: Tensor


def _check_compat(compat: str) -> None:
    if compat not in COMPAT_MODES:
        raise ValueError(f"compat must be one of {COMPAT_MODES}, got {compat!r}")


def adam_time(k: int, compat: Compat) -> int:
    """Map the training-step counter ``k`` to the P-Adam clock ``t``.

    Args:
        k: Training steps taken so far, the current one included.
        compat: ``"paper"`` gives ``t = k``; ``"reference"`` gives ``t = k + 1`` (scrapl-loss 0.1.0
            reads its counter after the forward pass has already incremented it, then adds one).

    Returns:
        The step ``t`` that enters Eq. 6-7.

    Example:
        >>> adam_time(1, "paper"), adam_time(1, "reference")
        (1, 2)
    """
    _check_compat(compat)
    return k if compat == "paper" else k + 1


def saga_denominator(n_seen: int, compat: Compat) -> int:
    """Number of paths the P-SAGA memory sum is divided by.

    Args:
        n_seen: Distinct paths visited so far, the current one included.
        compat: ``"paper"`` gives ``n_seen`` (the mean over visited paths, Eq. 9);
            ``"reference"`` gives ``max(1, n_seen - 1)`` (scrapl-loss 0.1.0, which over-weights
            the mean on revisits).

    Returns:
        The denominator ``D`` of ``S / D`` in :func:`p_saga_update`.

    Example:
        >>> saga_denominator(3, "paper"), saga_denominator(3, "reference")
        (3, 2)
    """
    _check_compat(compat)
    return n_seen if compat == "paper" else max(1, n_seen - 1)


def p_adam_update(
    grad: Tensor,
    exp_avg: Tensor | None,
    exp_avg_sq: Tensor | None,
    *,
    step: int,
    last_step: int,
    n_paths: int,
    b1: float,
    b2: float,
    eps: float,
) -> PAdamResult:
    """Apply one P-Adam update to the gradient of one path (paper Eq. 6-8).

    The moments of path ``p`` decay by the time elapsed since its last visit, measured in sweeps
    over all paths, and are bias-corrected with the global clock::

        Δ   = (t − τ_p) / P
        m_p ← β1^Δ · m_p + (1 − β1^Δ) · g                       (6)
        v_p ← β2^Δ · v_p + (1 − β2^Δ) · g²
        m̂  = m_p / (1 − β1^(t/P)),   v̂ = v_p / (1 − β2^(t/P))   (7)
        ĝ   = m̂ / (sqrt(v̂) + ε)                                  (8)

    The decays telescope, so the weights in ``m_p`` add up to ``1 − β1^(t/P)`` and the bias
    correction is exact: a constant gradient gives ``ĝ = g / (|g| + ε)`` whatever the visit pattern.
    On the first visit (``τ_p = 0``) ``ĝ = g / (|g| + ε)``, i.e. about ``sign(g)``. With ``P = 1``
    and ``t`` counting from 1 this is ``torch.optim.Adam`` without the learning rate.

    Args:
        grad: Gradient ``g`` of the sampled path's loss.
        exp_avg: First moment ``m_p`` of this path, or None if never visited (zeros).
        exp_avg_sq: Second moment ``v_p`` of this path, or None if never visited (zeros).
        step: Current clock ``t`` (see :func:`adam_time`), at least 1.
        last_step: Clock ``τ_p`` of the path's last visit, 0 if never visited, at most ``step``.
        n_paths: Number of paths ``P``.
        b1: Decay ``β1`` of the first moment, in [0, 1).
        b2: Decay ``β2`` of the second moment, in [0, 1).
        eps: ``ε``, added outside the square root after bias correction.

    Returns:
        ``(update, exp_avg, exp_avg_sq)``: ``ĝ`` and the path's new moments, all new tensors.

    Raises:
        ValueError: If ``step < 1``, ``last_step`` is outside ``[0, step]`` or ``n_paths < 1``.

    Shape:
        All tensors have the parameter's shape ``(*param_shape)``.

    Example:
        >>> import torch
        >>> g = torch.tensor([2.0, -3.0])
        >>> out = p_adam_update(g, None, None, step=1, last_step=0, n_paths=4,
        ...                     b1=0.9, b2=0.999, eps=0.0)
        >>> out.update
        tensor([ 1., -1.])
    """
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step!r}")
    if not 0 <= last_step <= step:
        raise ValueError(f"last_step must be in [0, step={step}], got {last_step!r}")
    if n_paths < 1:
        raise ValueError(f"n_paths must be >= 1, got {n_paths!r}")
    delta = (step - last_step) / n_paths
    decay1, decay2 = b1**delta, b2**delta
    if exp_avg is None:
        m = grad * (1.0 - decay1)
    else:
        m = exp_avg.lerp(grad, 1.0 - decay1)  # β1^Δ m + (1 − β1^Δ) g
    if exp_avg_sq is None:
        v = grad * grad * (1.0 - decay2)
    else:
        v = (exp_avg_sq * decay2).addcmul_(grad, grad, value=1.0 - decay2)
    bias1 = 1.0 - b1 ** (step / n_paths)
    bias2 = 1.0 - b2 ** (step / n_paths)
    denom = v.sqrt().div_(math.sqrt(bias2)).add_(eps)  # sqrt(v̂) + ε
    update = (m / denom).div_(bias1)  # m̂ / (sqrt(v̂) + ε)
    return PAdamResult(update, m, v)


def p_saga_update(
    update: Tensor,
    memory: Tensor | None,
    memory_sum: Tensor | None,
    *,
    denominator: int,
) -> PSagaResult:
    """Apply one P-SAGA update to the (P-Adam-normalised) gradient of one path (paper Eq. 9).

    The memory ``M_q`` holds the last update ``ĝ_q`` seen for each path ``q``; ``S`` is their
    running sum, so one step costs O(numel) whatever the number of paths::

        out  = ĝ − M_p + S / D
        S   ← S − M_p + ĝ
        M_p ← ĝ

    Args:
        update: The path's update ``ĝ`` (P-Adam's output, or the scaled gradient without P-Adam).
        memory: Stored ``M_p`` for this path, or None if never stored (zeros).
        memory_sum: Running sum ``S`` of all stored rows, or None if none is stored (zeros).
        denominator: ``D`` (see :func:`saga_denominator`), at least 1.

    Returns:
        ``(update, memory, memory_sum)``: ``out``, the new ``M_p`` (``update`` itself, not a copy)
        and the new ``S`` (a new tensor).

    Raises:
        ValueError: If ``denominator < 1``.

    Shape:
        All tensors have the parameter's shape ``(*param_shape)``.

    Example:
        >>> import torch
        >>> out = p_saga_update(torch.tensor([1.0]), torch.tensor([3.0]), torch.tensor([5.0]),
        ...                     denominator=2)
        >>> out.update, out.memory_sum
        (tensor([0.5000]), tensor([3.]))
    """
    if denominator < 1:
        raise ValueError(f"denominator must be >= 1, got {denominator!r}")
    diff = update.clone() if memory is None else update - memory  # ĝ − M_p
    new_sum = diff.clone() if memory_sum is None else memory_sum + diff  # S − M_p + ĝ
    out = diff if memory_sum is None else diff.add_(memory_sum, alpha=1.0 / denominator)
    return PSagaResult(out, update, new_sum)
