"""The warmup's options: what a user decides (:class:`WarmupOptions`) and what only changes speed
(:class:`Strategy`, chosen automatically).

Both are frozen dataclasses validated when they are built, so a bad value fails before any
compute, with an error that names the option and the value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from .._checks import as_bool, as_choice, as_float, as_int, as_int_in

__all__ = [
    "AGG_MODES",
    "Agg",
    "EigenMethod",
    "Engine",
    "HessianMode",
    "InitMode",
    "JacobianMode",
    "Strategy",
    "ThetaBatching",
    "WarmupOptions",
]

Agg = Literal["none", "mean", "max", "med"]
EigenMethod = Literal["power", "arnoldi"]
InitMode = Literal["seeded", "reference", "chain"]
ThetaBatching = Literal["vmap", "loop"]
Engine = Literal["factored", "direct"]
HessianMode = Literal["auto", "block", "full"]
JacobianMode = Literal["auto", "on", "off"]

AGG_MODES: tuple[Agg, ...] = ("none", "mean", "max", "med")


@dataclass(frozen=True, kw_only=True)
class WarmupOptions:
    """How a θ-IS warmup runs: every option a user decides, validated when built.

    | option | default | what it decides |
    |---|---|---|
    | `start_path_idx`, `end_path_idx` | 0, None (= P) | the paths `[start, end)` (seed) |
    | `save_dir` | `"scrapl_warmup"` | files and resume; None: in memory only (seed) |
    | `n_iter` | 20 | products per operator, at most (seed) |
    | `agg` | `"none"` | one operator for all params, or one per tensor: `"mean"`/`"max"`/`"med"` (seed) |
    | `force_multibatch` | False | recompute the forward at every product (seed) |
    | `method` | `"power"` | the estimator: power iteration or `"arnoldi"` |
    | `tol` | 1e-4 | when an operator stops (see `method`) |
    | `init`, `seed` | `"seeded"`, 0 | start vectors: `"seeded"` from `seed`, `"reference"`, `"chain"` |
    | `theta_batching` | None (`"loop"`) | `"vmap"`: all θ in one encoder backward; `"loop"`: one per θ |
    | `distributed` | None (auto) | shard the paths over `torch.distributed` ranks |
    | `strict_determinism` | False | a non-deterministic encoder/synth is an error, not a warning |
    | `progress` | True | a progress bar over paths |

    Why each option beyond the seed's exists (measurements in ``docs/dev/notes.md``):

    * ``method="arnoldi"``: power iteration's stopping rule fires early when the two largest
      eigenvalues are close; on the demo's operators one value read 42.3 after up to 150 power
      steps where Arnoldi reached 49.22 in 13 products. ``"power"`` is the reference's estimator.
    * ``tol``: power iteration stops when the relative change of λ is below it (the reference's
      1e-4); Arnoldi when the relative residual ``‖Ax − λx‖ / |λ|`` is. It matters: on the demo's
      encoder (32 examples, seed 1) power iteration at 1e-3 stopped at 1.10 on a value that 136
      steps settle at 45.0.
    * ``init``: ``"seeded"`` draws each path's start from ``(seed, path, group)``, so sharded and
      resumed runs equal one run; ``"reference"`` replays scrapl-loss 0.1.0's global-RNG draws
      (its values to float32 rounding, tested); ``"chain"`` starts each path from the previous
      path's eigenvectors: 239 instead of 370 products on the demo, but the values then depend on
      the order the paths are computed in, and a loose ``tol`` can stop on a subdominant
      eigenvector.
    * ``theta_batching``: ``"vmap"`` computes the products of all nθ operators with one batched
      backward through the encoder (nθ products in memory at once): 1.18x faster than ``"loop"``
      at nθ = 14 on the seed example's encoder (CPU), level at nθ = 2. It needs an encoder whose
      backward torch can batch, which the demo's CNN encoder is not (it fails there), so None
      picks ``"loop"``. The products through the synth and the path loss always loop: the JTFS
      has no batching rules.
    * ``distributed``: N ranks compute 1/N of the paths each and end with the probabilities of
      one process (tested with two ranks).
    * ``strict_determinism``: dropout or noise in the encoder/synth changes every product; the
      seed only warns.
    * ``progress``: off for logs written to a file, where the bar's redraws pile up.

    Raises:
        TypeError / ValueError: an option of the wrong type or out of range, naming it.
    """

    start_path_idx: int = 0
    end_path_idx: int | None = None
    save_dir: str | os.PathLike | None = "scrapl_warmup"
    n_iter: int = 20
    agg: Agg = "none"
    force_multibatch: bool = False
    method: EigenMethod = "power"
    tol: float = 1e-4
    init: InitMode = "seeded"
    seed: int = 0
    theta_batching: ThetaBatching | None = None
    distributed: bool | None = None
    strict_determinism: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        as_int_in("start_path_idx", self.start_path_idx, 0)
        if self.end_path_idx is not None:
            as_int_in("end_path_idx", self.end_path_idx, 1)
        if self.save_dir is not None and not isinstance(self.save_dir, (str, os.PathLike)):
            raise TypeError(f"save_dir must be a path or None, got {type(self.save_dir).__name__}")
        as_int_in("n_iter", self.n_iter, 1)
        as_choice("agg", self.agg, AGG_MODES)
        as_bool("force_multibatch", self.force_multibatch)
        as_choice("method", self.method, ("power", "arnoldi"))
        as_float("tol", self.tol, low=0.0)
        as_choice("init", self.init, ("seeded", "reference", "chain"))
        as_int("seed", self.seed)
        as_choice("theta_batching", self.theta_batching, (None, "vmap", "loop"))
        as_choice("distributed", self.distributed, (None, False, True))
        as_bool("strict_determinism", self.strict_determinism)
        as_bool("progress", self.progress)

    def path_range(self, n_paths: int) -> tuple[int, int]:
        """``(start, end)`` of the paths to compute, checked against ``n_paths``.

        Raises:
            ValueError: not ``0 <= start < end <= n_paths``.
        """
        end = n_paths if self.end_path_idx is None else self.end_path_idx
        if not self.start_path_idx < end <= n_paths:
            raise ValueError(
                f"need 0 <= start_path_idx < end_path_idx <= n_paths={n_paths}, got "
                f"start_path_idx={self.start_path_idx}, end_path_idx={self.end_path_idx}"
            )
        return self.start_path_idx, end


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """How the curvature products are computed: choices that change speed, not values.

    The defaults choose automatically; the warmup exposes none of them. Benchmarks and tests pass
    one to :func:`~scrapl.warmup.run_warmup` to time or check a particular strategy.

    Attributes:
        engine: ``None`` (auto: ``"factored"`` unless the weights reach the loss other than
            through θ, then ``"direct"``), ``"factored"`` (the θ-space Hessian, then products
            that differentiate the encoder only: 971 against 4,722 ms per path on the paper's
            configuration) or ``"direct"`` (the reference's double backward at every product).
        hessian: the θ-space Hessian of the factored engine: ``"auto"`` (block-diagonal unless a
            probe finds the examples coupled), ``"block"`` or ``"full"``.
        jacobian: build the encoder's Jacobian once per run so that a product differentiates the
            encoder once instead of twice: ``"auto"`` (when it pays and fits in 256 MiB), ``"on"``,
            ``"off"``.
    """

    engine: Engine | None = None
    hessian: HessianMode = "auto"
    jacobian: JacobianMode = "auto"

    def __post_init__(self) -> None:
        as_choice("engine", self.engine, (None, "factored", "direct"))
        as_choice("hessian", self.hessian, ("auto", "block", "full"))
        as_choice("jacobian", self.jacobian, ("auto", "on", "off"))
