"""The distance between two signals on one scattering path (the value SCRAPL returns)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["path_distance"]


def path_distance(S_x: Tensor, S_target: Tensor, *, p: float = 2.0, log1p_eps: float | None = None) -> Tensor:
    """Return the mean over the batch of the ``p``-norm of the coefficient difference on one path.

    ``d_b = ( sum_{nu, tau} | rho(S_target[b]) - rho(S_x[b]) |^p )^(1/p)``, ``loss = mean_b d_b``,
    with ``rho(S) = log(1 + S / log1p_eps)`` when ``log1p_eps`` is given and ``rho(S) = S`` otherwise
    (scrapl-loss 0.1.0's ``calc_dist``; the batch axis already folds channels in).

    Args:
        S_x: path coefficients of the signal. Shape ``(B, n_freq, n_time)``.
        S_target: path coefficients of the target, same shape.
        p: order of the norm (2: Euclidean).
        log1p_eps: scale of the log compression, or None for none.

    Returns:
        Scalar tensor.

    Example:
        >>> S = torch.ones(2, 3, 4)
        >>> path_distance(S, 2 * S).item()
        3.4641...
    """
    if log1p_eps is not None:
        S_x = torch.log1p(S_x / log1p_eps)
        S_target = torch.log1p(S_target / log1p_eps)
    diff = S_target - S_x
    return torch.linalg.vector_norm(diff, ord=p, dim=(-2, -1)).mean()
