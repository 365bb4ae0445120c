"""The FFT floor of ``benchmarks/floor.py`` is a floor: every FFT it times can be matched with a
distinct FFT, at least as long, that a real training step on the same path performs.

A ``TorchDispatchMode`` records each FFT of one ``SCRAPLLoss`` step (forward of ``x`` and of the
target, backward to ``x``) as ``(kind, length, rows)``. The step computes some first-order
wavelets on a longer grid than their own (the coarse decimation groups share one FFT length), so
the check is by threshold: for every length ``n``, the floor's inverse (and forward) real FFT
rows of length ``>= n`` must not exceed the step's (a complex FFT counts as two real ones of
either kind). That is exactly the condition for such a matching to exist, and a longer FFT costs
at least as much, so a floor that passes cannot overstate the bound that ``RESULTS.md`` reports.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.common import PAPER, QUICK
from benchmarks.floor import floor_ffts, floor_step
from scrapl import SCRAPLLoss

_FFT = {
    torch.ops.aten._fft_r2c.default: "r2c",
    torch.ops.aten._fft_c2r.default: "c2r",
    torch.ops.aten._fft_c2c.default: "c2c",
}


class _CountFFTs(TorchDispatchMode):
    """Rows of every one-dimensional FFT, by ``(kind, length)``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kind = _FFT.get(func)
        if kind is not None:
            x, dim = args[0], list(args[1])
            assert len(dim) == 1, f"unexpected {len(dim)}-d FFT"
            n_in = x.shape[dim[0]]
            n = args[3] if kind == "c2r" else n_in
            self.rows[kind, n] += x.numel() // n_in
        return func(*args, **(kwargs or {}))


def _step_ffts(setup, k: int, batch: int) -> Counter:
    loss = SCRAPLLoss(**setup.kwargs(), use_p_adam=False, use_p_saga=False)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, setup.shape, generator=gen, requires_grad=True)
    target = torch.randn(batch, 1, setup.shape, generator=gen)
    with _CountFFTs() as counter:
        loss(x, target, path_idx=k).backward()
    return counter.rows


def _floor_rows(jtfs, k: int, batch: int) -> Counter:
    """The floor's rows by ``(kind, length)``, from what :func:`floor_step` actually runs."""
    with _CountFFTs() as counter:
        floor_step(jtfs, k, batch)()
    return counter.rows


@pytest.mark.parametrize("setup, paths", [(QUICK, [0, 5, 11, 20]), (PAPER, [0, 180, 305])])
def test_floor_ffts_are_a_subset_of_a_step(setup, paths):
    batch = 2
    jtfs = SCRAPLLoss(**setup.kwargs()).jtfs
    for k in paths:
        floor, step = _floor_rows(jtfs, k, batch), _step_ffts(setup, k, batch)
        lengths = {n for _, n in floor}
        assert lengths, f"path {k}: empty floor"
        for n in lengths:
            for kind in ("c2r", "r2c"):
                need = sum(rows for (kd, m), rows in floor.items() if kd == kind and m >= n)
                have = sum(
                    rows * (2 if kd == "c2c" else 1)
                    for (kd, m), rows in step.items()
                    if kd in (kind, "c2c") and m >= n
                )
                assert need <= have, (k, kind, n, need, have)


@pytest.mark.parametrize("k", [0, 180, 305])
def test_floor_is_nine_real_ffts_per_first_order_filter(k):
    """What ``floor_step`` runs is the documented count: per group of ``G`` filters of length
    ``M``, ``5 G`` inverse and ``4 G`` forward real FFTs per signal, and the groups cover exactly
    the first-order filters ``n1 < n1_max`` of the path."""
    jtfs = SCRAPLLoss(**PAPER.kwargs()).jtfs
    batch = 3
    groups = floor_ffts(jtfs, k)
    assert sum(G for _, G, _ in groups) == min(jtfs.paths[k].n1_max, jtfs.n1_limit)
    rows = _floor_rows(jtfs, k, batch)
    for M, G, k1 in groups:
        assert M == jtfs.config.Np // 2**k1
        assert rows["c2r", M] == 5 * G * batch and rows["r2c", M] == 4 * G * batch
    assert sum(rows.values()) == 9 * batch * sum(G for _, G, _ in groups)


def _paper_result(floor_ms: float):
    s = {"ours_median_ms": 139.0, "mss_median_ms": 121.0, "ref_median_ms": 668.0}
    s.update(floor_median_ms=floor_ms, floor_over_mss=floor_ms / 121.0, ref_over_floor=668.0 / floor_ms)
    s.update(ref_over_ours=668.0 / 139.0, ref_over_ours_per_path_min=4.6, mss_over_ours=121.0 / 139.0)
    s.update(slowest_over_mss=1.7, slowest_path=35, floor_over_ours=floor_ms / 139.0)
    return SimpleNamespace(summary=s)


def _without_floor(paper):
    return SimpleNamespace(summary={k: v for k, v in paper.summary.items() if "floor" not in k})


@pytest.mark.parametrize(
    "floor_ms, ten_text",
    [
        (70.0, "so no implementation of this transform with these FFTs can reach 10x"),
        (50.0, "so 10x would leave 16.8 ms for the rest of the step"),
    ],
)
def test_report_states_the_bound_in_the_run_s_numbers(floor_ms, ten_text):
    """The targets table and the paragraph under it give the floor's ratios of that run."""
    from benchmarks import report

    paper = _paper_result(floor_ms)
    text = " ".join(report.bounds_text(paper))
    assert ten_text in text
    assert f"leave {121.0 - floor_ms:.1f} ms for the rest" in text
    assert f"which takes {139.0 - floor_ms:.1f} ms now" in text
    table = "\n".join(report.targets_table(paper, None))
    assert f"the FFTs an exact step needs, alone: {668.0 / floor_ms:.1f}x" in table
    assert f"those FFTs alone take {floor_ms / 121.0:.2f} of the MSS step" in table
    assert report.bounds_text(_without_floor(paper)) == []
