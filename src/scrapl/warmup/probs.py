"""θ-IS path probabilities: the state updated by the warmup, and probability-vector checks.

Paper Eq. (10) with the ``min_prob_frac`` floor. With ``v[u, p] = max(C_{u,p}, ε)`` and all P paths
of θ index u updated::

    π_u(p)  = (1 − mpf) · v[u, p] / Σ_q v[u, q]
    probs(p) = (1/nθ) Σ_u ( π_u(p) + mpf/P )

While only ``m`` of the P paths of θ index u have a value (2 ≤ m < P), the row is a mixture of the
updated paths (total mass ``m/P``, proportional to their values) and the previous row on the other
paths (mass ``1 − m/P``, renormalised); with ``m < 2`` nothing changes. This is scrapl-loss 0.1.0's
``update_prob`` step for step, in log space, with two fixes: the rows start at
``log((1 − mpf)/P)`` and are checked to sum to ``1 − mpf`` (the reference checks 1 and so fails for
``min_prob_frac`` above ~1e-5, its quirk Q2), and integer values are accepted (Q22).

The state is plain tensors, ints, floats and lists (:meth:`ThetaISState.state_dict`), so it loads
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .._checks import as_choice, as_float, as_int_in
from ..sampling import check_probs
from .options import AGG_MODES

__all__ = ["AGG_MODES", "ThetaISState", "aggregate_vals", "check_agg", "check_probs", "closed_form_probs"]


def closed_form_probs(vals: Tensor, *, min_prob_frac: float = 0.0, eps: float = 1e-12) -> Tensor:
    """Eq. (10) for a complete table of curvature values (every path of every θ index).

    Args:
        vals: ``(P, nθ)`` non-negative curvature values ``C_{u,p}``.
        min_prob_frac: the floor mpf in ``[0, 1)``.
        eps: values are clamped to at least ``eps``.

    Returns:
        ``(P,)`` float64 probabilities.

    Example:
        >>> closed_form_probs(torch.tensor([[1.0], [3.0]])).tolist()
        [0.25, 0.75]
    """
    v = vals.double().clamp_min(eps)  # (P, nθ)
    pi = (1.0 - min_prob_frac) * v / v.sum(dim=0, keepdim=True)  # (P, nθ), columns sum to 1 − mpf
    return (pi + min_prob_frac / vals.shape[0]).mean(dim=1)


def check_agg(agg: Any) -> str:
    """Return ``agg`` if it is one of :data:`AGG_MODES`, else raise ``ValueError``."""
    return str(as_choice("agg", agg, AGG_MODES))


def aggregate_vals(vals: Tensor, agg: str) -> Tensor:
    """Reduce the per-group values of one path to one value per θ index.

    Args:
        vals: ``(n_groups, nθ)``; one row per parameter group (one group when ``agg="none"``).
        agg: ``"none"`` (exactly one row), ``"mean"``, ``"max"`` or ``"med"`` (``torch.median``:
            the lower of the two middle values for an even number of groups).

    Returns:
        ``(nθ,)``.

    Raises:
        ValueError: unknown ``agg``, or ``agg="none"`` with several rows.
    """
    check_agg(agg)
    if vals.ndim != 2:
        raise ValueError(f"vals must be (n_groups, n_theta), got shape {tuple(vals.shape)}")
    if agg == "none":
        if vals.shape[0] != 1:
            raise ValueError(f"agg='none' needs one row of values, got {vals.shape[0]}")
        return vals[0]
    if agg == "mean":
        return vals.mean(dim=0)
    if agg == "max":
        return vals.max(dim=0).values
    return vals.median(dim=0).values


def _log_normalise(row: Tensor) -> Tensor:
    return row - torch.logsumexp(row, dim=0)


class ThetaISState:
    """Per-θ curvature values and path probabilities, updated one value at a time.

    Args:
        n_paths: P ≥ 1.
        n_theta: nθ ≥ 1.
        min_prob_frac: mpf in ``[0, 1)``: every path keeps at least ``mpf/P``. Default 0.
        eps: values are clamped to at least ``eps`` before taking logs. Default 1e-12.

    Attributes:
        log_vals: ``(nθ, P)`` float64, ``log max(C_{u,p}, ε)`` (log ε where not updated).
        log_probs: ``(nθ, P)`` float64, ``log π_u(p)``; each row sums to ``1 − mpf``.
        updated: per θ index, the set of updated paths.
        probs: ``(P,)`` float64, ``(1/nθ) Σ_u (π_u + mpf/P)``.

    Example:
        >>> s = ThetaISState(n_paths=7, n_theta=1)
        >>> s.update(0, 2.0); s.update(3, 1.0)
        >>> round(s.probs[0].item(), 6), round(s.probs[3].item(), 6), round(s.probs[1].item(), 6)
        (0.190476, 0.095238, 0.142857)
    """

    def __init__(self, *, n_paths: int, n_theta: int, min_prob_frac: float = 0.0, eps: float = 1e-12) -> None:
        self.n_paths = as_int_in("n_paths", n_paths, 1)
        self.n_theta = as_int_in("n_theta", n_theta, 1)
        self.min_prob_frac = as_float("min_prob_frac", min_prob_frac, low=0.0, high=1.0, high_open=True)
        self.eps = as_float("eps", eps, low=0.0, low_open=True)
        self.min_prob = self.min_prob_frac / n_paths
        self.reset()

    @property
    def log_eps(self) -> Tensor:
        return torch.tensor(self.eps, dtype=torch.float64).log()

    @property
    def log_1m_min_prob_frac(self) -> Tensor:
        return torch.tensor(1.0 - self.min_prob_frac, dtype=torch.float64).log()

    def reset(self) -> None:
        """Forget every value: uniform probabilities."""
        P, nt = self.n_paths, self.n_theta
        self.log_vals = torch.full((nt, P), math.log(self.eps), dtype=torch.float64)
        log_unif = torch.tensor(1.0 / P, dtype=torch.float64).log()
        self.log_probs = (log_unif + self.log_1m_min_prob_frac).expand(nt, P).clone()
        self.updated: list[set[int]] = [set() for _ in range(nt)]
        self.probs = torch.full((P,), 1.0 / P, dtype=torch.float64)

    def update(self, path_idx: int, val: float | int | Tensor, theta_idx: int = 0) -> None:
        """Record ``C_{theta_idx, path_idx} = val`` and recompute the probabilities.

        Args:
            path_idx: p in ``[0, P)``.
            val: the non-negative curvature value (Python number or 1-element tensor).
            theta_idx: u in ``[0, nθ)``. Default 0.

        Raises:
            TypeError: ``val`` is not a real number or 1-element tensor; indices not ints.
            ValueError: an index out of range, or ``val`` negative or not finite.
        """
        p = as_int_in("path_idx", path_idx, 0, self.n_paths)
        u = as_int_in("theta_idx", theta_idx, 0, self.n_theta)
        v = self._value(val)
        self.updated[u].add(p)
        m = len(self.updated[u])
        self.log_vals[u, p] = v.clamp(min=self.eps).log()
        if m < 2:
            return
        if m == self.n_paths:
            row = _log_normalise(self.log_vals[u])
        else:
            upd = sorted(self.updated[u])
            prior = self.log_probs[u].clone()
            prior[upd] = self.log_eps
            frac = torch.tensor(m / self.n_paths, dtype=torch.float64)
            mixed = _log_normalise(prior) + (1.0 - frac).log()
            mixed[upd] = (_log_normalise(self.log_vals[u]) + frac.log())[upd]
            row = _log_normalise(mixed)
        self.log_probs[u] = row + self.log_1m_min_prob_frac
        self._recompute()

    def update_path(self, path_idx: int, vals: Tensor | Sequence[float]) -> None:
        """Record the ``nθ`` values of one path (θ index 0 first)."""
        vals = torch.as_tensor(vals).reshape(-1)
        if vals.numel() != self.n_theta:
            raise ValueError(f"vals must hold n_theta={self.n_theta} values, got {vals.numel()}")
        for u in range(self.n_theta):
            self.update(path_idx, vals[u], u)

    def _recompute(self) -> None:
        probs = (self.log_probs.exp() + self.min_prob).mean(dim=0)  # (nθ, P) -> (P,)
        check_probs(probs, n_paths=self.n_paths, atol=1e-6, name="theta-IS probs")
        self.probs = probs

    @staticmethod
    def _value(val: Any) -> Tensor:
        if isinstance(val, Tensor):
            if val.numel() != 1:
                raise TypeError(f"val must be a number or a 1-element tensor, got shape {tuple(val.shape)}")
            v = val.detach().reshape(()).cpu().double()
        elif isinstance(val, (int, float)) and not isinstance(val, bool):
            v = torch.tensor(float(val), dtype=torch.float64)
        else:
            raise TypeError(f"val must be a real number or tensor, got {type(val).__name__}")
        if not torch.isfinite(v) or v < 0:
            raise ValueError(f"val must be finite and non-negative, got {v.item()!r}")
        return v

    def state_dict(self) -> dict[str, Any]:
        """Plain, ``weights_only``-loadable state: tensors, numbers and lists."""
        return {
            "n_paths": self.n_paths,
            "n_theta": self.n_theta,
            "min_prob_frac": self.min_prob_frac,
            "eps": self.eps,
            "log_vals": self.log_vals.clone(),
            "log_probs": self.log_probs.clone(),
            "updated": [sorted(s) for s in self.updated],
            "probs": self.probs.clone(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output (validated against this state's configuration)."""
        for key in ("n_paths", "n_theta"):
            if state.get(key) != getattr(self, key):
                raise ValueError(f"state has {key}={state.get(key)!r}, expected {getattr(self, key)!r}")
        shape = (self.n_theta, self.n_paths)
        for key in ("log_vals", "log_probs"):
            if tuple(state[key].shape) != shape:
                raise ValueError(f"state[{key!r}] must have shape {shape}, got {tuple(state[key].shape)}")
        check_probs(state["probs"], n_paths=self.n_paths, name="state['probs']")
        self.min_prob_frac = float(state["min_prob_frac"])
        self.min_prob = self.min_prob_frac / self.n_paths
        self.eps = float(state["eps"])
        self.log_vals = state["log_vals"].double().clone()
        self.log_probs = state["log_probs"].double().clone()
        self.updated = [set(int(p) for p in s) for s in state["updated"]]
        self.probs = state["probs"].double().clone()
