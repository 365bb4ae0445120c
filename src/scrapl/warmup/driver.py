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
from .checks import (
    check_choice,
    check_is_deterministic,
    check_warmup_inputs,
    data_sha256,
    tensor_sha256,
)
from .curvature import (
    EigenMethod,
    Engine,
    InitMode,
    JacobianMode,
    SharedEncoder,
    path_curvatures,
    start_vectors,
)
from .factored import HessianMode
from .files import (
    PROBS_NAME,
    atomic_save,
    existing_val_paths,
    load_vals,
    prepare_save_dir,
    save_probs_file,
    vals_path,
)
from .hvp import PathLoss, ThetaBatching, WarmupBatch
from .power import PowerIterationResult, ReferenceInitStream
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
        config: the configuration recorded in ``meta.json`` / ``probs.pt``.
    """

    vals: dict[int, Tensor]
    probs: Tensor
    computed: list[int]
    convergence: dict[int, list[PowerIterationResult]]
    config: dict[str, Any]


@dataclass(frozen=True)
class _Run:
    """Validated inputs and derived settings of one warmup call."""

    fns: dict[str, Any]  # path_loss, theta_fn, synth_fn
    batches: list[WarmupBatch]
    params: list[Tensor]
    groups: list[list[Tensor]]
    paths: list[int]
    mine: list[int]
    rank: int
    world: int
    opts: dict[str, Any]  # n_iter, tol, engine, theta_batching, hessian, multibatch
    jacobian: JacobianMode
    seed: int
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


def _check_options(
    *, engine, theta_batching, hessian, jacobian, method, init, seed, state, config, n_paths, n_theta
) -> None:
    check_choice("engine", engine, ("factored", "direct"))
    check_choice("method", method, ("power", "arnoldi"))
    check_choice("theta_batching", theta_batching, (None, "vmap", "loop"))
    check_choice("hessian", hessian, ("auto", "block", "full"))
    check_choice("jacobian", jacobian, ("auto", "on", "off"))
    check_choice("init", init, ("seeded", "reference", "chain"))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if state is not None and (
        not isinstance(state, ThetaISState) or (state.n_paths, state.n_theta) != (n_paths, n_theta)
    ):
        raise ValueError(f"state must be a ThetaISState with n_paths={n_paths}, n_theta={n_theta}")
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    try:
        json.dumps(dict(config or {}), sort_keys=True)
    except (TypeError, ValueError) as err:
        raise TypeError(f"config must be JSON-serialisable: {err}") from err


def _config(run_args: dict[str, Any], batches, params, groups, multibatch, rng_state) -> dict[str, Any]:
    """Everything the values depend on (recorded in meta.json and probs.pt)."""
    a = run_args
    reference = a["init"] == "reference"
    return {
        **dict(a["config"] or {}),
        "n_paths": a["n_paths"],
        "n_theta": a["n_theta"],
        "n_iter": a["n_iter"],
        "tol": float(a["tol"]),
        "agg": a["agg"],
        "n_groups": len(groups),
        "param_shapes": [list(p.shape) for p in params],
        "n_batches": len(batches),
        "multibatch": multibatch,
        "engine": a["engine"],
        "hessian": a["hessian"] if a["engine"] == "factored" else None,
        "init": a["init"],
        "seed": None if reference else a["seed"],
        "target_key": a["target_key"],
        "data_sha256": data_sha256(batches),
        "params_sha256": tensor_sha256(params),
        "init_rng_sha256": tensor_sha256([rng_state]) if reference else None,
        **({"method": a["method"]} if a["method"] != "power" else {}),  # (older files have none)
    }


def _plan(a: dict[str, Any], distributed: bool | None) -> _Run:
    """Check every argument (on every rank, before any compute) and derive the settings."""
    rank, world = wd.rank_and_world(distributed)

    def check():
        batches, params, start, end = check_warmup_inputs(
            **{
                k: a[k]
                for k in (
                    "path_loss",
                    "theta_fn",
                    "synth_fn",
                    "theta_fn_kwargs",
                    "synth_fn_kwargs",
                    "params",
                    "n_paths",
                    "n_theta",
                    "start_path_idx",
                    "end_path_idx",
                    "n_iter",
                    "tol",
                    "agg",
                    "target_key",
                    "save_dir",
                )
            }
        )
        _check_options(
            **{
                k: a[k]
                for k in (
                    "engine",
                    "theta_batching",
                    "hessian",
                    "jacobian",
                    "method",
                    "init",
                    "seed",
                    "state",
                    "config",
                    "n_paths",
                    "n_theta",
                )
            }
        )
        return batches, params, start, end

    batches, params, start, end = _collective(check, world)
    groups = [params] if a["agg"] == "none" else [[p] for p in params]
    multibatch = a["force_multibatch"] or len(batches) > 1
    rng_state = torch.get_rng_state()
    if a["init"] == "reference" and world > 1:
        rng_state = wd.broadcast_tensor(rng_state)  # every rank replays rank 0's stream
    config = _config(a, batches, params, groups, multibatch, rng_state)
    if world > 1 and not wd.check_same_config(json.dumps(config, sort_keys=True)):
        raise ValueError(
            "ranks disagree on the warmup configuration (arguments, data or params differ between ranks)"
        )
    stream = None
    if a["init"] == "reference":
        stream = ReferenceInitStream(rng_state, draw_normal=not params[0].is_cuda)
    paths = list(range(start, end))
    batching = a["theta_batching"] or ("vmap" if params[0].is_cuda else "loop")
    opts = dict(
        n_iter=a["n_iter"],
        tol=a["tol"],
        engine=a["engine"],
        theta_batching=batching,
        hessian=a["hessian"],
        multibatch=multibatch,
        method=a["method"],
    )
    return _Run(
        fns={k: a[k] for k in ("path_loss", "theta_fn", "synth_fn")},
        batches=batches,
        params=params,
        groups=groups,
        paths=paths,
        mine=wd.shard_paths(paths, rank, world),
        rank=rank,
        world=world,
        opts=opts,
        jacobian=a["jacobian"],
        seed=a["seed"],
        stream=stream,
        config=config,
    )


def _prepare_dir(run: _Run, save_dir) -> set[int]:
    """Record/check the configuration in ``save_dir``; return this rank's paths already done."""

    def record() -> None:
        if run.rank == 0:
            prepare_save_dir(save_dir, run.config)

    _collective(record, run.world)
    if run.world > 1:  # the others check what rank 0 recorded
        _collective(lambda: prepare_save_dir(save_dir, run.config), run.world)
    return set(existing_val_paths(save_dir)) & set(run.mine)


def _compute(
    run: _Run, save_dir, done: set[int], *, progress: bool, logger: logging.Logger
) -> tuple[dict[int, Tensor], dict[int, list[PowerIterationResult]]]:
    """Compute (or load) this rank's paths, saving each ``vals_{p}.pt`` atomically."""
    local, convergence = {}, {}
    previous: list[Tensor] | None = None  # init="chain": the last computed path's eigenvectors
    mine = set(run.mine)
    n_theta = run.config["n_theta"]
    shared = None
    if run.opts["engine"] == "factored":
        n_todo = len(mine - done)
        expected = n_todo * len(run.groups) * n_theta * run.opts["n_iter"] // 2  # a guess: half the budget
        shared = SharedEncoder(jacobian=run.jacobian, expected_products=expected)
    with tqdm(
        total=len(run.mine),
        initial=len(done),
        desc="theta-IS warmup",
        unit="path",
        disable=not progress or run.rank != 0,
        dynamic_ncols=True,
    ) as bar:
        for p in run.paths:
            vectors = None
            if run.stream is not None:  # every path's draws in order, whoever computes it
                vectors = start_vectors(run.stream, seed=run.seed, path=p, groups=run.groups, n_theta=n_theta)
            if p not in mine:
                continue
            if p in done:
                local[p] = load_vals(vals_path(save_dir, p), n_theta=n_theta, n_groups=len(run.groups))
                continue
            if vectors is None and previous is not None:  # init="chain"
                vectors = previous
            if vectors is None:
                vectors = start_vectors(None, seed=run.seed, path=p, groups=run.groups, n_theta=n_theta)
            vals, results = path_curvatures(
                **run.fns,
                batches=run.batches,
                groups=run.groups,
                path_idx=p,
                n_theta=n_theta,
                init_vectors=vectors,
                shared=shared,
                **run.opts,
            )
            for g, res in enumerate(results):
                logger.info(f"path_idx = {p}, curr_vals = {vals[g]}")
                logger.debug(
                    f"path_idx = {p}, group {g}: n_iter = {res.n_iters.tolist()}, "
                    f"converged = {res.converged.tolist()}"
                )
            if save_dir is not None:
                atomic_save(vals.detach().cpu(), vals_path(save_dir, p))
            local[p], convergence[p] = vals.detach().cpu(), results
            if run.config["init"] == "chain":
                previous = [
                    res.eigenvectors.to(g[0].dtype) for res, g in zip(results, run.groups, strict=True)
                ]
            bar.set_postfix_str(f"path {p}: " + ", ".join(f"{v:.4g}" for v in vals.reshape(-1).tolist()[:8]))
            bar.update(1)
    return local, convergence


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
    start_path_idx: int = 0,
    end_path_idx: int | None = None,
    save_dir: str | os.PathLike | None = "scrapl_warmup",
    n_iter: int = 20,
    tol: float = 1e-4,
    agg: str = "none",
    force_multibatch: bool = False,
    engine: Engine = "factored",
    theta_batching: ThetaBatching | None = None,
    hessian: HessianMode = "auto",
    jacobian: JacobianMode = "auto",
    method: EigenMethod = "power",
    init: InitMode = "seeded",
    seed: int = 0,
    state: ThetaISState | None = None,
    min_prob_frac: float = 0.0,
    config: Mapping[str, Any] | None = None,
    target_key: str = "x",
    distributed: bool | None = None,
    strict_determinism: bool = False,
    progress: bool = True,
    logger: logging.Logger | None = None,
) -> WarmupResult:
    """Run the θ-IS warmup over paths ``[start_path_idx, end_path_idx)``.

    For each path p: ``θ = theta_fn(**kw)`` ``(B, nθ)``, ``x̂ = synth_fn(θ, **skw)``,
    ``L_p = path_loss(x̂, kw[target_key], p)``, and for every u the power iteration of ``A_u``
    (``A_u v = ∇_w⟨g_u(w), v⟩``, ``g_u = Σ_b ∂L_p/∂θ_{b,u} ∇_w θ_{b,u}``) gives ``|λ_{u,p}|``.
    With several batches the operators are summed over batches. The values of each path are saved
    atomically as ``save_dir/vals_{p}.pt`` (``(n_groups, nθ)``), paths whose file exists are
    loaded instead of recomputed, and ``probs.pt`` is written (rank 0) when the range is complete.
    Under ``torch.distributed`` the paths are dealt round-robin over the ranks and the values
    all-reduced: every rank returns the same values and probabilities as a one-process run.

    Args:
        path_loss: ``path_loss(x_hat, x, path_idx) -> scalar``.
        theta_fn: the encoder; returns ``(B, nθ)``.
        synth_fn: the synth; ``synth_fn(θ, **synth_fn_kwargs[b])`` returns ``x̂``.
        theta_fn_kwargs: one dict per batch; each holds the target signal under ``target_key``.
        params: the encoder weights ``w`` (no ``.grad`` yet).
        n_paths: number of paths P.
        n_theta: number of synth parameters nθ.
        synth_fn_kwargs: one dict per batch, or None.
        start_path_idx: first path of the range (default 0).
        end_path_idx: end of the range, exclusive (None: P).
        save_dir: warmup directory, or None to keep everything in memory. Default "scrapl_warmup".
        n_iter: power-iteration steps per operator. Default 20.
        tol: power-iteration early-stopping tolerance. Default 1e-4.
        agg: ``"none"``: one operator over all params; ``"mean"``/``"max"``/``"med"``: one per
            tensor, values reduced per θ (less memory).
        force_multibatch: recompute forwards per product even with one batch.
        engine: ``"factored"`` (default: θ-space Hessian, nθ double backwards per path) or
            ``"direct"`` (differentiate through the loss at every product, like the reference).
        theta_batching: ``"vmap"`` / ``"loop"`` over θ; None: vmap on CUDA, loop otherwise.
        hessian: ``"auto"``, ``"block"`` or ``"full"`` θ-space Hessian (factored engine). The
            structure an "auto" probe finds on the first path is kept for the run's other paths.
        jacobian: ``"auto"``, ``"on"`` or ``"off"``: build the encoder's Jacobian once per run
            (factored engine, one batch) so that each product differentiates the encoder once
            instead of twice (see :class:`~scrapl.warmup.curvature.SharedEncoder`; "auto": when the
            run expects twice as many products as θ has entries, and J fits in 256 MiB). The values
            agree with "off" to float rounding.
        method: ``"power"`` (default: power iteration, the reference's estimator; ``tol`` bounds
            the relative change of the Rayleigh quotient) or ``"arnoldi"`` (the eigenvalue of
            largest magnitude of the operator on the Krylov subspace of the same products;
            ``tol`` bounds the relative residual ``‖A x − λ x‖ / |λ|``, a real convergence test:
            see :mod:`~scrapl.warmup.arnoldi`). Recorded in the configuration.
        init: ``"seeded"`` (default: unit Gaussian start vectors from ``(seed, path, group)``) or
            ``"reference"`` (scrapl-loss 0.1.0's U[0,1) draws, replayed from the global CPU RNG
            state at the start; the global RNG ends where the reference would leave it; the
            start state is part of the recorded configuration, so resuming needs the same seed), or
            ``"chain"``: each path starts from the eigenvectors of the path this process computed
            before it (the first one, and the first after a resume, from ``"seeded"``). Neighbouring
            paths have similar operators, so fewer products are needed (the demo's encoder, 8
            examples, every third path: 239 instead of 370); the values then depend on the order
            the paths are computed in (shard, resume point), within the power iteration's accuracy.
            With power iteration and a loose ``tol``, a start close to another eigenvector can
            stop on it: on the demo (32 examples, seed 1, tolerance 1e-3) one θ_AM value read 20.8
            for 80.3 (a seeded start gave 80.0). Arnoldi's residual test cannot tell either: a
            start near an eigenvector gives an accurate, but not the dominant, eigenpair.
        seed: base seed of ``init="seeded"`` (and of ``"chain"``'s first start).
        state: the probability state to record the values in (default: a fresh one).
        min_prob_frac: floor of a fresh state.
        config: caller's JSON-serialisable configuration (e.g. JTFS hyperparameters), recorded in
            ``meta.json`` and ``probs.pt``.
        target_key: the key of the target signal in ``theta_fn_kwargs``. Default "x".
        distributed: None: shard if torch.distributed is initialised; False: never; True: require.
        strict_determinism: raise instead of warning when encoder or synth is not deterministic.
        progress: show a tqdm bar over paths (rank 0).
        logger: where to log (default ``scrapl.warmup``).

    Returns:
        A :class:`WarmupResult`.

    Raises:
        TypeError / ValueError: bad arguments (checked before any compute), a save_dir holding a
            different configuration, bad files, non-determinism with ``strict_determinism``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> enc, dec = torch.nn.Linear(8, 2), torch.nn.Linear(2, 8)
        >>> x = torch.randn(3, 1, 8)
        >>> res = run_warmup(lambda x_hat, x, p: (p + 1) * ((x_hat - x) ** 2).mean(),
        ...                  lambda x: enc(x.squeeze(1)), lambda th: dec(th).unsqueeze(1),
        ...                  [{"x": x}], list(enc.parameters()), n_paths=3, n_theta=2,
        ...                  n_iter=200, tol=1e-7, save_dir=None, progress=False,
        ...                  logger=logging.getLogger("doc"))
        >>> res.vals[0].shape, res.probs.shape
        (torch.Size([1, 2]), torch.Size([3]))
        >>> [round(p, 3) for p in res.probs.tolist()]  # curvature ∝ p + 1
        [0.167, 0.333, 0.5]
    """
    logger = logger or log
    args = dict(locals())
    run = _plan(args, distributed)
    done = _prepare_dir(run, save_dir) if save_dir is not None else set()
    b0 = run.batches[0]
    deterministic = check_is_deterministic(
        theta_fn, b0.theta_fn_kwargs, synth_fn, b0.synth_fn_kwargs, logger=logger
    )
    if strict_determinism:
        _collective(
            lambda: _raise_if(
                not deterministic, "theta_fn or synth_fn is not deterministic (strict_determinism=True)"
            ),
            run.world,
        )
    logger.info(
        f"Starting warmup_lc_hvp with agg = {agg} for {len(run.params)} parameter(s) and "
        f"{len(run.batches)} batch(es), {n_iter} iter "
        f"(multibatch = {run.opts['multibatch']})"
    )
    if done and save_dir is not None:
        logger.info(
            f"Resuming: {len(done)} of {len(run.mine)} path(s) already in {os.path.abspath(save_dir)}"
        )
    local, convergence = _collective(
        lambda: _compute(run, save_dir, done, progress=progress, logger=logger), run.world
    )
    if run.world > 1:
        local = wd.gather_vals(local, run.paths, (len(run.groups), n_theta))
    if run.stream is not None:
        torch.set_rng_state(run.stream.final_state())
    if state is None:
        state = ThetaISState(n_paths=n_paths, n_theta=n_theta, min_prob_frac=min_prob_frac)
    for p in run.paths:
        state.update_path(p, aggregate_vals(local[p], agg))
    probs_config = {**run.config, "min_prob_frac": state.min_prob_frac}
    if save_dir is not None and run.paths == list(range(n_paths)):
        if run.rank == 0:
            path = os.path.abspath(os.path.join(save_dir, PROBS_NAME))
            logger.info(f"Saving warmup SCRAPL sampling probabilities to {path}")
            save_probs_file(path, state.probs, probs_config)
        if run.world > 1:
            wd.barrier()
    return WarmupResult(
        vals={p: local[p] for p in run.paths},
        probs=state.probs.clone(),
        computed=sorted(convergence),
        convergence=convergence,
        config=probs_config,
    )


def _raise_if(cond: bool, message: str) -> None:
    if cond:
        raise ValueError(message)
