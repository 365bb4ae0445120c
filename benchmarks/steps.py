"""One training step (forward + backward to the input, one path) of three losses, side by side.

For every path of a fixed spread (one path per distinct ``j2``, the frequential filter cycling
through low-pass, spin up and spin down), on the same inputs:

* ``ours``: ``scrapl.SCRAPLLoss(..., use_p_adam=False, use_p_saga=False)(x, x_target, path_idx=k)``;
* ``ours_low``: the same with ``low_memory=True`` (chunked, checkpointed; optional);
* ``reference``: ``scrapl_ref.SCRAPLLoss`` (scrapl-loss 0.1.0) with the same arguments;
* ``mss``: ``auraloss.freq.MultiResolutionSTFTLoss()`` with its defaults (path-independent);
* ``floor``: only the first-order FFTs an exact step on that path needs (:mod:`benchmarks.floor`),
  the part of our step that no implementation of this transform with FFTs can avoid;

then ``loss.backward()`` to ``x`` (batch ``B``, one channel). They run interleaved, path by
path; the correctness of each row is the relative error of our loss and of our input gradient
against the reference's, from the timed calls themselves. ``ours_first`` is the first call of a
path in the process.

Beside the times, each row counts the working aten operators of one step of ours, the
reference and MSS, and the host synchronisations in ours (:mod:`benchmarks.opcount`): on a GPU
each operator is at least one kernel launch. :func:`count_all_paths` counts every path of a
configuration (on the ``meta`` device: the count does not depend on the data).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .common import JTFSSetup, Peak, PeakMemory, interleaved, load_average, median_ms, rel_err, sync
from .floor import floor_step
from .opcount import count_ops, training_step

__all__ = ["StepRow", "StepResult", "spread_paths", "bench_steps", "count_all_paths"]


@dataclass
class StepRow:
    """One path's numbers (times in ms, memory in bytes, errors relative)."""

    path: int
    key: tuple[int, int]
    j2: int
    n1_max: int
    ours_ms: float
    ours_first_ms: float
    ref_ms: float | None
    mss_ms: float
    n_ours: int
    n_ref: int
    ours_peak: Peak | None = None
    ref_peak: Peak | None = None
    loss_err: float | None = None
    grad_err: float | None = None
    low_ms: float | None = None
    low_peak: Peak | None = None
    low_loss_err: float | None = None
    low_grad_err: float | None = None
    floor_ms: float | None = None
    ops_ours: int | None = None
    ops_ref: int | None = None
    ops_mss: int | None = None
    syncs_ours: int | None = None


@dataclass
class StepResult:
    """All rows of one configuration and their summary."""

    setup: JTFSSetup
    batch: int
    rows: list[StepRow]
    mss_peak: Peak | None
    load_before: str
    load_after: str = ""
    summary: dict = field(default_factory=dict)
    all_paths_ops: dict | None = None


def spread_paths(paths, count: int | None = None) -> list[int]:
    """One path per distinct ``j2`` (the first ``n2`` with it), the frequential filter index
    cycling so that low-pass, spin-up and spin-down filters of every width appear; ``count`` keeps
    that many of them, evenly spaced in ``j2``."""
    by_j2: dict[int, list] = {}
    for p in paths:
        by_j2.setdefault(p.j2, []).append(p)
    chosen = []
    for i, j2 in enumerate(sorted(by_j2)):
        n2 = by_j2[j2][0].n2
        group = [p for p in by_j2[j2] if p.n2 == n2]
        chosen.append(group[(5 * i) % len(group)].idx)
    if count is not None and count < len(chosen):
        picks = sorted({round(i * (len(chosen) - 1) / max(count - 1, 1)) for i in range(count)})
        chosen = [chosen[i] for i in picks]
    return chosen


def _step(loss_fn: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor):
    """A training step: fresh leaf ``x``, forward, backward; returns (loss, dL/dx)."""
    x = x0.detach().clone().requires_grad_(True)
    loss = loss_fn(x)
    loss.backward()
    return loss.detach(), x.grad


def bench_steps(
    setup: JTFSSetup,
    *,
    scrapl,
    ref_module,
    batch: int,
    paths: list[int] | None,
    repeats: int,
    ref_repeats: int,
    device: torch.device,
    memory: PeakMemory | None,
    seed: int = 0,
    low_memory: bool = True,
    all_path_ops: bool = False,
    log: Callable[[str], None] = print,
) -> StepResult:
    """Time one training step of the three losses on ``paths`` of ``setup`` (see module doc).

    Args:
        scrapl: the ``scrapl`` package (ours).
        ref_module: the ``scrapl_ref`` package, or None to leave the reference out.
        paths: path indices, or None for :func:`spread_paths` of all ``j2``.
        repeats, ref_repeats: timed steps per path for ours and MSS, and for the reference.
        memory: peak-memory probe, or None to skip memory.
        low_memory: also time and measure ``SCRAPLLoss(..., low_memory=True)`` (``ours_low``).
        all_path_ops: also count the operators of every path (:func:`count_all_paths`).
    """
    import auraloss

    kwargs = setup.kwargs()
    ours = scrapl.SCRAPLLoss(**kwargs, use_p_adam=False, use_p_saga=False).to(device)
    low = None
    if low_memory:
        low = scrapl.SCRAPLLoss(**kwargs, use_p_adam=False, use_p_saga=False, low_memory=True).to(device)
    ref = None
    if ref_module is not None:
        ref = ref_module.SCRAPLLoss(**kwargs, use_p_adam=False, use_p_saga=False).to(device)
    mss = auraloss.freq.MultiResolutionSTFTLoss().to(device)
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(batch, 1, setup.shape, generator=gen).to(device)
    target = torch.randn(batch, 1, setup.shape, generator=gen).to(device)
    if paths is None:
        paths = spread_paths(ours.paths)

    def mss_step():
        return _step(lambda x: mss(x, target), x0)

    load_before = load_average()
    rows = []
    for k in paths:
        p = ours.paths[k]
        last: dict[str, tuple] = {}  # outputs of the latest timed call of each method

        def keep(name, fn, last=last):
            def run():
                last[name] = fn()

            return run

        steps = {
            "ours": lambda k=k: _step(lambda x: ours(x, target, path_idx=k), x0),
            "mss": mss_step,
            "floor": floor_step(ours.jtfs, k, batch, device),
        }
        if ref is not None:
            steps["reference"] = lambda k=k: _step(lambda x: ref(x, target, path_idx=k), x0)
        if low is not None:
            steps["ours_low"] = lambda k=k: _step(lambda x: low(x, target, path_idx=k), x0)
            steps["ours_low"]()  # builds its cached operators
        sync(device)
        start = time.perf_counter()
        steps["ours"]()
        sync(device)
        first_ms = (time.perf_counter() - start) * 1e3
        mss_step()  # warm-up: allocator, FFT plans
        steps["floor"]()  # warm-up
        reps = {"ours": repeats, "mss": repeats, "floor": repeats}
        if low is not None:
            reps["ours_low"] = repeats
        if ref is not None:
            reps["reference"] = ref_repeats
        times = interleaved({n: keep(n, f) for n, f in steps.items()}, reps, device)
        row = StepRow(
            path=k,
            key=p.key,
            j2=p.j2,
            n1_max=p.n1_max,
            ours_ms=median_ms(times["ours"]),
            ours_first_ms=first_ms,
            ref_ms=None,
            mss_ms=median_ms(times["mss"]),
            n_ours=len(times["ours"]),
            n_ref=0,
            floor_ms=median_ms(times["floor"]),
        )
        row.ops_ours, row.syncs_ours = _ops(lambda x, k=k: ours(x, target, path_idx=k), x0)
        row.ops_mss, _ = _ops(lambda x: mss(x, target), x0)
        if ref is not None:
            row.ops_ref, _ = _ops(lambda x, k=k: ref(x, target, path_idx=k), x0)
            row.ref_ms, row.n_ref = median_ms(times["reference"]), len(times["reference"])
            row.loss_err = rel_err(last["ours"][0], last["reference"][0])
            row.grad_err = rel_err(last["ours"][1], last["reference"][1])
        if low is not None:
            row.low_ms = median_ms(times["ours_low"])
            if ref is not None:
                row.low_loss_err = rel_err(last["ours_low"][0], last["reference"][0])
                row.low_grad_err = rel_err(last["ours_low"][1], last["reference"][1])
        if memory is not None:
            row.ours_peak = memory.measure(steps["ours"])
            if low is not None:
                row.low_peak = memory.measure(steps["ours_low"])
            if ref is not None:
                row.ref_peak = memory.measure(steps["reference"])
        rows.append(row)
        log(
            f"  [{setup.name}] path {k} {p.key} j2={p.j2}: ours {row.ours_ms:.1f} ms, "
            f"ref {row.ref_ms if row.ref_ms is None else round(row.ref_ms, 1)} ms, "
            f"mss {row.mss_ms:.1f} ms, loss err {row.loss_err}, grad err {row.grad_err}"
        )
    mss_peak = memory.measure(mss_step) if memory is not None else None
    result = StepResult(setup, batch, rows, mss_peak, load_before, load_average())
    if all_path_ops:
        result.all_paths_ops = count_all_paths(setup, scrapl)
    result.summary = summarize(result)
    return result


def _ops(loss_fn: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor) -> tuple[int, int]:
    """Working aten operators and host synchronisations of one training step."""
    count = count_ops(training_step(loss_fn, x0))
    return count.total, len(count.syncs)


def count_all_paths(setup: JTFSSetup, scrapl) -> dict:
    """Operators and host synchronisations of a training step on every path of ``setup`` (batch 1,
    on the ``meta`` device: shapes only, the same operators as on the CPU), and of the MSS step.

    Returns:
        ``{"n_paths", "max", "max_path", "min", "min_path", "syncs", "mss"}``.
    """
    import auraloss

    loss = scrapl.SCRAPLLoss(**setup.kwargs(), use_p_adam=False, use_p_saga=False).to("meta")
    x0, target = (torch.randn(1, 1, setup.shape, device="meta") for _ in range(2))
    counts, syncs = [], 0
    for k in range(loss.n_paths):
        total, n_syncs = _ops(lambda x, k=k: loss(x, target, path_idx=k), x0)
        counts.append(total)
        syncs += n_syncs
    mss = auraloss.freq.MultiResolutionSTFTLoss()
    cpu = torch.randn(1, 1, setup.shape)
    mss_ops, _ = _ops(lambda x: mss(x, cpu), cpu)
    hi, lo = max(counts), min(counts)
    return {
        "n_paths": len(counts),
        "max": hi,
        "max_path": counts.index(hi),
        "min": lo,
        "min_path": counts.index(lo),
        "syncs": syncs,
        "mss": mss_ops,
    }


def summarize(result: StepResult) -> dict:
    """Medians over the paths and the ratios the targets are stated in."""
    rows = result.rows
    ours = [r.ours_ms for r in rows]
    mss = [r.mss_ms for r in rows]
    s = {
        "ours_median_ms": statistics.median(ours),
        "ours_max_ms": max(ours),
        "slowest_path": rows[ours.index(max(ours))].path,
        "mss_median_ms": statistics.median(mss),
    }
    s["mss_over_ours"] = s["mss_median_ms"] / s["ours_median_ms"]
    s["slowest_over_mss"] = s["ours_max_ms"] / s["mss_median_ms"]
    if result.all_paths_ops is not None:
        s.update({f"ops_all_{key}": value for key, value in result.all_paths_ops.items()})
    if all(r.ops_ours is not None for r in rows):
        s["ops_ours_max"] = max(r.ops_ours for r in rows)
        s["ops_mss"] = max(r.ops_mss for r in rows)
        s["syncs_ours"] = sum(r.syncs_ours for r in rows)
        if all(r.ops_ref is not None for r in rows):
            s["ops_ref_min"] = min(r.ops_ref for r in rows)
            s["ops_ref_max"] = max(r.ops_ref for r in rows)
    if all(r.floor_ms is not None for r in rows):
        s["floor_median_ms"] = statistics.median(r.floor_ms for r in rows)
        s["floor_over_mss"] = s["floor_median_ms"] / s["mss_median_ms"]
        s["floor_over_ours"] = s["floor_median_ms"] / s["ours_median_ms"]
    if all(r.ref_ms is not None for r in rows):
        ref = [r.ref_ms for r in rows]
        s["ref_median_ms"] = statistics.median(ref)
        s["ref_over_ours"] = s["ref_median_ms"] / s["ours_median_ms"]
        s["ref_over_ours_per_path_min"] = min(r.ref_ms / r.ours_ms for r in rows)
        if "floor_median_ms" in s:
            s["ref_over_floor"] = s["ref_median_ms"] / s["floor_median_ms"]
        s["max_loss_err"] = max(r.loss_err for r in rows)
        s["max_grad_err"] = max(r.grad_err for r in rows)
    peaks = [
        (r.ours_peak.tensors, r.ref_peak.tensors if r.ref_peak else None)
        for r in rows
        if r.ours_peak is not None
    ]
    if peaks:
        s["ours_peak_max"] = max(o for o, _ in peaks)
        if all(r is not None for _, r in peaks):
            s["ref_peak_median"] = statistics.median(r for _, r in peaks)
            ratios = [o / r for o, r in peaks if r]
            s["ours_over_ref_peak_max"] = max(ratios)
            s["ours_over_ref_peak_median"] = statistics.median(ratios)
    if all(r.low_ms is not None for r in rows):
        s["low_median_ms"] = statistics.median(r.low_ms for r in rows)
        s["low_over_ours"] = s["low_median_ms"] / s["ours_median_ms"]
        if "ref_median_ms" in s:
            s["ref_over_low"] = s["ref_median_ms"] / s["low_median_ms"]
        low_ratios = [r.low_peak.tensors / r.ref_peak.tensors for r in rows if r.low_peak and r.ref_peak]
        if low_ratios and len(low_ratios) == len(rows):
            s["low_over_ref_peak_max"] = max(low_ratios)
            s["low_over_ref_peak_median"] = statistics.median(low_ratios)
    return s
