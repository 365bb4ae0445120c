"""Generate the documentation's figures and cost table with the library itself.

Writes, under ``docs/``:

* ``figures/filterbank_first_order.png``: first-order wavelets ``psi1`` and the temporal low-pass
  ``phi`` (the scalogram's frequency axis), in Hz;
* ``figures/filterbank_second_order.png``: second-order temporal wavelets ``psi2`` (modulation
  rates), in Hz;
* ``figures/filterbank_frequential.png``: frequential wavelets ``psi_fr`` (both spins) and the
  frequential low-pass ``phi_F`` (modulation scales), in cycles per octave;
* ``figures/path_map.png``: every second-order path of a configuration on the rate (Hz) ×
  scale (cycles/octave) plane; ``figures/path_map_variants.png``: the same for variants of it;
* ``figures/path_costs.png`` and ``_snippets/path_costs.md`` (from the raw measurements kept in
  ``_snippets/path_costs.json``): number of paths and the measured
  cost of one SCRAPL step (forward + backward of one path) against the full JTFS, for a few
  configurations, with the machine they were measured on;
* with ``--seed-output`` only: ``_snippets/seed_readme_output.txt``, the console output of
  ``examples/seed_readme.py`` (run in a temporary directory; progress-bar redraws dropped).

Usage::

    python tools/make_doc_figures.py                # everything (the timings take ~5 min on one core)
    python tools/make_doc_figures.py --skip-timing  # redraw everything from the saved measurements
    python tools/make_doc_figures.py --skip-timing --seed-output  # + rerun the seed examples (minutes)

The figures are deterministic (no timestamp in the PNGs); the cost table is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from scrapl import SCRAPLLoss, TimeFrequencyScattering  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
SNIPPETS = ROOT / "docs" / "_snippets"

SR = 48_000  # Hz, the sample rate the figures assume
SEED_CONFIG = dict(shape=48000, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2)  # the seed README's configuration
PNG_META = {"Software": None}  # no version string: regenerating gives identical files

# (label, configuration) for the cost table: from the seed's warmup example to larger banks
COST_CONFIGS = [
    ("seed warmup example", dict(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)),
    ("small", dict(shape=4096, J=6, Q1=2, Q2=1, J_fr=2, Q_fr=1)),
    ("0.34 s, Q1=8", dict(shape=16384, J=8, Q1=8, Q2=2, J_fr=3, Q_fr=2)),
    ("seed README (1 s)", SEED_CONFIG),
    ("seed, J_fr=4, Q_fr=1", dict(shape=48000, J=12, Q1=8, Q2=2, J_fr=4, Q_fr=1)),
    ("seed, Q1=12, Q2=1", dict(shape=48000, J=12, Q1=12, Q2=1, J_fr=3, Q_fr=2)),
]


def _save(fig: plt.Figure, name: str) -> Path:
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / name
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata=PNG_META)
    plt.close(fig)
    return path


def _positive_half(h: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (in ``scale`` units per cycle/sample) and values of the non-negative half."""
    n = h.shape[-1]
    freqs = np.fft.fftfreq(n)
    keep = (freqs > 0) & (freqs < 0.5)
    return freqs[keep] * scale, h[..., keep]


def _config_title(cfg: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in cfg.items())


def plot_first_order(jtfs: TimeFrequencyScattering, cfg: dict) -> Path:
    bank = jtfs.bank
    f, psi1 = _positive_half(bank.psi1_f, SR)
    _, phi = _positive_half(bank.phi_f, SR)
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for row in psi1:
        ax.plot(f, row, lw=0.8, color="tab:blue")
    ax.plot(f, phi, lw=1.5, color="tab:red", label=f"phi (T = {jtfs.config.T_eff} samples)")
    ax.set_xscale("log")
    ax.set_xlim(1, SR / 2)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("|ψ̂₁(ω)|")
    ax.set_title(
        f"First order: {len(bank.psi1)} wavelets (Q1={cfg['Q1']} per octave over "
        f"J={cfg['J']} octaves), sr = {SR} Hz",
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, "filterbank_first_order.png")


def plot_second_order(jtfs: TimeFrequencyScattering, cfg: dict) -> Path:
    bank = jtfs.bank
    f, psi2 = _positive_half(bank.psi2_f, SR)
    used = {p.n2 for p in jtfs.paths}
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for n2, row in enumerate(psi2):
        ax.plot(f, row, lw=0.9, color="tab:green" if n2 in used else "0.7", ls="-" if n2 in used else "--")
    ax.plot([], [], color="tab:green", label="gives paths")
    ax.plot([], [], color="0.7", ls="--", label="no first-order filter below it: no path")
    ax.set_xscale("log")
    ax.set_xlim(0.5, SR / 2)
    ax.set_xlabel("temporal modulation rate (Hz)")
    ax.set_ylabel("|ψ̂₂(ω)|")
    ax.set_title(
        f"Second order (time): {len(bank.psi2)} wavelets, Q2={cfg['Q2']} per octave, {len(used)} used",
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, "filterbank_second_order.png")


def plot_frequential(jtfs: TimeFrequencyScattering, cfg: dict) -> Path:
    bank, c = jtfs.bank, jtfs.config
    n = bank.psi_fr_f.shape[-1]
    freqs = np.fft.fftshift(np.fft.fftfreq(n)) * c.Q1  # cycles per bin -> cycles per octave
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for w, row in zip(bank.psi_fr, bank.psi_fr_f, strict=True):
        color = "tab:purple" if w.xi > 0 else "tab:orange" if w.xi < 0 else "tab:gray"
        ax.plot(freqs, np.fft.fftshift(row), lw=0.9, color=color)
    ax.plot(freqs, np.fft.fftshift(bank.phi_fr_f), lw=1.5, color="tab:red")
    ax.plot([], [], color="tab:purple", label="spin up (+)")
    ax.plot([], [], color="tab:orange", label="spin down (−)")
    ax.plot([], [], color="tab:gray", label=f"low-pass, spin 0 (width 2**J_fr = {2**c.J_fr} bins)")
    ax.plot([], [], color="tab:red", label=f"phi_F (F = {c.F_eff} bins)")
    ax.set_xlabel("frequential modulation scale (cycles per octave)")
    ax.set_ylabel("|ψ̂_fr|")
    K = (len(bank.psi_fr) - 1) // 2
    ax.set_title(
        f"Frequential: {K} wavelets per spin (Q_fr={cfg['Q_fr']} per octave over "
        f"J_fr={cfg['J_fr']} octaves) + 1 low-pass, on {n} bins (Q1={c.Q1} bins/octave)",
        fontsize=10,
    )
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, "filterbank_frequential.png")


def _path_map_axes(ax: plt.Axes, jtfs: TimeFrequencyScattering, cfg: dict, *, legend: bool) -> None:
    paths = jtfs.paths
    rate = np.array([p.rate_hz(SR) for p in paths])
    scale = np.array([p.scale_cycles_per_octave for p in paths])
    spin = np.array([p.spin for p in paths])
    for s, color, label in (
        (1, "tab:purple", "spin up"),
        (-1, "tab:orange", "spin down"),
        (0, "tab:gray", "frequential low-pass (spin 0)"),
    ):
        m = spin == s
        ax.scatter(rate[m], scale[m], s=14, color=color, label=f"{label}: {m.sum()} paths")
    ax.set_xscale("log")
    ax.axhline(0, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("temporal modulation rate (Hz)   [JTFSPath.rate_hz(sr)]")
    ax.set_title(f"{len(paths)} paths: {_config_title(cfg)}", fontsize=9)
    if legend:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    ax.grid(alpha=0.3, which="both")


def plot_path_map(jtfs: TimeFrequencyScattering, cfg: dict) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.2))
    _path_map_axes(ax, jtfs, cfg, legend=True)
    ax.set_ylabel("scale (cycles/octave)\n[JTFSPath.scale_cycles_per_octave]")
    ax.set_title(f"{len(jtfs.paths)} paths of {_config_title(cfg)} at sr = {SR} Hz", fontsize=10)
    return _save(fig, "path_map.png")


def plot_path_map_variants() -> Path:
    """The seed configuration next to variants that change one group of hyperparameters."""
    variants = [
        SEED_CONFIG,
        {**SEED_CONFIG, "Q2": 1},
        {**SEED_CONFIG, "J_fr": 4, "Q_fr": 1},
        {**SEED_CONFIG, "J": 10},
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True, sharey=True)
    for ax, cfg in zip(axes.flat, variants, strict=True):
        short = {k: v for k, v in cfg.items() if k != "shape"}
        _path_map_axes(ax, TimeFrequencyScattering(**cfg), short, legend=False)
    for ax in axes[:, 0]:
        ax.set_ylabel("scale (cycles/octave)")
    for ax in axes[0, :]:
        ax.set_xlabel("")
    fig.suptitle(f"How J, Q2, J_fr and Q_fr move the paths (shape=48000, sr = {SR} Hz)", fontsize=10)
    fig.tight_layout()
    return _save(fig, "path_map_variants.png")


# -- cost -------------------------------------------------------------------------------------------
def _time(fn, repeats: int) -> float:
    """Best CPU time (``time.process_time``, all threads) of ``repeats`` calls.

    CPU time rather than wall time: on a machine shared with other jobs, wall time measures the
    queue; with one torch thread, CPU time is the work itself.
    """
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def _measure_config(
    label: str, cfg: dict, *, batch: int, n_paths_timed: int, repeats: int, full_max_paths: int
) -> dict:
    t0 = time.process_time()
    loss_fn = SCRAPLLoss(**cfg, use_p_adam=False, use_p_saga=False)
    build = time.process_time() - t0
    N, P = cfg["shape"], loss_fn.n_paths
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, N, generator=gen, requires_grad=True)
    target = torch.randn(batch, 1, N, generator=gen)
    indices = sorted({round(i * (P - 1) / max(1, n_paths_timed - 1)) for i in range(n_paths_timed)})

    def step(k: int) -> None:
        x.grad = None
        loss_fn(x, target, path_idx=k).backward()

    def full_step() -> None:
        x.grad = None
        with torch.no_grad():
            S_t = loss_fn.jtfs.all_paths(target.reshape(-1, N))
        S_x = loss_fn.jtfs.all_paths(x.reshape(-1, N))
        sum(
            torch.linalg.vector_norm(a - b, dim=(-2, -1)).mean() for a, b in zip(S_x, S_t, strict=True)
        ).backward()

    per_path = []
    for k in indices:
        step(k)  # warm-up: builds the path's cached operators
        per_path.append(_time(lambda k=k: step(k), repeats))
    full = None
    if P <= full_max_paths:
        full_step()  # warm-up: builds every path's cached operators
        full = _time(full_step, 1)
    row = dict(
        label=label,
        cfg=cfg,
        P=P,
        shape=loss_fn.jtfs.path_shape(0),
        build=build,
        step_mean=statistics.fmean(per_path),
        step_min=min(per_path),
        step_max=max(per_path),
        n_timed=len(indices),
        full=full,
    )
    print(
        f"{label:24s} P={P:4d} step mean {row['step_mean'] * 1e3:7.1f} ms "
        f"full {'-' if full is None else f'{full:.2f} s'}",
        flush=True,
    )
    return row


def measure_costs(*, batch: int, n_paths_timed: int, repeats: int, full_max_paths: int) -> list[dict]:
    return [
        _measure_config(
            label,
            cfg,
            batch=batch,
            n_paths_timed=n_paths_timed,
            repeats=repeats,
            full_max_paths=full_max_paths,
        )
        for label, cfg in COST_CONFIGS
    ]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs visible, torch {torch.__version__} "
        f"with {torch.get_num_threads()} thread(s), Python {platform.python_version()}, "
        f"{platform.system()}"
    )


def save_costs(rows: list[dict], *, batch: int, repeats: int, n_paths_timed: int) -> Path:
    """Keep the raw measurements, so that the table and the plot can be redrawn without them."""
    data = {
        "machine": _machine(),
        "batch": batch,
        "repeats": repeats,
        "n_paths_timed": n_paths_timed,
        "rows": rows,
    }
    SNIPPETS.mkdir(parents=True, exist_ok=True)
    path = SNIPPETS / "path_costs.json"
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return path


def write_cost_table(data: dict) -> Path:
    lines = [
        "| configuration | `shape, J, Q1, Q2, J_fr, Q_fr` | paths P | path shape (n_freq, n_time) "
        "| one SCRAPL step, mean (min–max) | full JTFS step | full / one path | construction |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in data["rows"]:
        c = r["cfg"]
        cfg = f"{c['shape']}, {c['J']}, {c['Q1']}, {c['Q2']}, {c['J_fr']}, {c['Q_fr']}"
        full = "not run" if r["full"] is None else f"{r['full'] * 1e3:,.0f} ms"
        ratio = "" if r["full"] is None else f"{r['full'] / r['step_mean']:.0f}×"
        lines.append(
            f"| {r['label']} | {cfg} | {r['P']} | {tuple(r['shape'])} | "
            f"{r['step_mean'] * 1e3:,.1f} ms ({r['step_min'] * 1e3:,.1f}–{r['step_max'] * 1e3:,.1f}) "
            f"| {full} | {ratio} | {r['build'] * 1e3:,.0f} ms |"
        )
    lines += [
        "",
        f"Measured by `python tools/make_doc_figures.py` on {data['machine']}. Times are CPU "
        "times (`time.process_time`) with one torch thread, because the machine was shared with "
        "other jobs: wall times there measure the queue. They are indicative of one core's work; "
        "the ratios are what carries over. One step = forward and backward of the loss for a "
        f"batch of {data['batch']} signals on one path (`path_idx` fixed, P-Adam/P-SAGA off), best "
        f"of {data['repeats']} runs per path, averaged over {data['n_paths_timed']} paths spread "
        "evenly over the path index (all of them when P is smaller); the cost depends on the path, "
        "as slow rates use more first-order filters. Full JTFS step = every second-order path's "
        "distance, summed, forward and backward, the first order shared "
        "(`TimeFrequencyScattering.all_paths`), one run after a warm-up run. Construction = "
        "building the loss (filter design and path list).",
    ]
    path = SNIPPETS / "path_costs.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def plot_costs(data: dict) -> Path:
    rows = data["rows"]
    labels = [f"{r['label']}\nP = {r['P']}" for r in rows]
    y = np.arange(len(rows))
    step = np.array([r["step_mean"] for r in rows]) * 1e3
    full = np.array([np.nan if r["full"] is None else r["full"] for r in rows]) * 1e3
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.2))
    ax.barh(y - 0.2, step, height=0.38, color="tab:blue", label="one SCRAPL step (one path)")
    ax.barh(y + 0.2, full, height=0.38, color="tab:red", label="full JTFS step (all P paths)")
    for yi, s, f in zip(y, step, full, strict=True):
        ax.text(s * 1.08, yi - 0.2, f"{s:,.0f} ms" if s >= 10 else f"{s:.1f} ms", va="center", fontsize=7)
        if np.isfinite(f):
            ax.text(f * 1.08, yi + 0.2, f"{f:,.0f} ms  ({f / s:.0f}×)", va="center", fontsize=7)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(right=np.nanmax(full) * 8 if np.isfinite(full).any() else step.max() * 8)
    ax.set_xlabel("CPU time of forward + backward, batch of 4 (ms, log scale)")
    ax.set_title("A training step: one sampled path (SCRAPL) vs every path (full JTFS)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3, axis="x", which="both")
    return _save(fig, "path_costs.png")


# -- the seed examples' console output -------------------------------------------------------------
def _terminal_lines(raw: str) -> list[str]:
    """Replay carriage returns as a terminal would (a redrawn line keeps its last state)."""
    lines: list[str] = []
    cur: list[str] = []
    col = 0
    for ch in raw:
        if ch == "\n":
            lines.append("".join(cur).rstrip())
            cur, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            if col < len(cur):
                cur[col] = ch
            else:
                cur.append(ch)
            col += 1
    if cur:
        lines.append("".join(cur).rstrip())
    return lines


def seed_output() -> Path:
    """Run ``examples/seed_readme.py`` in a temporary directory; save its console output."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOGLEVEL", "SCRAPL_LOGLEVEL")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "seed_readme.py")],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=True,
        )
    lines = _terminal_lines(proc.stdout)
    bar = "theta-IS warmup:"
    bars = [line for line in lines if line.startswith(bar)]
    # keep the log lines and the final state of the progress bar (redraws are noise in a file)
    out, placed = [], False
    for i, line in enumerate(lines):
        if line.startswith(bar) or (not line and i > 0 and lines[i - 1].startswith(bar)):
            continue
        if "Saving warmup" in line and bars and not placed:
            out.append(f"[progress bar, final state] {bars[-1]}")
            placed = True
        out.append(line)
    SNIPPETS.mkdir(parents=True, exist_ok=True)
    path = SNIPPETS / "seed_readme_output.txt"
    path.write_text("\n".join(out).rstrip() + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-timing",
        action="store_true",
        help="do not measure: redraw the cost table and plot from the saved "
        "measurements (docs/_snippets/path_costs.json)",
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--paths", type=int, default=8, help="paths timed per configuration")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--full-max-paths", type=int, default=400, help="time the full JTFS only up to this many paths"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the timings")
    parser.add_argument(
        "--seed-output",
        action="store_true",
        help="also rerun examples/seed_readme.py and save its console output",
    )
    args = parser.parse_args()

    jtfs = TimeFrequencyScattering(**SEED_CONFIG)
    for plot in (plot_first_order, plot_second_order, plot_frequential, plot_path_map):
        print(plot(jtfs, SEED_CONFIG).relative_to(ROOT))
    print(plot_path_map_variants().relative_to(ROOT))
    if args.seed_output:
        print(seed_output().relative_to(ROOT))
    costs = SNIPPETS / "path_costs.json"
    if not args.skip_timing:
        torch.set_num_threads(args.threads)
        rows = measure_costs(
            batch=args.batch,
            n_paths_timed=args.paths,
            repeats=args.repeats,
            full_max_paths=args.full_max_paths,
        )
        print(
            save_costs(rows, batch=args.batch, repeats=args.repeats, n_paths_timed=args.paths).relative_to(
                ROOT
            )
        )
    if costs.is_file():
        data = json.loads(costs.read_text(encoding="utf-8"))
        print(write_cost_table(data).relative_to(ROOT))
        print(plot_costs(data).relative_to(ROOT))


if __name__ == "__main__":
    main()
