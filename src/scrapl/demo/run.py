"""Orchestration of the sound-matching comparison: build, warm up, train every run, save, report.

``run_demo(config, out_dir)`` makes the runs of ``config.runs`` on one data split, from one set of
initial weights, and writes into ``out_dir``: ``metrics.json`` (settings, results, timings, θ-IS
probabilities), ``metrics.csv`` (one row per run), ``val_history.csv`` (the validation curves),
``val_error.png``, ``theta_is_probs.png`` and the warmup directory ``scrapl_warmup/``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .._io import atomic_write_text
from ..loss import SCRAPLLoss
from ..warmup import WarmupResult
from .config import DemoConfig
from .data import DemoData, make_data
from .encoder import Encoder, LogFreqSpectrogram
from .figures import RUN_LABELS, plot_path_probs, plot_val_error
from .synth import AM_RANGES, FM_RANGES, ChirpletSynth
from .train import RunHistory, audio_objective, supervised_objective, train_run

__all__ = [
    "DemoResult",
    "run_demo",
    "build_synth",
    "build_encoder",
    "build_loss",
    "theta_is_warmup",
    "format_table",
    "write_outputs",
]


@dataclass
class DemoResult:
    """Everything a comparison produced.

    Attributes:
        config: the settings. histories: one :class:`RunHistory` per run, in order.
        probs: the θ-IS path probabilities ``(P,)`` (None without a θ-IS run).
        paths: the JTFS path metadata. warmup_seconds: wall time of the θ-IS warmup.
        seconds: wall time of the whole comparison. environment: versions, threads, device.
    """

    config: DemoConfig
    histories: list[RunHistory] = field(default_factory=list)
    probs: torch.Tensor | None = None
    paths: list = field(default_factory=list)
    warmup_seconds: float = 0.0
    seconds: float = 0.0
    environment: dict = field(default_factory=dict)


def build_synth(cfg: DemoConfig, device: str | torch.device = "cpu") -> ChirpletSynth:
    """The chirplet synthesizer of ``cfg``."""
    if cfg.am not in AM_RANGES or cfg.fm not in FM_RANGES:
        raise ValueError(
            f"am must be one of {sorted(AM_RANGES)} and fm one of {sorted(FM_RANGES)}, "
            f"got am={cfg.am!r}, fm={cfg.fm!r}"
        )
    return ChirpletSynth(
        n_samples=cfg.n_samples,
        sr=cfg.sr,
        am_range=AM_RANGES[cfg.am],
        fm_range=FM_RANGES[cfg.fm],
        max_shift=cfg.max_shift,
        unit_energy=cfg.unit_energy,
    ).to(device)


def build_encoder(cfg: DemoConfig, device: str | torch.device = "cpu") -> Encoder:
    """The encoder of ``cfg``, initialised from ``cfg.seed`` (the same weights for every run)."""
    torch.manual_seed(cfg.seed)
    frontend = LogFreqSpectrogram(sr=cfg.sr, n_fft=cfg.n_fft, hop=cfg.hop)
    return Encoder(channels=cfg.encoder_channels, hidden=cfg.hidden, frontend=frontend).to(device)


def build_loss(cfg: DemoConfig, device: str | torch.device = "cpu") -> SCRAPLLoss:
    """A fresh :class:`SCRAPLLoss` (P-Adam and P-SAGA on, uniform sampling) for ``cfg``."""
    return SCRAPLLoss(
        cfg.n_samples,
        cfg.J,
        cfg.Q1,
        cfg.Q2,
        cfg.J_fr,
        cfg.Q_fr,
        T=cfg.T,
        use_rho_log1p=cfg.use_rho_log1p,
        grad_mult=1.0 if cfg.use_rho_log1p else 1e8,
        use_p_adam=True,
        use_p_saga=True,
        n_theta=ChirpletSynth.n_theta,
        min_prob_frac=cfg.min_prob_frac,
    ).to(device)


def theta_is_warmup(
    cfg: DemoConfig,
    loss: SCRAPLLoss,
    encoder: nn.Module,
    synth: ChirpletSynth,
    data: DemoData,
    *,
    save_dir: str | os.PathLike | None,
    progress: bool = True,
) -> WarmupResult:
    """Set ``loss.probs`` by the θ-IS warmup on the first ``cfg.warmup_batch`` training examples.

    ``cfg.warmup_on == "encoder"`` (the paper's): the curvature, with respect to the encoder's
    initial weights ``w``, of each path's distance between the examples and the reconstructions
    of the encoder's predictions, ``|λ_max(A_u)|`` of :meth:`SCRAPLLoss.warmup_lc_hvp`.
    ``"theta"``: the same operator with the synth parameters themselves as the weights, at
    predictions ``θ̂ ~ U[0, 1]^2`` drawn from ``cfg.seed`` (θ̂ is then its own encoder: ``A_u`` is
    the ``θ_u`` block of the Hessian ``∂²L_p / ∂θ̂²``, whose eigenvalues are the per-example
    curvatures ``∂²L_p / ∂θ̂_{b,u}²``), independent of the encoder's random initialisation.
    The reconstructions get their own fixed shifts (drawn from ``cfg.seed``) so that the warmup
    sees the same misalignment as training and is deterministic. Returns the
    :class:`~scrapl.warmup.WarmupResult` (values per path, probabilities, convergence).
    """
    device = next(encoder.parameters()).device
    b = data.train.batch(torch.arange(min(cfg.warmup_batch, len(data.train))))
    x = synth(b.theta.to(device), b.shifts.to(device))
    shifts_hat = synth.random_shifts(len(b), generator=torch.Generator().manual_seed(cfg.seed + 2))
    if cfg.warmup_on == "theta":
        gen = torch.Generator().manual_seed(cfg.seed + 3)
        theta_hat = torch.rand(len(b), synth.n_theta, generator=gen).to(device).requires_grad_()
        theta_fn, params = (lambda x: theta_hat), [theta_hat]
    else:
        theta_fn, params = (lambda x: encoder(x)), list(encoder.parameters())
    return loss.warmup_lc_hvp(
        theta_fn,
        lambda theta, shifts: synth(theta, shifts),
        [{"x": x}],
        params,
        synth_fn_kwargs=[{"shifts": shifts_hat.to(device)}],
        save_dir=None if save_dir is None else str(save_dir),
        n_iter=cfg.warmup_iters,
        tol=cfg.warmup_tol,
        method=cfg.warmup_method,
        init=cfg.warmup_init,
        seed=cfg.seed,
        progress=progress,
    )


def _train(
    name: str,
    cfg: DemoConfig,
    synth: ChirpletSynth,
    data: DemoData,
    encoder: nn.Module,
    objective: Callable,
    optimizer: torch.optim.Optimizer,
    progress: bool,
) -> RunHistory:
    # the path draws (global RNG): the same sequence of uniforms for both SCRAPL runs
    torch.manual_seed(cfg.seed if cfg.draw_seed is None else cfg.draw_seed)
    return train_run(
        name,
        encoder,
        synth,
        data,
        objective,
        optimizer,
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        eval_every=cfg.eval_every,
        seed=cfg.seed,
        decay_frac=cfg.decay_frac,
        progress=progress,
        position=_BAR_POSITION,
    )


def _audio_objective(loss_fn, cfg: DemoConfig, synth: ChirpletSynth):
    return audio_objective(loss_fn, synth, generator=torch.Generator().manual_seed(cfg.seed + 1))


_BAR_POSITION: int | None = None  # this process's progress-bar line (set in workers)


@dataclass
class _RunOutput:
    """What one run returns to the orchestrator (picklable: runs may execute in worker processes)."""

    history: RunHistory
    probs: torch.Tensor | None = None
    paths: list = field(default_factory=list)
    warmup_seconds: float = 0.0


def _scrapl_run(name: str, cfg: DemoConfig, synth, data, device, out_dir, progress) -> _RunOutput:
    encoder = build_encoder(cfg, device)
    loss = build_loss(cfg, device)
    out = _RunOutput(RunHistory(name), paths=loss.paths)
    if name == "scrapl_theta_is":
        t0 = time.perf_counter()
        save_dir = None if out_dir is None else Path(out_dir) / "scrapl_warmup"
        theta_is_warmup(cfg, loss, encoder, synth, data, save_dir=save_dir, progress=progress)
        out.warmup_seconds = time.perf_counter() - t0
        out.probs = loss.probs.clone()
    loss.attach_params(encoder.parameters())
    out.history = _train(
        name,
        cfg,
        synth,
        data,
        encoder,
        _audio_objective(loss, cfg, synth),
        torch.optim.SGD(encoder.parameters(), lr=cfg.lr_scrapl),
        progress,
    )
    out.history.extra["path_counts"] = [int(loss.path_counts.get(p, 0)) for p in range(loss.n_paths)]
    loss.attach_params([])
    return out


def _mss_run(cfg: DemoConfig, synth, data, device, progress) -> RunHistory:
    try:
        import auraloss
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the MSS run needs auraloss: pip install 'scrapl[demo]'") from err
    encoder = build_encoder(cfg, device)
    mss = auraloss.freq.MultiResolutionSTFTLoss().to(device)
    return _train(
        "mss",
        cfg,
        synth,
        data,
        encoder,
        _audio_objective(mss, cfg, synth),
        torch.optim.Adam(encoder.parameters(), lr=cfg.lr_adam),
        progress,
    )


def _supervised_run(cfg: DemoConfig, synth, data, device, progress) -> RunHistory:
    encoder = build_encoder(cfg, device)
    return _train(
        "supervised",
        cfg,
        synth,
        data,
        encoder,
        supervised_objective,
        torch.optim.Adam(encoder.parameters(), lr=cfg.lr_adam),
        progress,
    )


def _run_one(
    name: str,
    cfg: DemoConfig,
    device: str,
    out_dir,
    progress: bool,
    threads: int | None = None,
    position: int | None = None,
    log_level: int | None = None,
) -> _RunOutput:
    """Make run ``name`` from scratch (synth, data and weights all come from ``cfg.seed``).

    ``threads``, ``position`` (of its progress bar) and ``log_level`` (of the ``scrapl`` loggers)
    are set for a worker process.
    """
    global _BAR_POSITION
    if threads is not None:
        torch.set_num_threads(threads)
    if log_level is not None:
        logging.getLogger("scrapl").setLevel(log_level)
    _BAR_POSITION = position
    synth = build_synth(cfg, device)
    data = make_data(synth, n_train=cfg.n_train, n_val=cfg.n_val, n_test=cfg.n_test, seed=cfg.seed)
    if name.startswith("scrapl"):
        return _scrapl_run(name, cfg, synth, data, device, out_dir, progress)
    if name == "mss":
        return _RunOutput(_mss_run(cfg, synth, data, device, progress))
    return _RunOutput(_supervised_run(cfg, synth, data, device, progress))


def run_demo(
    cfg: DemoConfig,
    out_dir: str | os.PathLike | None,
    *,
    device: str = "cpu",
    progress: bool = True,
    workers: int = 1,
    threads: int | None = None,
) -> DemoResult:
    """Make every run of ``cfg`` and, if ``out_dir`` is given, write metrics and figures there.

    Every run is independent and starts from the same seed, so with ``workers > 1`` (CPU only) the
    runs execute in that many processes at once, each with ``threads`` torch threads (default
    ``cpu_count // workers``), and the results are the same as one after the other.

    Example:
        >>> from scrapl.demo.config import preset
        >>> result = run_demo(preset("quick"), None, progress=False)  # doctest: +SKIP
        >>> [h.name for h in result.histories]  # doctest: +SKIP
        ['scrapl_theta_is', 'scrapl_uniform', 'mss', 'supervised']
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    t0 = time.perf_counter()
    result = DemoResult(cfg)
    workers = min(workers, len(cfg.runs)) if str(device) == "cpu" else 1
    if workers == 1:
        outputs = [_run_one(name, cfg, device, out_dir, progress) for name in cfg.runs]
        result.environment = _environment(device, torch.get_num_threads(), workers)
    else:
        threads = threads or max(1, (os.cpu_count() or 1) // workers)
        result.environment = _environment(device, threads, workers)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            level = logging.getLogger("scrapl").level
            futures = [
                pool.submit(_run_one, name, cfg, device, out_dir, progress, threads, i, level)
                for i, name in enumerate(cfg.runs)
            ]  # the longest runs are listed first
            outputs = [f.result() for f in futures]
    for out in outputs:
        result.histories.append(out.history)
        if out.paths:
            result.paths = out.paths
        if out.probs is not None:
            result.probs, result.warmup_seconds = out.probs, out.warmup_seconds
    result.seconds = time.perf_counter() - t0
    if out_dir is not None:
        write_outputs(result, out_dir)
    return result


def _environment(device: str, threads: int, workers: int) -> dict:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "threads_per_run": threads,
        "parallel_runs": workers,
        "cpu_count": os.cpu_count(),
        "device": str(device),
    }


def format_table(result: DemoResult) -> str:
    """The results as a fixed-width text table (held-out test L1 error, ‰ of each range)."""
    rows = [("run", "θ_AM L1 (‰)", "θ_FM L1 (‰)", "mean (‰)", "time (s)")]
    for h in result.histories:
        am, fm = (1000 * v for v in h.test_l1)
        seconds = h.seconds + (result.warmup_seconds if h.name == "scrapl_theta_is" else 0.0)
        rows.append(
            (
                RUN_LABELS.get(h.name, h.name),
                f"{am:.0f}",
                f"{fm:.0f}",
                f"{(am + fm) / 2:.0f}",
                f"{seconds:.0f}",
            )
        )
    rows.append(("always predict the middle (reference)", "250", "250", "250", "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    note = (
        f"held-out test set: {result.config.n_test} examples; θ-IS warmup "
        f"{result.warmup_seconds:.0f} s (included in its run's time); total {result.seconds:.0f} s"
    )
    return "\n".join(lines + [note])


def _metrics(result: DemoResult) -> dict:
    runs = {}
    for h in result.histories:
        runs[h.name] = {
            "label": RUN_LABELS.get(h.name, h.name),
            "test_l1": {"am": h.test_l1[0], "fm": h.test_l1[1]},
            "test_l1_permille": {"am": 1000 * h.test_l1[0], "fm": 1000 * h.test_l1[1]},
            "seconds": h.seconds,
            "val_steps": h.steps,
            "val_l1": [{"am": am, "fm": fm} for am, fm in h.val_l1],
            "train_loss": h.train_loss,
            **h.extra,
        }
    paths = [
        {
            "idx": p.idx,
            "n2": p.n2,
            "n_fr": p.n_fr,
            "j2": p.j2,
            "j_fr": p.j_fr,
            "spin": p.spin,
            "rate_hz": p.rate_hz(result.config.sr),
            "scale_cycles_per_octave": p.scale_cycles_per_octave,
        }
        for p in result.paths
    ]
    return {
        "config": result.config.to_dict(),
        "environment": result.environment,
        "runs": runs,
        "warmup_seconds": result.warmup_seconds,
        "total_seconds": result.seconds,
        "theta_is_probs": None if result.probs is None else result.probs.tolist(),
        "paths": paths,
    }


def _csv(rows: list[list[object]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_outputs(result: DemoResult, out_dir: str | os.PathLike) -> None:
    """Write ``metrics.json``, ``metrics.csv``, ``val_history.csv`` and the PNG figures (atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(_metrics(result), indent=1), out / "metrics.json")
    rows: list[list[object]] = [
        [
            "run",
            "test_l1_am_permille",
            "test_l1_fm_permille",
            "test_l1_mean_permille",
            "seconds",
            "steps",
            "batch_size",
        ]
    ]
    for h in result.histories:
        am, fm = (1000 * v for v in h.test_l1)
        rows.append(
            [
                h.name,
                f"{am:.1f}",
                f"{fm:.1f}",
                f"{(am + fm) / 2:.1f}",
                f"{h.seconds:.1f}",
                result.config.steps,
                result.config.batch_size,
            ]
        )
    atomic_write_text(_csv(rows), out / "metrics.csv")
    hist_rows: list[list[object]] = [["run", "step", "val_l1_am", "val_l1_fm"]]
    hist_rows += [
        [h.name, s, f"{am:.5f}", f"{fm:.5f}"]
        for h in result.histories
        for s, (am, fm) in zip(h.steps, h.val_l1, strict=True)
    ]
    atomic_write_text(_csv(hist_rows), out / "val_history.csv")
    cfg = result.config
    setting = (
        f"chirplet, N={cfg.n_samples}, θ_AM {cfg.am}, θ_FM {cfg.fm}, shift ±{cfg.max_shift}; "
        f"{cfg.steps} steps × batch {cfg.batch_size}; seed {cfg.seed}"
        + ("" if cfg.draw_seed is None else f", path draws {cfg.draw_seed}")
    )
    _save_figure(lambda p: plot_val_error(result.histories, p, title=setting), out / "val_error.png")
    probs = result.probs
    if probs is not None:
        counts = next(
            (h.extra.get("path_counts") for h in result.histories if h.name == "scrapl_theta_is"), None
        )
        _save_figure(
            lambda p: plot_path_probs(
                result.paths,
                probs,
                p,
                sr=cfg.sr,
                counts=counts,
                title=f"JTFS J={cfg.J}, Q1={cfg.Q1}, Q2={cfg.Q2}, "
                f"J_fr={cfg.J_fr}, Q_fr={cfg.Q_fr}: "
                f"{len(result.paths)} paths",
            ),
            out / "theta_is_probs.png",
        )


def _save_figure(draw: Callable[[Path], None], path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    try:
        draw(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
