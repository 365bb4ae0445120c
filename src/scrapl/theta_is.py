"""θ-importance sampling on :class:`~scrapl.SCRAPLLoss`: the seed's warmup and probability API.

A mixin that gives the loss ``warmup_lc_hvp``, ``check_is_deterministic``, ``update_prob``,
``load_probs`` and ``load_probs_from_warmup_dir``. The work is done by :mod:`scrapl.warmup`
(engine-independent: it only sees this loss's one-path distance); this file holds the glue: the
probability state, which lives in a :class:`~scrapl.warmup.ThetaISState` and is copied into the
sampler whenever it changes, and the log lines of scrapl-loss 0.1.0.

Where this departs from scrapl-loss 0.1.0 (each deliberate):

* warmup forwards are not training steps: they leave ``path_counts`` and the step counter alone
  (the reference counts them, which changes P-SAGA's denominator and disables
  ``sample_all_paths_first`` after a warmup);
* ``load_probs_from_warmup_dir`` replaces only the θ-IS state: attached parameters, counts and
  optimizer state are kept (the reference calls ``clear()``); an incomplete directory is an error
  unless ``allow_missing=True``; a directory written for another configuration is an error;
* ``probs_path=`` works in the constructor, and probability files carry their configuration;
* ``min_prob_frac`` above ~1e-5 works (the reference's check omits the floor).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor

from ._logging import get_logger
from .warmup import (
    ThetaISState,
    WarmupResult,
    load_probs_file,
    load_warmup_dir,
    run_warmup,
)
from .warmup import check_is_deterministic as _check_is_deterministic
from .warmup import check_probs as _check_theta_probs
from .warmup.curvature import EigenMethod, Engine, InitMode

__all__ = ["ThetaISMixin"]

log = get_logger("scrapl.scrapl_loss")


class ThetaISMixin:
    """θ-IS methods of :class:`~scrapl.SCRAPLLoss` (see the module docstring)."""

    # provided by SCRAPLLoss
    n_paths: int
    p: float
    use_rho_log1p: bool
    log1p_eps: float
    n_theta: int
    min_prob_frac: float
    eps: float
    loaded_probs_path: str | None
    attached_params: list[Tensor]
    engine: Any
    sampler: Any
    calc_dist: Callable[[Tensor, Tensor, int], Tensor]

    def _init_theta_is(self) -> None:
        self.theta_is = ThetaISState(
            n_paths=self.n_paths, n_theta=self.n_theta, min_prob_frac=self.min_prob_frac, eps=self.eps
        )

    def _warmup_config(self) -> dict[str, Any]:
        """What the curvature values depend on, besides the models and data (files record it)."""
        config = dict(self.engine.describe())
        config["transform"] = config.pop("engine")  # "engine" names the warmup's operator
        return {
            **config,
            "p": self.p,
            "use_rho_log1p": self.use_rho_log1p,
            "log1p_eps": self.log1p_eps,
            "eps": self.eps,
        }

    def _sync_probs(self) -> None:
        self.sampler.set_probs(self.theta_is.probs)

    def _log_probs_loaded(self, header: str, where: str) -> None:
        probs = self.sampler.probs
        log.info(
            f"{header}\n\t{where}\n\tmin prob = {probs.min().item():.6f}, max prob = {probs.max().item():.6f}"
        )

    def _check_not_loaded(self, what: str) -> None:
        if self.loaded_probs_path is not None:
            raise ValueError(
                f"{what} cannot change probabilities loaded from "
                f"{self.loaded_probs_path!r}; call clear() first"
            )

    # -- probabilities ---------------------------------------------------------------------------
    def update_prob(self, path_idx: int, val: float | Tensor, theta_idx: int = 0) -> None:
        """Record the curvature ``C_{theta_idx, path_idx} = val`` and update :attr:`probs`.

        With ``v = max(C, eps)`` and all P paths of θ index u recorded, Eq. (10):
        ``π_u(p) = (1 − mpf) v[u, p] / Σ_q v[u, q]`` and ``probs = mean_u (π_u + mpf / P)``; while
        only ``m`` paths of u are recorded, their share of ``π_u`` is ``m / P`` (see
        :class:`~scrapl.warmup.ThetaISState`).

        Raises:
            ValueError: indices out of range, a negative value, or probabilities loaded from a file.
        """
        self._check_not_loaded("update_prob")
        self.theta_is.update(path_idx, val, theta_idx)
        self._sync_probs()

    def load_probs(self, probs_path: str | os.PathLike) -> None:
        """Use the path distribution saved in ``probs_path`` (a warmup's ``probs.pt``, or a plain
        ``(P,)`` tensor as scrapl-loss 0.1.0 saves it).

        Raises:
            ValueError: missing or unreadable file, wrong shape, negative entries, entries below the
                ``min_prob_frac`` floor, a sum other than 1, or a file recorded for another JTFS
                configuration.
        """
        loaded = load_probs_file(probs_path, n_paths=self.n_paths)
        if loaded.config is not None:
            mine = self._warmup_config()
            diff = [
                f"{k}: file has {loaded.config[k]!r}, this loss has {v!r}"
                for k, v in mine.items()
                if k in loaded.config and loaded.config[k] != v
            ]
            if diff:
                raise ValueError(
                    f"probs_path {str(probs_path)!r} was computed for another "
                    f"configuration:\n  " + "\n  ".join(diff)
                )
        _check_theta_probs(
            loaded.probs,
            n_paths=self.n_paths,
            atol=1e-5,
            min_prob=self.min_prob_frac / self.n_paths,
            name="probs_path",
        )
        self.sampler.probs = loaded.probs  # validated above; used as saved, like the reference
        self.loaded_probs_path = str(probs_path)
        self._log_probs_loaded("Loading probs from:", str(probs_path))

    def load_probs_from_warmup_dir(
        self, warmup_dir: str | os.PathLike, agg: str = "none", *, allow_missing: bool = False
    ) -> list[int]:
        """Rebuild :attr:`probs` from the ``vals_{p}.pt`` files of a (possibly sharded) warmup.

        The θ-IS state is reset and every path's values are recorded in path order, so a complete
        directory gives exactly the probabilities of an uninterrupted one-process warmup.

        Args:
            warmup_dir: the ``save_dir`` of one or several :meth:`warmup_lc_hvp` runs.
            agg: ``"none"``, ``"mean"``, ``"max"`` or ``"med"``; must match the warmup's.
            allow_missing: skip missing paths with a warning (their probability stays ``1/P``)
                instead of raising.

        Returns:
            The path indices loaded.

        Raises:
            ValueError: not a directory, another configuration, missing paths, bad files.
        """
        self.theta_is.reset()
        loaded = load_warmup_dir(
            warmup_dir,
            state=self.theta_is,
            agg=agg,
            allow_missing=allow_missing,
            expected_config=self._warmup_config(),
        )
        self._sync_probs()
        self.loaded_probs_path = str(warmup_dir)
        self._log_probs_loaded("Loading probs from directory:", os.path.abspath(warmup_dir))
        return loaded

    # -- warmup ----------------------------------------------------------------------------------
    @staticmethod
    def check_is_deterministic(
        theta_fn: Callable[..., Tensor],
        theta_fn_kwargs: Mapping[str, Any],
        synth_fn: Callable[..., Tensor],
        synth_fn_kwargs: Mapping[str, Any] | None = None,
    ) -> bool:
        """Call encoder and synth twice on the same input; warn and return False if they differ
        (``torch.allclose``, rtol 1e-5, atol 1e-8), else return True."""
        return _check_is_deterministic(theta_fn, theta_fn_kwargs, synth_fn, synth_fn_kwargs, logger=log)

    def _warmup_path_loss(self, x_hat: Tensor, x: Tensor, path_idx: int) -> Tensor:
        # the same distance as forward(), without counting a training step
        if x_hat.shape != x.shape:
            raise ValueError(
                f"synth_fn output must have the shape of the input x "
                f"{tuple(x.shape)}, got {tuple(x_hat.shape)}"
            )
        x2, t2 = self._check_pair(x_hat, x)  # type: ignore[attr-defined]
        return self.calc_dist(x2, t2, path_idx)

    def warmup_lc_hvp(
        self,
        theta_fn: Callable[..., Tensor],
        synth_fn: Callable[..., Tensor],
        theta_fn_kwargs: Sequence[Mapping[str, Any]],
        params: Sequence[Tensor],
        synth_fn_kwargs: Sequence[Mapping[str, Any]] | None = None,
        start_path_idx: int = 0,
        end_path_idx: int | None = None,
        save_dir: str | os.PathLike | None = "scrapl_warmup",
        n_iter: int = 20,
        agg: str = "none",
        force_multibatch: bool = False,
        *,
        tol: float = 1e-4,
        engine: Engine = "factored",
        method: EigenMethod = "power",
        init: InitMode = "seeded",
        seed: int = 0,
        distributed: bool | None = None,
        strict_determinism: bool = False,
        progress: bool = True,
    ) -> WarmupResult:
        """θ-IS warmup: estimate each path's curvature per synth parameter, set :attr:`probs`.

        For path p and θ index u, ``C_{u,p} = |λ_max(A_u)|`` with ``A_u v = ∇_w⟨g_u(w), v⟩`` and
        ``g_u = Σ_b ∂L_p/∂θ_{b,u} ∇_w θ_{b,u}``: the Jacobian, with respect to the encoder weights
        ``w``, of the gradient that reaches them through θ_u (paper §3.4, Eq. 10-12), by power
        iteration with Hessian-vector products (all θ of a path batched). The probabilities follow
        Eq. (10) with the ``min_prob_frac`` floor. Each path's values are written atomically to
        ``save_dir/vals_{p}.pt`` (``(n_groups, n_theta)``); a re-run with the same ``save_dir``
        skips the paths already there; ``probs.pt`` (with the configuration) is written when the
        range covers every path. Under ``torch.distributed`` the paths are sharded over the ranks
        and every rank ends with the same probabilities.

        Args:
            theta_fn: the encoder, ``theta_fn(**theta_fn_kwargs[b])`` -> ``(batch, n_theta)``.
            synth_fn: the synth, ``synth_fn(theta, **synth_fn_kwargs[b])`` -> ``(batch, ch, N)``.
            theta_fn_kwargs: one dict per batch, each with the input signal under ``"x"``.
            params: the encoder weights (no ``.grad`` yet; not attached).
            synth_fn_kwargs: one dict per batch, or None.
            start_path_idx: first path of the range ``[start, end)`` (default 0).
            end_path_idx: end of the range, exclusive (default None: every path).
            save_dir: warmup directory (default ``"scrapl_warmup"``), or None for none.
            n_iter: maximum power-iteration steps (default 20).
            agg: ``"none"`` (one operator over all params) or ``"mean"``/``"max"``/``"med"`` (one
                per parameter tensor, reduced per θ: less memory).
            force_multibatch: recompute the forward per product even with one batch.
            tol: stop a power iteration when the relative change of λ is below this (1e-4).
            engine: ``"factored"`` (θ-space Hessian, default) or ``"direct"`` (the reference's
                double backward through the loss at every product).
            method: ``"power"`` (power iteration, the reference's, default) or ``"arnoldi"`` (the
                same eigenvalue from the Krylov subspace of the products, ``tol`` bounding the
                relative residual; see :func:`~scrapl.warmup.driver.run_warmup`).
            init: ``"seeded"`` start vectors from ``seed`` (default), ``"reference"``
                (scrapl-loss 0.1.0's draws from the global RNG) or ``"chain"`` (each path from
                the previous computed path's eigenvectors: fewer products, order-dependent
                values; see :func:`~scrapl.warmup.driver.run_warmup`).
            seed: seed of the start vectors.
            distributed: shard over ``torch.distributed`` ranks (None: if initialised).
            strict_determinism: raise instead of warning for a non-deterministic encoder/synth.
            progress: show a progress bar.

        Returns:
            The :class:`~scrapl.warmup.WarmupResult` (values per path, probabilities, convergence).

        Raises:
            ValueError: parameters attached, probabilities loaded from a file, bad arguments,
                a ``save_dir`` holding another configuration.
        """
        if self.attached_params:
            raise ValueError(
                "Parameters cannot be attached during warmup: call "
                "attach_params([]) first and attach them again afterwards"
            )
        self._check_not_loaded("warmup_lc_hvp")
        result = run_warmup(
            self._warmup_path_loss,
            theta_fn,
            synth_fn,
            theta_fn_kwargs,
            params,
            n_paths=self.n_paths,
            n_theta=self.n_theta,
            synth_fn_kwargs=synth_fn_kwargs,
            start_path_idx=start_path_idx,
            end_path_idx=end_path_idx,
            save_dir=save_dir,
            n_iter=n_iter,
            tol=tol,
            agg=agg,
            force_multibatch=force_multibatch,
            engine=engine,
            method=method,
            init=init,
            seed=seed,
            state=self.theta_is,
            config=self._warmup_config(),
            distributed=distributed,
            strict_determinism=strict_determinism,
            progress=progress,
            logger=log,
        )
        self._sync_probs()
        return result
