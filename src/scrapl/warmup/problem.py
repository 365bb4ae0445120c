"""What a warmup differentiates: the path loss, encoder, synth, data and weights, validated once.

Notation (paper §3.4): for each batch, ``θ = theta_fn(**theta_fn_kwargs)`` of shape ``(B, nθ)``,
``x̂ = synth_fn(θ, **synth_fn_kwargs)`` and ``L_p = path_loss(x̂, x, p)`` with ``x`` the batch's
``"x"`` entry (the real signal, which is also the encoder's input in the seed's examples).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from .._checks import as_int_in, check_params

__all__ = ["TARGET_KEY", "PathLoss", "WarmupBatch", "WarmupProblem"]

TARGET_KEY = "x"
"""The key of the real signal in every ``theta_fn_kwargs`` dict (the seed's contract)."""

PathLoss = Callable[[Tensor, Tensor, int], Tensor]
"""``path_loss(x_hat, x, path_idx) -> scalar``: the loss of one scattering path."""


@dataclass(frozen=True)
class WarmupBatch:
    """One batch of warmup data.

    Attributes:
        theta_fn_kwargs: keyword arguments of ``theta_fn``.
        target: the real signal ``x`` that ``x̂`` is compared with.
        synth_fn_kwargs: keyword arguments of ``synth_fn`` (after θ).
    """

    theta_fn_kwargs: Mapping[str, Any]
    target: Tensor
    synth_fn_kwargs: Mapping[str, Any] = field(default_factory=dict)


def _check_params(params: Any) -> tuple[Tensor, ...]:
    """Distinct floating-point tensors that require grad and have no gradient yet."""
    checked = check_params(params, leaf=False)
    for i, p in enumerate(checked):
        if not p.requires_grad:
            raise ValueError(
                f"params[{i}] does not require grad: the warmup differentiates with respect to it"
            )
        if p.grad is not None:
            raise ValueError(
                f"params[{i}] already has a gradient (p.grad is not None); params "
                f"must have no prior gradients: use zero_grad(set_to_none=True)"
            )
    return tuple(checked)


def _check_kwargs_list(name: str, value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of dicts (one per batch), got {type(value).__name__}")
    for i, kw in enumerate(value):
        if not isinstance(kw, Mapping):
            raise TypeError(f"{name}[{i}] must be a dict, got {type(kw).__name__}")
    return list(value)


def _batches(theta_fn_kwargs: Any, synth_fn_kwargs: Any) -> tuple[WarmupBatch, ...]:
    theta_kw = _check_kwargs_list("theta_fn_kwargs", theta_fn_kwargs)
    if not theta_kw:
        raise ValueError("theta_fn_kwargs must not be empty (one dict per batch)")
    if synth_fn_kwargs is None:
        synth_kw: list[Mapping[str, Any]] = [{} for _ in theta_kw]
    else:
        synth_kw = _check_kwargs_list("synth_fn_kwargs", synth_fn_kwargs)
        if len(synth_kw) != len(theta_kw):
            raise ValueError(
                f"synth_fn_kwargs must have one dict per batch: len(synth_fn_kwargs)={len(synth_kw)} "
                f"!= len(theta_fn_kwargs)={len(theta_kw)}"
            )
    for i, kw in enumerate(theta_kw):
        if TARGET_KEY not in kw:
            raise ValueError(f"theta_fn_kwargs[{i}] must contain the target signal under {TARGET_KEY!r}")
        if not isinstance(kw[TARGET_KEY], Tensor):
            raise TypeError(
                f"theta_fn_kwargs[{i}][{TARGET_KEY!r}] must be a tensor, got {type(kw[TARGET_KEY]).__name__}"
            )
    return tuple(
        WarmupBatch(theta_fn_kwargs=t, synth_fn_kwargs=s, target=t[TARGET_KEY])
        for t, s in zip(theta_kw, synth_kw, strict=True)
    )


@dataclass(frozen=True, eq=False)
class WarmupProblem:
    """The functions, data and weights of a warmup (build it with :meth:`build`).

    Attributes:
        path_loss: ``path_loss(x_hat, x, path_idx) -> scalar``.
        theta_fn: the encoder, ``theta_fn(**theta_fn_kwargs) -> (B, nθ)``.
        synth_fn: the synth, ``synth_fn(θ, **synth_fn_kwargs) -> x̂``.
        batches: the data, one :class:`WarmupBatch` per batch.
        params: the encoder weights ``w`` (no ``.grad``, distinct, requiring grad).
        n_paths: number of paths P.
        n_theta: number of synth parameters nθ.
    """

    path_loss: PathLoss
    theta_fn: Callable[..., Tensor]
    synth_fn: Callable[..., Tensor]
    batches: tuple[WarmupBatch, ...]
    params: tuple[Tensor, ...]
    n_paths: int
    n_theta: int

    @classmethod
    def build(
        cls,
        path_loss: PathLoss,
        theta_fn: Callable[..., Tensor],
        synth_fn: Callable[..., Tensor],
        theta_fn_kwargs: Sequence[Mapping[str, Any]],
        params: Sequence[Tensor],
        *,
        n_paths: int,
        n_theta: int,
        synth_fn_kwargs: Sequence[Mapping[str, Any]] | None = None,
    ) -> WarmupProblem:
        """Check every argument (nothing is computed) and build the problem.

        Raises:
            TypeError / ValueError: naming the offending argument.
        """
        for name, fn in (("path_loss", path_loss), ("theta_fn", theta_fn), ("synth_fn", synth_fn)):
            if not callable(fn):
                raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
        return cls(
            path_loss=path_loss,
            theta_fn=theta_fn,
            synth_fn=synth_fn,
            n_paths=as_int_in("n_paths", n_paths, 1),
            n_theta=as_int_in("n_theta", n_theta, 1),
            params=_check_params(params),
            batches=_batches(theta_fn_kwargs, synth_fn_kwargs),
        )
