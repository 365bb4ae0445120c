"""The θ-IS warmup: curvature values of every path, files, progress, sharding, probabilities.

For each path p and synth parameter u, ``C_{u,p} = |λ_max(A_u)|`` (see :mod:`scrapl.warmup.hvp`),
estimated by power iteration (:mod:`scrapl.warmup.curvature`); the values become path
probabilities by Eq. (10) of the paper (:mod:`scrapl.warmup.probs`). :func:`run_warmup` is what
``SCRAPLLoss.warmup_lc_hvp`` delegates to; it only needs a ``path_loss(x_hat, x, path_idx)``
callable, not the JTFS itself.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .._logging import get_logger
from . import distributed as wd
from .checks import check_is_deterministic, data_sha256, tensor_sha256
from .curvature import CurvatureSettings, SharedEncoder, check_finite_vals, path_curvatures, start_vectors
from .factored import loss_reaches_params
from .files import (
    PROBS_NAME,
    atomic_save,
    existing_val_paths,
    load_vals,
    prepare_save_dir,
    save_probs_file,
    vals_path,
)
from .hvp import forward_path_loss
from .options import Engine, Strategy, WarmupOptions
from .power import PowerIterationResult, ReferenceInitStream
from .problem import TARGET_KEY, PathLoss, WarmupProblem
from .probs import ThetaISState, aggregate_vals

__all__ = ["WarmupResult", "run_warmup"]

log = get_logger("scrapl.warmup")


@dataclass(frozen=True)
class WarmupResult:
    """What :func:`run_warmup` returns.

    Attributes:
        vals: ``path -> (n_groups, nθ)`` float32 curvature values ``|λ|`` for every path of the
            range (computed here, by another rank, or loaded from ``save_dir``).
        probs: ``(P,)`` float64, the probabilities after recording ``vals`` in path order.
        computed: the paths this process computed (not loaded, not another rank's).
        convergence: ``path -> [PowerIterationResult per group]`` for the computed paths.
        config: the configuration recorded in ``meta.json`` (with the ``min_prob_frac`` of the
            probabilities).
    """

    vals: dict[int, Tensor]
    probs: Tensor
    computed: list[int]
    convergence: dict[int, list[PowerIterationResult]]
    config: dict[str, Any]


@dataclass(frozen=True)
class _Plan:
    """One warmup call, resolved: the problem, its options and everything derived from them."""

    problem: WarmupProblem
    options: WarmupOptions
    settings: CurvatureSettings
    strategy: Strategy
    groups: list[list[Tensor]]
    paths: list[int]
    mine: list[int]
    rank: int
    world: int
    stream: ReferenceInitStream | None
    config: dict[str, Any]


def _collective(fn: Callable[[], Any], world: int) -> Any:
    """Run ``fn`` on every rank; if it raised anywhere, raise everywhere (no rank hangs)."""
    try:
        out, err = fn(), None
    except Exception as e:  # noqa: BLE001 - re-raised below
        out, err = None, e
    if world > 1 and not wd.all_ok(err is None) and err is None:
        raise RuntimeError("warmup aborted: another rank failed (see its error)")
    if err is not None:
        raise err
    return out


def _resolve_engine(problem: WarmupProblem, strategy: Strategy, path_idx: int) -> Engine:
    """``strategy.engine``, or ``"factored"`` unless a weight reaches the loss other than through θ.

    The automatic choice looks at the autograd graph of one forward (encoder, synth, path loss of
    the first batch on ``path_idx``) with θ detached: no backward pass.
    """
    if strategy.engine is not None:
        return strategy.engine
    batch = problem.batches[0]
    with torch.no_grad():
        theta = problem.theta_fn(**batch.theta_fn_kwargs)
    with torch.enable_grad():
        leaf = theta.detach().requires_grad_(True) if isinstance(theta, Tensor) else theta
        _, loss = forward_path_loss(
            path_loss=problem.path_loss,
            theta_fn=problem.theta_fn,
            synth_fn=problem.synth_fn,
            batch=batch,
            path_idx=path_idx,
            n_theta=problem.n_theta,
            theta=leaf,
        )
        return "direct" if loss_reaches_params(loss, problem.params) else "factored"


def _record(
    problem: WarmupProblem,
    options: WarmupOptions,
    settings: CurvatureSettings,
    strategy: Strategy,
    n_groups: int,
    rng_state: Tensor,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """Everything the values depend on (recorded in meta.json); the keys of version 1 files."""
    reference = options.init == "reference"
    return {
        **dict(extra),
        "n_paths": problem.n_paths,
        "n_theta": problem.n_theta,
        "n_iter": options.n_iter,
        "tol": float(options.tol),
        "agg": options.agg,
        "n_groups": n_groups,
        "param_shapes": [list(p.shape) for p in problem.params],
        "n_batches": len(problem.batches),
        "multibatch": settings.multibatch,
        "engine": settings.engine,
        "hessian": strategy.hessian if settings.engine == "factored" else None,
        "init": options.init,
        "seed": None if reference else options.seed,
        "target_key": TARGET_KEY,
        "data_sha256": data_sha256(problem.batches),
        "params_sha256": tensor_sha256(problem.params),
        "init_rng_sha256": tensor_sha256([rng_state]) if reference else None,
        **({"method": options.method} if options.method != "power" else {}),  # (older files have none)
    }


def _plan(
    problem: WarmupProblem,
    options: WarmupOptions,
    strategy: Strategy,
    extra_config: Mapping[str, Any],
) -> _Plan:
    """Resolve the automatic choices and the shard of this rank; agree on them across ranks."""
    rank, world = wd.rank_and_world(options.distributed)
    start, end = _collective(lambda: options.path_range(problem.n_paths), world)
    rng_state = torch.get_rng_state()  # before any call of theta_fn or synth_fn
    if options.init == "reference" and world > 1:
        rng_state = wd.broadcast_tensor(rng_state)  # every rank replays rank 0's stream
    params = problem.params
    settings = CurvatureSettings(
        engine=_collective(lambda: _resolve_engine(problem, strategy, start), world),
        theta_batching=options.theta_batching or "loop",
        hessian=strategy.hessian,
        multibatch=options.force_multibatch or len(problem.batches) > 1,
        method=options.method,
        n_iter=options.n_iter,
        tol=options.tol,
    )
    groups = [list(params)] if options.agg == "none" else [[p] for p in params]
    config = _record(problem, options, settings, strategy, len(groups), rng_state, extra_config)
    if world > 1 and not wd.check_same_config(json.dumps(config, sort_keys=True)):
        raise ValueError(
            "ranks disagree on the warmup configuration (arguments, data or params differ between ranks)"
        )
    reference = options.init == "reference"
    paths = list(range(start, end))
    return _Plan(
        problem=problem,
        options=options,
        settings=settings,
        strategy=strategy,
        groups=groups,
        paths=paths,
        mine=wd.shard_paths(paths, rank, world),
        rank=rank,
        world=world,
        stream=ReferenceInitStream(rng_state, draw_normal=not params[0].is_cuda) if reference else None,
        config=config,
    )


def _prepare_dir(plan: _Plan, save_dir: str | os.PathLike) -> set[int]:
    """Record/check the configuration in ``save_dir``; return this rank's paths already done."""

    def record() -> None:
        if plan.rank == 0:
            prepare_save_dir(save_dir, plan.config)

    _collective(record, plan.world)
    if plan.world > 1:  # the others check what rank 0 recorded
        _collective(lambda: prepare_save_dir(save_dir, plan.config), plan.world)
    return set(existing_val_paths(save_dir)) & set(plan.mine)


def _shared_encoder(plan: _Plan, n_todo: int) -> SharedEncoder | None:
    """What the paths of a factored run share; the Jacobian rule weighs the expected products."""
    if plan.settings.engine != "factored":
        return None
    n_ops = n_todo * len(plan.groups) * plan.problem.n_theta
    expected = n_ops * plan.options.n_iter // 2  # a guess: half the budget
    return SharedEncoder(jacobian=plan.strategy.jacobian, expected_products=expected)


def _compute(
    plan: _Plan, done: set[int], logger: logging.Logger
) -> tuple[dict[int, Tensor], dict[int, list[PowerIterationResult]]]:
    """Compute (or load) this rank's paths, saving each ``vals_{p}.pt`` atomically once checked."""
    opts, n_theta = plan.options, plan.problem.n_theta
    local: dict[int, Tensor] = {}
    convergence: dict[int, list[PowerIterationResult]] = {}
    previous: list[Tensor] | None = None  # init="chain": the last computed path's eigenvectors
    mine = set(plan.mine)
    shared = _shared_encoder(plan, len(mine - done))
    bar = tqdm(
        total=len(plan.mine),
        initial=len(done),
        desc="theta-IS warmup",
        unit="path",
        disable=not opts.progress or plan.rank != 0,
        dynamic_ncols=True,
    )
    with bar:
        for p in plan.paths:
            vectors = None
            if plan.stream is not None:  # every path's draws in order, whoever computes it
                vectors = start_vectors(
                    plan.stream, seed=opts.seed, path=p, groups=plan.groups, n_theta=n_theta
                )
            if p not in mine:
                continue
            if p in done:
                assert opts.save_dir is not None  # done is empty without a save_dir
                local[p] = load_vals(vals_path(opts.save_dir, p), n_theta=n_theta, n_groups=len(plan.groups))
                continue
            if vectors is None:
                vectors = previous or start_vectors(
                    None, seed=opts.seed, path=p, groups=plan.groups, n_theta=n_theta
                )
            vals, results = path_curvatures(
                plan.problem,
                plan.settings,
                groups=plan.groups,
                path_idx=p,
                init_vectors=vectors,
                shared=shared,
            )
            _report(p, vals, results, logger)
            vals = vals.detach().cpu()
            check_finite_vals(vals, p)  # nothing is written for a path with a NaN or inf
            if opts.save_dir is not None:
                atomic_save(vals, vals_path(opts.save_dir, p))
            local[p], convergence[p] = vals, results
            if opts.init == "chain":
                previous = [
                    res.eigenvectors.to(g[0].dtype) for res, g in zip(results, plan.groups, strict=True)
                ]
            bar.set_postfix_str(f"path {p}: " + ", ".join(f"{v:.4g}" for v in vals.reshape(-1).tolist()[:8]))
            bar.update(1)
    return local, convergence


def _report(p: int, vals: Tensor, results: list[PowerIterationResult], logger: logging.Logger) -> None:
    for g, res in enumerate(results):
        logger.info(f"path_idx = {p}, curr_vals = {vals[g]}")
        logger.debug(
            f"path_idx = {p}, group {g}: n_iter = {res.n_iters.tolist()}, "
            f"converged = {res.converged.tolist()}"
        )


def _check_determinism(plan: _Plan, logger: logging.Logger) -> None:
    """Warn (or, with ``strict_determinism``, raise on every rank) if encoder or synth is random."""
    b0 = plan.problem.batches[0]
    ok = check_is_deterministic(
        plan.problem.theta_fn, b0.theta_fn_kwargs, plan.problem.synth_fn, b0.synth_fn_kwargs, logger=logger
    )
    if plan.options.strict_determinism:
        _collective(
            lambda: _raise_if(not ok, "theta_fn or synth_fn is not deterministic (strict_determinism=True)"),
            plan.world,
        )


def _finish(
    plan: _Plan, local: dict[int, Tensor], state: ThetaISState, logger: logging.Logger
) -> dict[str, Any]:
    """Record the values in path order; write ``probs.pt`` (rank 0) when the range is complete."""
    for p in plan.paths:
        state.update_path(p, aggregate_vals(local[p], plan.options.agg))
    probs_config = {**plan.config, "min_prob_frac": state.min_prob_frac}
    save_dir = plan.options.save_dir
    if save_dir is not None and plan.paths == list(range(plan.problem.n_paths)):
        if plan.rank == 0:
            path = os.path.abspath(os.path.join(save_dir, PROBS_NAME))
            logger.info(f"Saving warmup SCRAPL sampling probabilities to {path}")
            save_probs_file(path, state.probs, probs_config)
        if plan.world > 1:
            wd.barrier()
    return probs_config


def run_warmup(
    path_loss: PathLoss,
    theta_fn: Callable[..., Tensor],
    synth_fn: Callable[..., Tensor],
    theta_fn_kwargs: Sequence[Mapping[str, Any]],
    params: Sequence[Tensor],
    *,
    n_paths: int,
    n_theta: int,
    synth_fn_kwargs: Sequence[Mapping[str, Any]] | None = None,
    options: WarmupOptions | None = None,
    state: ThetaISState | None = None,
    config: Mapping[str, Any] | None = None,
    strategy: Strategy | None = None,
    logger: logging.Logger | None = None,
) -> WarmupResult:
    """Run the θ-IS warmup over the paths ``[options.start_path_idx, options.end_path_idx)``.

    For each path p: ``θ = theta_fn(**kw)`` ``(B, nθ)``, ``x̂ = synth_fn(θ, **skw)``,
    ``L_p = path_loss(x̂, kw["x"], p)``, and for every u the power iteration of ``A_u``
    (``A_u v = ∇_w⟨g_u(w), v⟩``, ``g_u = Σ_b ∂L_p/∂θ_{b,u} ∇_w θ_{b,u}``) gives ``|λ_{u,p}|``.
    With several batches the operators are summed over batches. A path whose values are not all
    finite raises :class:`~scrapl.warmup.curvature.NonFiniteCurvatureError` (path and θ index
    named) and writes nothing. The values of each path are saved atomically as
    ``save_dir/vals_{p}.pt`` (``(n_groups, nθ)``), paths whose file exists are loaded instead of
    recomputed, and ``probs.pt`` is written (rank 0) when the range is complete. Under
    ``torch.distributed`` the paths are dealt round-robin over the ranks and the values
    all-reduced: every rank returns the same values and probabilities as a one-process run.

    Args:
        path_loss: ``path_loss(x_hat, x, path_idx) -> scalar``.
        theta_fn: the encoder; returns ``(B, nθ)``.
        synth_fn: the synth; ``synth_fn(θ, **synth_fn_kwargs[b])`` returns ``x̂``.
        theta_fn_kwargs: one dict per batch; each holds the target signal under ``"x"``.
        params: the encoder weights ``w`` (no ``.grad`` yet).
        n_paths: number of paths P.
        n_theta: number of synth parameters nθ.
        synth_fn_kwargs: one dict per batch, or None.
        options: the user's options (:class:`~scrapl.warmup.WarmupOptions`, default: its defaults).
        state: the probability state to record the values in (default: a fresh one, no floor).
        config: the caller's JSON-serialisable configuration (e.g. JTFS hyperparameters), recorded
            in ``meta.json``.
        strategy: speed-only overrides for benchmarks and tests (default: chosen automatically).
        logger: where to log (default ``scrapl.warmup``).

    Returns:
        A :class:`WarmupResult`.

    Raises:
        TypeError / ValueError: bad arguments (checked before any compute), a save_dir holding a
            different configuration, bad files, non-determinism with ``strict_determinism``,
            non-finite curvature values.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> enc, dec = torch.nn.Linear(8, 2), torch.nn.Linear(2, 8)
        >>> x = torch.randn(3, 1, 8)
        >>> res = run_warmup(lambda x_hat, x, p: (p + 1) * ((x_hat - x) ** 2).mean(),
        ...                  lambda x: enc(x.squeeze(1)), lambda th: dec(th).unsqueeze(1),
        ...                  [{"x": x}], list(enc.parameters()), n_paths=3, n_theta=2,
        ...                  options=WarmupOptions(n_iter=200, tol=1e-7, save_dir=None, progress=False),
        ...                  logger=logging.getLogger("doc"))
        >>> res.vals[0].shape, res.probs.shape
        (torch.Size([1, 2]), torch.Size([3]))
        >>> [round(p, 3) for p in res.probs.tolist()]  # curvature ∝ p + 1
        [0.167, 0.333, 0.5]
    """
    logger = logger or log
    options = options or WarmupOptions()
    _, world = wd.rank_and_world(options.distributed)
    problem = _collective(
        lambda: WarmupProblem.build(
            path_loss,
            theta_fn,
            synth_fn,
            theta_fn_kwargs,
            params,
            n_paths=n_paths,
            n_theta=n_theta,
            synth_fn_kwargs=synth_fn_kwargs,
        ),
        world,
    )
    state = _check_state(state, problem)
    extra = _check_config(config)
    plan = _plan(problem, options, strategy or Strategy(), extra)
    done = _prepare_dir(plan, options.save_dir) if options.save_dir is not None else set()
    _check_determinism(plan, logger)
    logger.info(
        f"Starting warmup_lc_hvp with agg = {options.agg} for {len(problem.params)} parameter(s) and "
        f"{len(problem.batches)} batch(es), {options.n_iter} iter (multibatch = {plan.settings.multibatch})"
    )
    if done and options.save_dir is not None:
        where = os.path.abspath(options.save_dir)
        logger.info(f"Resuming: {len(done)} of {len(plan.mine)} path(s) already in {where}")
    local, convergence = _collective(lambda: _compute(plan, done, logger), plan.world)
    if plan.world > 1:
        local = wd.gather_vals(local, plan.paths, (len(plan.groups), problem.n_theta))
    if plan.stream is not None:
        torch.set_rng_state(plan.stream.final_state())
    probs_config = _finish(plan, local, state, logger)
    return WarmupResult(
        vals={p: local[p] for p in plan.paths},
        probs=state.probs.clone(),
        computed=sorted(convergence),
        convergence=convergence,
        config=probs_config,
    )


def _check_state(state: ThetaISState | None, problem: WarmupProblem) -> ThetaISState:
    if state is None:
        return ThetaISState(n_paths=problem.n_paths, n_theta=problem.n_theta)
    if not isinstance(state, ThetaISState) or (state.n_paths, state.n_theta) != (
        problem.n_paths,
        problem.n_theta,
    ):
        raise ValueError(
            f"state must be a ThetaISState with n_paths={problem.n_paths}, n_theta={problem.n_theta}"
        )
    return state


def _check_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    try:
        json.dumps(dict(config or {}), sort_keys=True)
    except (TypeError, ValueError) as err:
        raise TypeError(f"config must be JSON-serialisable: {err}") from err
    return dict(config or {})


def _raise_if(cond: bool, message: str) -> None:
    if cond:
        raise ValueError(message)
