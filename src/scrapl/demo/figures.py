"""The demo's figures: validation error against steps, θ-IS path probabilities over the JTFS plane.

matplotlib is imported lazily (a ``demo`` extra) and drawn with the non-interactive Agg backend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from torch import Tensor

from .train import RunHistory

__all__ = ["plot_val_error", "plot_path_probs", "RUN_LABELS"]

RUN_LABELS = {
    "scrapl_theta_is": "SCRAPL (θ-IS + P-Adam + P-SAGA)",
    "scrapl_uniform": "SCRAPL (uniform + P-Adam + P-SAGA)",
    "mss": "MSS (auraloss multi-resolution STFT)",
    "supervised": "supervised parameter loss",
}
_COLORS = {
    "scrapl_theta_is": "tab:red",
    "scrapl_uniform": "tab:orange",
    "mss": "tab:blue",
    "supervised": "tab:green",
}


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the demo's figures need matplotlib: pip install 'scrapl[demo]'") from err
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_val_error(histories: Sequence[RunHistory], path: str | os.PathLike, *, title: str = "") -> None:
    """Plot each run's validation L1 error (‰, normalized scale) of θ_AM and θ_FM against steps.

    A dashed line marks 250‰, the error of always predicting the middle of the range.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for col, (ax, param) in enumerate(zip(axes, ("θ_AM", "θ_FM"), strict=True)):
        for h in histories:
            errors = [1000 * v[col] for v in h.val_l1]
            ax.plot(
                h.steps,
                errors,
                label=RUN_LABELS.get(h.name, h.name),
                color=_COLORS.get(h.name),
                marker="o",
                markersize=2.5,
                linewidth=1.5,
            )
        ax.axhline(250, color="gray", linestyle="--", linewidth=1, label="always predict the middle")
        ax.set_title(f"{param}: held-out L1 error")
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation L1 error (‰ of the range)")
    axes[0].set_ylim(bottom=0)
    axes[1].legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_path_probs(
    paths: Sequence,
    probs: Tensor,
    path: str | os.PathLike,
    *,
    sr: float,
    counts: Sequence[int] | None = None,
    title: str = "",
) -> None:
    """Draw the θ-IS probability of every JTFS path over its (rate in Hz, scale in cycles/octave) plane.

    Each square is one second-order path ``(n2, n_fr)``: x is its temporal modulation rate
    (``xi2 · sr``, log scale), y its signed frequential scale (``xi_fr · Q1``; positive: spin up),
    the colour its sampling probability relative to uniform (``P · p``). With ``counts``, a second
    panel shows how often the θ-IS run drew each path.
    """
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    rates = [p.rate_hz(sr) for p in paths]
    scales = [p.scale_cycles_per_octave for p in paths]
    rel = (probs.double() * len(paths)).clamp_min(1e-3).tolist()
    n_panels = 1 if counts is None else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(6.2 * n_panels, 4.6), squeeze=False)
    ax = axes[0, 0]
    sc = ax.scatter(
        rates,
        scales,
        c=rel,
        s=170,
        marker="s",
        cmap="magma",
        norm=LogNorm(vmin=min(rel), vmax=max(max(rel), 1.0 + 1e-9)),
        edgecolors="k",
        linewidths=0.3,
    )
    fig.colorbar(sc, ax=ax, label="sampling probability × number of paths (1 = uniform)")
    ax.set_title("θ-IS path probabilities")
    if counts is not None:
        ax2 = axes[0, 1]
        sc2 = ax2.scatter(
            rates, scales, c=list(counts), s=170, marker="s", cmap="viridis", edgecolors="k", linewidths=0.3
        )
        fig.colorbar(sc2, ax=ax2, label="visits during training")
        ax2.set_title("paths drawn by the θ-IS run")
    for a in axes[0]:
        a.set_xscale("log", base=2)
        a.set_xlabel("temporal modulation rate (Hz)")
        a.set_ylabel("frequential scale (cycles / octave)")
        a.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
