"""θ-importance sampling of one :class:`~scrapl.SCRAPLLoss`: the probability state, its files and
the warmup.

:class:`ThetaIS` reads the loss it belongs to (its configuration, its one-path distance, whether
parameters are attached) and returns path probabilities; the loss puts them into its sampler. The
seed's methods on the loss (``warmup_lc_hvp``, ``update_prob``, ``load_probs``,
``load_probs_from_warmup_dir``, ``check_is_deterministic``) are one-line delegations to it. The
work is done by :mod:`scrapl.warmup`, which only sees the loss's one-path distance.

Where this departs from scrapl-loss 0.1.0 (each deliberate):

* warmup forwards are not training steps: they leave ``path_counts`` and the step counter alone
  (the reference counts them, which changes P-SAGA's denominator and disables
  ``sample_all_paths_first`` after a warmup);
* ``load_probs_from_warmup_dir`` replaces only the θ-IS state: attached parameters, counts and
  optimizer state are kept (the reference calls ``clear()``); an incomplete directory is an error
  unless ``allow_missing=True``; a directory written for another configuration is an error;
* ``probs_path=`` works in the constructor, and a warmup's ``probs.pt`` has its configuration
  recorded beside it (in ``meta.json``);
* ``min_prob_frac`` above ~1e-5 works (the reference's check omits the floor).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor

from ._logging import get_logger
from .warmup import (
    Strategy,
    ThetaISState,
    WarmupOptions,
    WarmupResult,
    load_probs_file,
    load_warmup_dir,
    run_warmup,
)
from .warmup import check_is_deterministic as _check_is_deterministic
from .warmup import check_probs as _check_theta_probs

if TYPE_CHECKING:
    from .loss import SCRAPLLoss

__all__ = ["ThetaIS", "check_is_deterministic"]

log = get_logger("scrapl.scrapl_loss")


def check_is_deterministic(
    theta_fn: Callable[..., Tensor],
    theta_fn_kwargs: Mapping[str, Any],
    synth_fn: Callable[..., Tensor],
    synth_fn_kwargs: Mapping[str, Any] | None = None,
) -> bool:
    """Call encoder and synth twice on the same input; warn and return False if they differ
    (``torch.allclose``, rtol 1e-5, atol 1e-8), else return True."""
    return _check_is_deterministic(theta_fn, theta_fn_kwargs, synth_fn, synth_fn_kwargs, logger=log)


class ThetaIS:
    """The θ-IS state of a loss and what changes it: values, files, the warmup.

    Args:
        loss: the loss this state belongs to; read (configuration, one-path distance, attached
            parameters), never written.

    Attributes:
        state: the :class:`~scrapl.warmup.ThetaISState` (curvature values and probabilities).
        loaded_from: the file or directory the probabilities were loaded from, or None.
    """

    def __init__(self, loss: SCRAPLLoss) -> None:
        self._loss = loss
        self.state = ThetaISState(
            n_paths=loss.n_paths, n_theta=loss.n_theta, min_prob_frac=loss.min_prob_frac, eps=loss.eps
        )
        self.loaded_from: str | None = None

    def config(self) -> dict[str, Any]:
        """What the curvature values depend on, besides the models and data (files record it)."""
        loss = self._loss
        config = dict(loss.engine.describe())
        config["transform"] = config.pop("engine")  # "engine" names the warmup's operator
        return {
            **config,
            "p": loss.p,
            "use_rho_log1p": loss.use_rho_log1p,
            "log1p_eps": loss.log1p_eps,
            "eps": loss.eps,
        }

    def reset(self) -> Tensor:
        """Forget every value and the loaded file; return the (uniform) probabilities."""
        self.state.reset()
        self.loaded_from = None
        return self.state.probs

    def _check_not_loaded(self, what: str) -> None:
        if self.loaded_from is not None:
            raise ValueError(
                f"{what} cannot change probabilities loaded from {self.loaded_from!r}; call clear() first"
            )

    def _log_loaded(self, header: str, where: str, probs: Tensor) -> None:
        lo, hi = probs.min().item(), probs.max().item()
        log.info(f"{header}\n\t{where}\n\tmin prob = {lo:.6f}, max prob = {hi:.6f}")

    # -- probabilities ---------------------------------------------------------------------------
    def update_prob(self, path_idx: int, val: float | Tensor, theta_idx: int = 0) -> Tensor:
        """Record ``C_{theta_idx, path_idx} = val``; return the new probabilities (Eq. 10).

        Raises:
            ValueError: indices out of range, a negative value, or probabilities loaded from a file.
        """
        self._check_not_loaded("update_prob")
        self.state.update(path_idx, val, theta_idx)
        return self.state.probs

    def load_probs(self, probs_path: str | os.PathLike) -> Tensor:
        """Read, check and return the probabilities saved in ``probs_path``.

        Raises:
            ValueError: naming ``probs_path`` and the file: missing or unreadable file, wrong
                shape, negative entries, entries below the floor, a sum other than 1, or a file
                recorded for another configuration.
        """
        loaded = load_probs_file(probs_path, n_paths=self.state.n_paths, name="probs_path")
        where = f"probs_path {str(probs_path)!r}"
        if loaded.config is not None:
            diff = [
                f"{k}: file has {loaded.config[k]!r}, this loss has {v!r}"
                for k, v in self.config().items()
                if k in loaded.config and loaded.config[k] != v
            ]
            if diff:
                raise ValueError(f"{where} was computed for another configuration:\n  " + "\n  ".join(diff))
        probs = _check_theta_probs(
            loaded.probs, n_paths=self.state.n_paths, atol=1e-5, min_prob=self.state.min_prob, name=where
        )
        self.loaded_from = str(probs_path)
        self._log_loaded("Loading probs from:", str(probs_path), probs)
        return probs

    def load_warmup_dir(
        self, warmup_dir: str | os.PathLike, agg: str, allow_missing: bool
    ) -> tuple[Tensor, list[int]]:
        """Rebuild the probabilities from the ``vals_{p}.pt`` files of a warmup directory.

        Returns:
            ``(probs, loaded)``: the probabilities and the path indices loaded.
        """
        self.state.reset()
        loaded = load_warmup_dir(
            warmup_dir, state=self.state, agg=agg, allow_missing=allow_missing, expected_config=self.config()
        )
        self.loaded_from = str(warmup_dir)
        self._log_loaded("Loading probs from directory:", os.path.abspath(warmup_dir), self.state.probs)
        return self.state.probs, loaded

    # -- warmup ----------------------------------------------------------------------------------
    def _path_loss(self, x_hat: Tensor, x: Tensor, path_idx: int) -> Tensor:
        """The loss's one-path distance, without counting a training step (``forward`` counts)."""
        if x_hat.shape != x.shape:
            raise ValueError(
                f"synth_fn output must have the shape of the input x {tuple(x.shape)}, "
                f"got {tuple(x_hat.shape)}"
            )
        return self._loss.calc_dist(*self._loss._check_pair(x_hat, x), path_idx)

    def warmup(
        self,
        theta_fn: Callable[..., Tensor],
        synth_fn: Callable[..., Tensor],
        theta_fn_kwargs: Sequence[Mapping[str, Any]],
        params: Sequence[Tensor],
        synth_fn_kwargs: Sequence[Mapping[str, Any]] | None,
        options: WarmupOptions,
        strategy: Strategy | None = None,
    ) -> WarmupResult:
        """Run the warmup (see :meth:`scrapl.SCRAPLLoss.warmup_lc_hvp`); the result's ``probs``
        are the new probabilities.

        Raises:
            ValueError: parameters attached to the loss, probabilities loaded from a file, and
                everything :func:`~scrapl.warmup.run_warmup` refuses.
        """
        if self._loss.attached_params:
            raise ValueError(
                "Parameters cannot be attached during warmup: call attach_params([]) first and "
                "attach them again afterwards"
            )
        self._check_not_loaded("warmup_lc_hvp")
        return run_warmup(
            self._path_loss,
            theta_fn,
            synth_fn,
            theta_fn_kwargs,
            params,
            n_paths=self.state.n_paths,
            n_theta=self.state.n_theta,
            synth_fn_kwargs=synth_fn_kwargs,
            options=options,
            state=self.state,
            config=self.config(),
            strategy=strategy,
            logger=log,
        )
