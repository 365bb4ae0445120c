"""``SCRAPLLoss``: the JTFS distance on one randomly sampled path per call.

The module validates its arguments, builds the path engine once and delegates: sampling to
:mod:`scrapl.sampling`, the distance to :mod:`scrapl.distance`, the path-wise gradient updates to
:mod:`scrapl.optim`, the θ-importance-sampling warmup to :mod:`scrapl.warmup`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ._checks import as_bool, as_choice, as_float, as_int_in
from ._logging import get_logger
from ._signals import check_signal_pair, compute_dtype
from .distance import path_distance
from .distributed import broadcast_path, is_distributed
from .engine import PathEngine
from .jtfs.config import AveragingArg
from .jtfs.transform import TimeFrequencyScattering
from .optim import BackwardPaths, Compat, HookContext, PathwiseHooks, PathwiseOptimizer
from .sampling import PathSampler
from .theta_is import ThetaIS, check_is_deterministic
from .warmup import Strategy, WarmupOptions, WarmupResult
from .warmup.options import EigenMethod, Engine, InitMode, ThetaBatching

# the reference's logger name, which the seed's console output shows
log = get_logger("scrapl.scrapl_loss")

__all__ = ["SCRAPLLoss"]


class SCRAPLLoss(nn.Module):
    """Joint time-frequency scattering distance on one randomly sampled path per call (SCRAPL).

    At each call a path ``k`` of the JTFS is drawn from :attr:`probs` (uniform until a θ-IS warmup
    or a probability file changes it) and the loss is

    ``L_k(x, x_target) = mean_b || rho(S_k x_target[b]) - rho(S_k x[b]) ||_p``,

    ``rho = log1p(. / log1p_eps)`` if ``use_rho_log1p`` else the identity, ``b`` over batch × channels
    (Mitcheltree et al., ICLR 2026, §3). Its expectation over ``k ~ probs`` is, up to weighting, the
    full JTFS distance at a fraction of the cost.

    Args:
        shape: signal length ``N`` in samples.
        J: octaves of the temporal wavelets (first and second order).
        Q1: first-order wavelets per octave.
        Q2: second-order wavelets per octave.
        J_fr: octaves of the frequential wavelets.
        Q_fr: frequential wavelets per octave.
        T: temporal averaging in samples: ``None`` (``2**J`` samples, which is what scrapl-loss
            0.1.0 really does; its README says ``J**2``), an int in ``[1, shape]`` or ``'global'``.
        F: frequential averaging in first-order bins: ``None`` (``2**J_fr`` bins; the README says
            ``J_fr * Q_fr``), an int in ``[1, (J + 1) Q1]`` or ``'global'``.
        p: order of the norm of the coefficient difference (default 2).
        use_rho_log1p: compare ``log1p(S / log1p_eps)`` instead of ``S``.
        log1p_eps: scale of the log compression (default 1e-3).
        grad_mult: factor applied to the gradients of attached parameters (default 1e8; JTFS
            gradients are tiny and Adam squares them). Must be > 1 with P-Adam and no log1p.
        use_p_adam: path-wise Adam on attached parameters (default True).
        use_p_saga: path-wise SAGA on attached parameters (default True).
        sample_all_paths_first: draw every path once (random order) before sampling ``probs``.
        n_theta: number of synthesizer parameters θ for the θ-IS warmup (default 1).
        min_prob_frac: θ-IS floor, each path keeps at least ``min_prob_frac / P`` (in ``[0, 1)``).
        probs_path: ``.pt`` file with a path distribution of shape ``(P,)`` to start from.
        eps: floor of the θ-IS curvature values (default 1e-12).
        p_adam_b1: Adam's β1 for P-Adam (default 0.9).
        p_adam_b2: Adam's β2 for P-Adam (default 0.999).
        p_adam_eps: Adam's ε for P-Adam (default 1e-8).
        compat: ``"paper"`` (default: P-Adam/P-SAGA as the paper's Eq. 6–9, one path == Adam) or
            ``"reference"`` (scrapl-loss 0.1.0 step for step, its quirks included).
        sync_paths: under ``torch.distributed`` with several ranks, unseeded training-mode draws
            are made on rank 0 and broadcast, so that every rank trains on the same path (default
            True; every rank must then call the loss in step).
        low_memory: compute each path in small chunks and recompute them in the backward
            (activation checkpointing): the same values and gradients, a peak memory per step
            of about a tenth of scrapl-loss 0.1.0's, for 1.5-2x the step time (default False).
        generator: a CPU ``torch.Generator`` for the unseeded path draws, so that they are
            reproducible without reseeding torch's global RNG (default None: the global RNG, as
            scrapl-loss 0.1.0). Its state is part of :meth:`state_dict`.
        check_finite: refuse ``x`` or ``x_target`` holding a NaN or an infinity (default False:
            the check reads a value back from the device at every call). Without it such a
            signal gives a NaN loss.

    Signals on another device than the loss are refused, and so are signals of a higher
    precision than the loss computes in (float64 for the default float32 loss: call
    ``.double()`` on the loss); lower precisions (float16, bfloat16) are cast up.

    Shape:
        ``x``, ``x_target``: ``(batch, channels, shape)``; output: scalar.

    Example:
        >>> loss_fn = SCRAPLLoss(shape=4096, J=6, Q1=2, Q2=1, J_fr=2, Q_fr=1)  # doctest: +SKIP
        >>> loss = loss_fn(torch.randn(2, 1, 4096), torch.randn(2, 1, 4096), seed=0)  # doctest: +SKIP
    """

    compat: Compat
    sync_paths: bool
    p_adam_b1: float
    p_adam_b2: float
    p_adam_eps: float

    def __init__(
        self,
        shape: int,
        J: int,
        Q1: int,
        Q2: int,
        J_fr: int,
        Q_fr: int,
        T: AveragingArg = None,
        F: AveragingArg = None,
        p: float = 2,
        use_rho_log1p: bool = False,
        log1p_eps: float = 1e-3,
        grad_mult: float = 1e8,
        use_p_adam: bool = True,
        use_p_saga: bool = True,
        sample_all_paths_first: bool = False,
        n_theta: int = 1,
        min_prob_frac: float = 0.0,
        probs_path: str | None = None,
        eps: float = 1e-12,
        p_adam_b1: float = 0.9,
        p_adam_b2: float = 0.999,
        p_adam_eps: float = 1e-8,
        *,
        compat: Compat = "paper",
        sync_paths: bool = True,
        low_memory: bool = False,
        generator: torch.Generator | None = None,
        check_finite: bool = False,
    ) -> None:
        super().__init__()
        self.p = as_float("p", p, low=1.0)
        self.use_rho_log1p = as_bool("use_rho_log1p", use_rho_log1p)
        self.log1p_eps = as_float("log1p_eps", log1p_eps, low=0.0, low_open=True)
        self.grad_mult = as_float("grad_mult", grad_mult)
        self.use_p_adam = as_bool("use_p_adam", use_p_adam)
        self.use_p_saga = as_bool("use_p_saga", use_p_saga)
        self.sample_all_paths_first = as_bool("sample_all_paths_first", sample_all_paths_first)
        if use_p_adam and not use_rho_log1p and not self.grad_mult > 1.0:
            raise ValueError(
                f"grad_mult must be > 1 when use_p_adam=True and use_rho_log1p=False (JTFS "
                f"gradients are too small for Adam's squared moments), got {grad_mult!r}"
            )
        self.n_theta = as_int_in("n_theta", n_theta, 1)
        self.min_prob_frac = as_float("min_prob_frac", min_prob_frac, low=0.0, high=1.0, high_open=True)
        self.eps = as_float("eps", eps, low=0.0, low_open=True)
        self.p_adam_b1 = as_float("p_adam_b1", p_adam_b1, low=0.0, high=1.0, high_open=True)
        self.p_adam_b2 = as_float("p_adam_b2", p_adam_b2, low=0.0, high=1.0, high_open=True)
        self.p_adam_eps = as_float("p_adam_eps", p_adam_eps, low=0.0)
        self.compat = as_choice("compat", compat, ("paper", "reference"))  # type: ignore[assignment]
        self.sync_paths = as_bool("sync_paths", sync_paths)
        self.check_finite = as_bool("check_finite", check_finite)
        self.J, self.Q1, self.Q2, self.J_fr, self.Q_fr, self.T, self.F = J, Q1, Q2, J_fr, Q_fr, T, F
        self.jtfs = TimeFrequencyScattering(shape, J, Q1, Q2, J_fr, Q_fr, T, F, low_memory=low_memory)
        self._init_state(self.jtfs, generator)
        self.theta_is = ThetaIS(self)
        self._log_banner(f"J={J}, Q1={Q1}, Q2={Q2}, Jfr={J_fr}, Qfr={Q_fr}, T={T}, F={F}")
        if probs_path is not None:
            self.load_probs(probs_path)

    # -- construction ------------------------------------------------------------------------------
    def _init_state(self, engine: PathEngine, generator: torch.Generator | None) -> None:
        if engine.n_paths < 1:
            raise ValueError(
                f"this configuration has no second-order path to sample "
                f"({engine.describe()}); increase J or the signal length"
            )
        self.engine = engine
        self.n_paths = engine.n_paths
        self.unif_prob = 1.0 / self.n_paths
        self.sampler = PathSampler(
            self.n_paths, sample_all_paths_first=self.sample_all_paths_first, generator=generator
        )
        self.curr_path_idx: int | None = None
        self.scrapl_t = 0
        self._backward_paths = BackwardPaths()
        self.attached_params: list[Tensor] = []
        self.optimizer: PathwiseOptimizer | None = None
        self._hooks: PathwiseHooks | None = None
        self._pending_optimizer_state: dict | None = None

    def _log_banner(self, config_line: str) -> None:
        rows = [
            ("use_rho_log1p", f"{self.use_rho_log1p}, eps = {self.log1p_eps}"),
            ("grad_mult", self.grad_mult),
            ("use_p_adam", self.use_p_adam),
            ("use_p_saga", self.use_p_saga),
            ("sample_all_paths_first", self.sample_all_paths_first),
            ("n_theta", self.n_theta),
            ("min_prob_frac", self.min_prob_frac),
            ("number of SCRAPL paths", self.n_paths),
            ("unif_prob", f"{self.unif_prob:.8f}"),
        ]
        width = max(len(k) for k, _ in rows)
        body = "\n".join(f"{k:<{width}} = {v}" for k, v in rows)
        log.info(f"SCRAPLLoss:\n{config_line}\n{body}\n")

    # -- public attributes -------------------------------------------------------------------------
    @property
    def path_counts(self) -> defaultdict[int, int]:
        """Training-mode visits per path (``defaultdict(int)``)."""
        return self.sampler.path_counts

    @property
    def unsampled_paths(self) -> list[int]:
        """Paths not yet drawn in the ``sample_all_paths_first`` phase."""
        return self.sampler.unsampled_paths

    @property
    def probs(self) -> Tensor:
        """The path distribution, float64 CPU tensor of shape ``(n_paths,)``."""
        return self.sampler.probs

    @property
    def loaded_probs_path(self) -> str | None:
        """The probability file or warmup directory the probabilities were loaded from, or None."""
        return self.theta_is.loaded_from

    @property
    def scrapl_keys(self) -> list:
        """Path keys in order (``(n2, n_fr)`` for the JTFS), as scrapl-loss 0.1.0 names them."""
        return [path.key for path in self.engine.paths]

    @property
    def paths(self) -> list:
        """Per-path metadata (see :class:`scrapl.jtfs.JTFSPath`)."""
        return list(self.engine.paths)

    # -- forward -----------------------------------------------------------------------------------
    def _check_pair(self, x: Any, x_target: Any) -> tuple[Tensor, Tensor]:
        """Validate the signals (shape, device, dtype; finiteness with ``check_finite``) and fold
        channels into the batch: ``(B, C, N)`` -> ``(B·C, N)``, in the dtype the loss computes in."""
        buffer = next((b for b in self.buffers() if b.is_floating_point()), None)
        return check_signal_pair(
            x,
            x_target,
            length=self.engine.signal_length,
            device=None if buffer is None else buffer.device,
            dtype=None if buffer is None else compute_dtype(buffer.dtype),
            check_finite=self.check_finite,
        )

    def _check_path_idx(self, path_idx: Any) -> int:
        return as_int_in("path_idx", path_idx, 0, self.n_paths)

    def sample_path(self, seed: int | None = None) -> int:
        """Draw a path index (from the global RNG or the loss's ``generator``, or deterministically
        from ``seed``).

        Under ``torch.distributed`` (and ``sync_paths``), an unseeded training-mode draw is rank 0's,
        broadcast to every rank.
        """
        if seed is None and self.training and self.sync_paths and is_distributed():
            path_idx = self.sampler.sample(training=True) if dist.get_rank() == 0 else -1
            return broadcast_path(path_idx)
        return self.sampler.sample(seed, training=self.training)

    def path_coefficients(self, x: Tensor, path_idx: int) -> Tensor:
        """Coefficients of one path (after ``rho`` if ``use_rho_log1p``) for ``x`` of shape
        ``(B, C, N)``; shape ``(B * C, n_freq, n_time)``."""
        x, _ = self._check_pair(x, x)
        S = self.engine.path(x, self._check_path_idx(path_idx))
        return torch.log1p(S / self.log1p_eps) if self.use_rho_log1p else S

    def calc_dist(self, x: Tensor, x_target: Tensor, path_idx: int) -> Tensor:
        """Distance on path ``path_idx`` between ``x`` and ``x_target`` of shape ``(B', N)``.

        The target's coefficients are computed without autograd unless ``x_target`` requires grad.
        """
        if x_target.requires_grad and torch.is_grad_enabled():
            S = self.engine.path(torch.cat([x, x_target]), path_idx)
            S_x, S_target = S[: x.shape[0]], S[x.shape[0] :]
        else:
            S_x = self.engine.path(x, path_idx)
            with torch.no_grad():
                S_target = self.engine.path(x_target, path_idx)
        log1p_eps = self.log1p_eps if self.use_rho_log1p else None
        return path_distance(S_x, S_target, p=self.p, log1p_eps=log1p_eps)

    def forward(
        self, x: Tensor, x_target: Tensor, seed: int | None = None, path_idx: int | None = None
    ) -> Tensor:
        """Return the distance between ``x`` and ``x_target`` on one path.

        Args:
            x: signals, shape ``(batch, channels, shape)``.
            x_target: target signals, same shape.
            seed: draw the path deterministically from this seed (the global RNG is untouched);
                ignored when ``path_idx`` is given.
            path_idx: use this path instead of sampling one.

        Returns:
            Scalar tensor. In training mode the visit is counted (:attr:`path_counts`) and the
            path-wise optimizers of attached parameters act on the next backward pass.
        """
        x2, t2 = self._check_pair(x, x_target)
        if path_idx is None:
            path_idx = self.sample_path(seed)
            log.debug(f"Sample path_idx = {path_idx}")
        else:
            path_idx = self._check_path_idx(path_idx)
            log.debug(f"Using specified path_idx = {path_idx}")
            if seed is not None:
                log.warning("seed is ignored when path_idx is specified")
        dist = self.calc_dist(x2, t2, path_idx)
        self.curr_path_idx = path_idx
        if self.training:
            self.sampler.record(path_idx)
            self.scrapl_t += 1
            self._backward_paths.watch(dist, path_idx)  # the optimizers check what a step credits
        return dist

    # -- path-wise optimization --------------------------------------------------------------------
    def make_optimizer(self, params: Iterable[Tensor], *, offload: bool = False) -> PathwiseOptimizer:
        """Return a :class:`~scrapl.optim.PathwiseOptimizer` with this loss's P-Adam/P-SAGA settings.

        This is the explicit route: call ``opt.step(loss.curr_path_idx)`` after ``backward()`` (and
        after ``GradScaler.unscale_``, clipping or DDP's gradient averaging) and before
        ``SGD.step()``. Unlike :meth:`attach_params`, it sees whole, averaged gradients. ``offload``
        keeps the per-path tables in host memory (accelerator memory O(weights), not O(P x weights)).

        ``opt.step(p)`` refuses gradients that came from another path than ``p``, or from several
        (:class:`~scrapl.optim.MixedPathsError`). To accumulate over micro-batches, draw one path
        per step and give it to every micro-batch::

            path = loss.sample_path()
            for x, y in micro_batches:
                (loss(model(x), y, path_idx=path) / len(micro_batches)).backward()
            opt.step(path)
        """
        return PathwiseOptimizer(
            params,
            self.n_paths,
            grad_mult=self.grad_mult,
            use_p_adam=self.use_p_adam,
            use_p_saga=self.use_p_saga,
            b1=self.p_adam_b1,
            b2=self.p_adam_b2,
            eps=self.p_adam_eps,
            compat=self.compat,
            offload=offload,
            backward_paths=self._backward_paths,
        )

    def attach_params(self, params: Iterable[Tensor], *, offload: bool = False) -> None:
        """Apply ``grad_mult``, P-Adam and P-SAGA to the gradients of ``params`` during backward.

        Tensor hooks transform every gradient that reaches these parameters under the path of this
        loss's most recent forward (in training mode), so that vanilla SGD (no momentum, optional
        weight decay) downstream trains with P-Adam/P-SAGA. ``attach_params([])`` detaches. The
        step counter restarts; path counts are kept. To resume, attach first, then
        :meth:`load_state_dict`. For DDP, AMP, clipping or gradient accumulation use
        :meth:`make_optimizer`: a backward pass whose gradient is not the current path's, or that
        adds to a ``p.grad`` holding another path's gradient, raises
        :class:`~scrapl.optim.MixedPathsError`.

        Raises:
            ValueError: if a parameter does not require grad (nothing is attached then).
        """
        params = list(params)
        n_prev = len(self.attached_params)
        optimizer = self.make_optimizer(params, offload=offload) if params else None
        hooks = PathwiseHooks(optimizer, self._hook_context) if optimizer is not None else None
        self._detach()
        self.scrapl_t = 0
        if optimizer is None:
            log.info(f"Detached {n_prev} parameter tensors")
            return
        self.optimizer, self._hooks, self.attached_params = optimizer, hooks, params
        if self._pending_optimizer_state is not None:
            self._load_optimizer_state(self._pending_optimizer_state)
        n_weights = sum(p.numel() for p in params)
        log.info(f"Attached {len(params)} parameter tensors ({n_weights} weights)")
        if is_distributed():
            log.warning(
                "attach_params under torch.distributed transforms each rank's local gradient "
                "before DDP averages them; use make_optimizer() and opt.step() after "
                "backward() to apply P-Adam/P-SAGA to the averaged gradient"
            )

    def _detach(self) -> None:
        if self._hooks is not None:
            self._hooks.remove()
        self._hooks, self.optimizer, self.attached_params = None, None, []

    def _hook_context(self) -> HookContext:
        # the reference's SAGA denominator counts distinct paths seen by the loss (warmup included)
        n_seen = len(self.path_counts) if self.compat == "reference" else None
        return HookContext(self.curr_path_idx, self.scrapl_t, n_seen, self.training)

    def _load_optimizer_state(self, pending: dict) -> None:
        assert self.optimizer is not None
        self.optimizer.load_state_dict(pending["optimizer"])
        self.scrapl_t = pending["scrapl_t"]
        self._pending_optimizer_state = None

    # -- state -------------------------------------------------------------------------------------
    def get_extra_state(self) -> dict:
        """Everything needed to resume, as plain data (loads with ``torch.load(weights_only=True)``):
        sampler (counts, first-pass list, probs, seeded generator), step counter, current path,
        θ-IS state and, when parameters are attached, the path-wise optimizer's state."""
        return {
            "format": "scrapl.SCRAPLLoss/1",
            "n_paths": self.n_paths,
            "sampler": self.sampler.state_dict(),
            "curr_path_idx": self.curr_path_idx,
            "scrapl_t": self.scrapl_t,
            "loaded_probs_path": self.loaded_probs_path,
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "theta_is": self.theta_is.state.state_dict(),
        }

    def set_extra_state(self, state: Any) -> None:
        """Restore :meth:`get_extra_state` output (called by ``load_state_dict``).

        The path-wise optimizer state is restored into the attached parameters; if none are attached
        yet it is kept and applied by the next :meth:`attach_params`.
        """
        if not isinstance(state, dict) or state.get("format") != "scrapl.SCRAPLLoss/1":
            raise ValueError("state_dict was not saved by scrapl.SCRAPLLoss (format 'scrapl.SCRAPLLoss/1')")
        if state["n_paths"] != self.n_paths:
            raise ValueError(f"state_dict is for {state['n_paths']} paths, this loss has {self.n_paths}")
        self.sampler.load_state_dict(state["sampler"])
        self.curr_path_idx = state["curr_path_idx"]
        self.theta_is.loaded_from = state["loaded_probs_path"]
        self.scrapl_t = int(state["scrapl_t"])
        if "theta_is" in state:
            self.theta_is.state.load_state_dict(state["theta_is"])
        opt_state = state.get("optimizer")
        if opt_state is None:
            self._pending_optimizer_state = None
            if self.optimizer is not None:
                self.optimizer.reset()
        elif self.optimizer is not None:
            self.optimizer.load_state_dict(opt_state)
        else:
            self._pending_optimizer_state = {"optimizer": opt_state, "scrapl_t": self.scrapl_t}

    def clear(self) -> None:
        """Forget sampling history, step counter, θ-IS values and optimizer state; probs uniform.

        Attached parameters stay attached (their P-Adam/P-SAGA state is reset), unlike
        scrapl-loss 0.1.0 which silently detaches them.
        """
        self.curr_path_idx = None
        self.sampler.clear()
        self.sampler.set_probs(self.theta_is.reset())
        self.scrapl_t = 0
        self._pending_optimizer_state = None
        if self.optimizer is not None:
            self.optimizer.reset()
        log.info("Cleared state")

    # -- θ-importance sampling (scrapl.theta_is.ThetaIS does the work) ------------------------------
    check_is_deterministic = staticmethod(check_is_deterministic)

    def update_prob(self, path_idx: int, val: float | Tensor, theta_idx: int = 0) -> None:
        """Record the curvature ``C_{theta_idx, path_idx} = val`` and update :attr:`probs` (Eq. 10,
        see :class:`~scrapl.warmup.ThetaISState`).

        Raises:
            ValueError: indices out of range, a negative value, or probabilities loaded from a file.
        """
        self.sampler.set_probs(self.theta_is.update_prob(path_idx, val, theta_idx))

    def load_probs(self, probs_path: str | os.PathLike) -> None:
        """Use the path distribution saved in ``probs_path``: a plain ``(P,)`` tensor, as a warmup
        (ours or scrapl-loss 0.1.0's) writes it, or an older file of this library.

        Raises:
            ValueError: naming ``probs_path`` and the file: missing or unreadable file, wrong
                shape, negative entries, entries below the ``min_prob_frac`` floor, a sum other
                than 1, or a file recorded (in ``meta.json`` beside it) for another configuration.
        """
        self.sampler.set_probs(self.theta_is.load_probs(probs_path), name="probs_path", atol=1e-5)

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
        probs, loaded = self.theta_is.load_warmup_dir(warmup_dir, agg, allow_missing)
        self.sampler.set_probs(probs)
        return loaded

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
        method: EigenMethod = "power",
        tol: float = 1e-4,
        init: InitMode = "seeded",
        seed: int = 0,
        theta_batching: ThetaBatching | None = None,
        distributed: bool | None = None,
        strict_determinism: bool = False,
        progress: bool = True,
        engine: Engine | None = None,
    ) -> WarmupResult:
        """θ-IS warmup: estimate each path's curvature per synth parameter, set :attr:`probs`.

        For path p and θ index u, ``C_{u,p} = |λ_max(A_u)|`` with ``A_u v = ∇_w⟨g_u(w), v⟩`` and
        ``g_u = Σ_b ∂L_p/∂θ_{b,u} ∇_w θ_{b,u}``: the Jacobian, with respect to the encoder weights
        ``w``, of the gradient that reaches them through θ_u (paper §3.4, Eq. 10-12), by power
        iteration with Hessian-vector products (all θ of a path batched). The probabilities follow
        Eq. (10) with the ``min_prob_frac`` floor. Each path's values are checked (a NaN or inf
        raises, naming the path and θ index, and writes nothing) and written atomically to
        ``save_dir/vals_{p}.pt`` (``(n_groups, n_theta)``); a re-run with the same ``save_dir``
        skips the paths already there; ``probs.pt`` (a plain ``(P,)`` tensor, as scrapl-loss 0.1.0
        writes it) is written when the range covers every path. Under ``torch.distributed`` the
        paths are sharded over the ranks and every rank ends with the same probabilities.

        Args:
            theta_fn: the encoder, ``theta_fn(**theta_fn_kwargs[b])`` -> ``(batch, n_theta)``.
            synth_fn: the synth, ``synth_fn(theta, **synth_fn_kwargs[b])`` -> ``(batch, ch, N)``.
            theta_fn_kwargs: one dict per batch, each with the input signal under ``"x"``.
            params: the encoder weights (no ``.grad`` yet; not attached).
            synth_fn_kwargs: one dict per batch, or None.
            engine: for benchmarks only: force the ``"factored"`` or ``"direct"`` products
                (:class:`~scrapl.warmup.Strategy`; default None chooses).

        The other arguments are the options of :class:`~scrapl.warmup.WarmupOptions`, in one
        table there with the reason each exists: the seed's ``start_path_idx``, ``end_path_idx``,
        ``save_dir``, ``n_iter``, ``agg``, ``force_multibatch``; the estimator (``method``,
        ``tol``, ``init``, ``seed``); ``theta_batching``; ``distributed``; ``strict_determinism``
        and ``progress``.

        Returns:
            The :class:`~scrapl.warmup.WarmupResult` (values per path, probabilities, convergence).

        Raises:
            ValueError: parameters attached, probabilities loaded from a file, bad arguments,
                a ``save_dir`` holding another configuration, a non-finite curvature value.
        """
        options = WarmupOptions(
            start_path_idx=start_path_idx,
            end_path_idx=end_path_idx,
            save_dir=save_dir,
            n_iter=n_iter,
            agg=agg,  # type: ignore[arg-type]  # checked by WarmupOptions
            force_multibatch=force_multibatch,
            method=method,
            tol=tol,
            init=init,
            seed=seed,
            theta_batching=theta_batching,
            distributed=distributed,
            strict_determinism=strict_determinism,
            progress=progress,
        )
        strategy = None if engine is None else Strategy(engine=engine)
        result = self.theta_is.warmup(
            theta_fn, synth_fn, theta_fn_kwargs, params, synth_fn_kwargs, options, strategy
        )
        self.sampler.set_probs(result.probs)
        return result
