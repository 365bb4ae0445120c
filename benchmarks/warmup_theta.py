"""θ-IS warmup time, ours against scrapl-loss 0.1.0, for several numbers of synth parameters nθ.

Problem: the seed README's warmup example (N = 8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1, 7 paths;
encoder Linear(N, nθ)-PReLU-Linear(nθ, nθ)-Sigmoid, synth Linear(nθ, nθ)-PReLU-Linear(nθ, N)-Tanh,
one batch of 4 signals), with nθ in ``n_thetas``, on the first ``n_paths`` paths, 20 power
iterations at most.

* reference: ``scrapl_ref.SCRAPLLoss.warmup_lc_hvp`` (one power iteration per θ, every product a
  double backward through encoder, synth and path loss);
* ours: ``scrapl.SCRAPLLoss.warmup_lc_hvp`` with ``engine="factored"`` (default: the θ-space
  Hessian, then power iterations that only differentiate the encoder) and ``engine="direct"``
  (the reference's products, all θ batched), both with ``init="reference"`` so that they start
  from the reference's very start vectors (the same global-RNG draws).

The three alternate; the time is the median over ``repeats`` runs, per path. Agreement: the largest
relative difference of our curvature values from the reference's, over all paths and θ.

Usage: ``python -m benchmarks.warmup_theta [--n-theta 2 14] [--paths 3] [--repeats 2] [--config paper]``
(``--config paper``: the paper's 315-path JTFS, N = 32768, on the first ``--paths`` paths, with the
same toy encoder and synth at that length; the time of a whole warmup is ``315 x`` the per-path time.)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["WarmupRow", "bench_warmup", "WARMUP_SETUP"]

WARMUP_SETUP = dict(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)
BATCH = 4
METHODS = ("reference", "ours_factored", "ours_direct")


@dataclass
class WarmupRow:
    setup: dict
    n_theta: int
    n_paths: int
    n_iter: int
    ms_per_path: dict[str, float]
    runs: int
    max_rel_diff: dict[str, float]


def _problem(n_theta: int, N: int, seed: int = 42):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = nn.Sequential(nn.Linear(N, n_theta), nn.PReLU(), nn.Linear(n_theta, n_theta), nn.Sigmoid())
        decoder = nn.Sequential(nn.Linear(n_theta, n_theta), nn.PReLU(), nn.Linear(n_theta, N), nn.Tanh())
        batch = torch.rand(BATCH, 1, N)
    return {
        "theta_fn": lambda x: encoder(x.squeeze(1)),
        "synth_fn": lambda theta: decoder(theta).unsqueeze(1),
        "theta_fn_kwargs": [{"x": batch}],
        "params": list(encoder.parameters()),
    }


def _run_reference(ref_loss, prob, n_paths: int, n_iter: int, seed: int):
    with tempfile.TemporaryDirectory() as tmp:
        ref_loss.clear()
        ref_loss.train()
        torch.manual_seed(seed)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            t0 = time.perf_counter()
            ref_loss.warmup_lc_hvp(
                prob["theta_fn"],
                prob["synth_fn"],
                prob["theta_fn_kwargs"],
                prob["params"],
                end_path_idx=n_paths,
                save_dir=tmp,
                n_iter=n_iter,
            )
            wall = time.perf_counter() - t0
        vals = [torch.load(Path(tmp) / f"vals_{p}.pt", weights_only=True).reshape(-1) for p in range(n_paths)]
    return wall, torch.stack(vals)


def _run_ours(our_loss, prob, n_paths: int, n_iter: int, seed: int, engine: str):
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    res = our_loss.warmup_lc_hvp(
        prob["theta_fn"],
        prob["synth_fn"],
        prob["theta_fn_kwargs"],
        prob["params"],
        end_path_idx=n_paths,
        save_dir=None,
        n_iter=n_iter,
        engine=engine,
        init="reference",
        progress=False,
    )
    wall = time.perf_counter() - t0
    return wall, torch.stack([res.vals[p].reshape(-1) for p in range(n_paths)])


def bench_warmup(
    *,
    scrapl,
    ref_module,
    n_thetas=(2, 14),
    n_paths: int = 3,
    n_iter: int = 20,
    repeats: int = 2,
    seed: int = 0,
    setup: dict | None = None,
    log=print,
) -> list[WarmupRow]:
    """Warmup time per path and agreement of values, for every nθ (see module doc).

    ``setup``: the loss configuration (default :data:`WARMUP_SETUP`, the seed's warmup example).
    """
    setup = dict(WARMUP_SETUP if setup is None else setup)
    rows = []
    for n_theta in n_thetas:
        prob = _problem(n_theta, setup["shape"])
        ours = scrapl.SCRAPLLoss(**setup, n_theta=n_theta)
        ref = ref_module.SCRAPLLoss(**setup, n_theta=n_theta)
        runs = {
            "reference": lambda ref=ref, prob=prob: _run_reference(ref, prob, n_paths, n_iter, seed),
            "ours_factored": lambda ours=ours, prob=prob: _run_ours(
                ours, prob, n_paths, n_iter, seed, "factored"
            ),
            "ours_direct": lambda ours=ours, prob=prob: _run_ours(
                ours, prob, n_paths, n_iter, seed, "direct"
            ),
        }
        _run_ours(ours, prob, 1, 2, seed, "factored")  # warm-up (allocator, vmap rules)
        walls: dict[str, list[float]] = {m: [] for m in METHODS}
        vals = {}
        for r in range(repeats):
            for m in METHODS[r % 3 :] + METHODS[: r % 3]:
                wall, v = runs[m]()
                walls[m].append(wall)
                vals[m] = v
        ms = {m: sorted(w)[len(w) // 2] * 1e3 / n_paths for m, w in walls.items()}
        ref_vals = vals["reference"]
        diff = {
            m: ((vals[m] - ref_vals).abs() / ref_vals.abs().clamp_min(1e-30)).max().item()
            for m in METHODS[1:]
        }
        rows.append(WarmupRow(setup, n_theta, n_paths, n_iter, ms, repeats, diff))
        log(
            f"  [warmup nθ={n_theta}] "
            + ", ".join(f"{m} {v:.0f} ms/path" for m, v in ms.items())
            + f"; max rel diff {diff}"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-theta", type=int, nargs="+", default=[2, 14])
    ap.add_argument("--paths", type=int, default=3)
    ap.add_argument("--n-iter", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--config", choices=["seed", "paper"], default="seed")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import scrapl

    from .common import PAPER, import_reference, quiet_logs
    from .report import warmup_table

    quiet_logs()
    setup = None if args.config == "seed" else PAPER.kwargs()

    rows = bench_warmup(
        scrapl=scrapl,
        ref_module=import_reference(),
        n_thetas=args.n_theta,
        n_paths=args.paths,
        n_iter=args.n_iter,
        repeats=args.repeats,
        setup=setup,
    )
    print("\n".join(warmup_table(rows)))


if __name__ == "__main__":
    main()
