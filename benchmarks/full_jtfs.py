"""The full JTFS (every path), forward + backward: ours against the reference's vendored kymatio.

Ours: ``TimeFrequencyScattering(...).full(x)``. Reference: the kymatio fork shipped inside
scrapl-loss 0.1.0, ``TimeFrequencyScatteringTorch(format='joint', out_type='array', ...)`` with the
hyperparameters ``SCRAPLLoss`` gives its single-path object (as ``tests/parity/ref_full_jtfs.py``
builds it). A step is ``S = jtfs(x)`` then ``(S * W).sum().backward()`` with a fixed random ``W``
(every coefficient weighs in the gradient). Correctness: relative error of the coefficients and of
the input gradient against the reference, from the timed calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .common import JTFSSetup, Peak, PeakMemory, interleaved, load_average, median_ms, rel_err

__all__ = ["FullRow", "reference_full_module", "bench_full"]


@dataclass
class FullRow:
    setup: JTFSSetup
    batch: int
    n_paths: int
    ours_ms: float
    ref_ms: float | None
    n_ours: int
    n_ref: int
    coef_err: float | None
    grad_err: float | None
    ours_peak: Peak | None
    ref_peak: Peak | None
    load: str


def reference_full_module(ref_module, setup: JTFSSetup):
    """The vendored kymatio full JTFS, built as ``SCRAPLLoss`` builds its single-path object."""
    del ref_module  # imported for its side effect: the fork is on sys.path as ``kymatio``
    from kymatio.scattering1d.frontend.torch_frontend import TimeFrequencyScatteringTorch

    return TimeFrequencyScatteringTorch(
        shape=(setup.shape,),
        J=setup.J,
        Q=(setup.Q1, setup.Q2),
        J_fr=setup.J_fr,
        Q_fr=setup.Q_fr,
        T=setup.T,
        F=setup.F,
        format="joint",
        out_type="array",
    )


def bench_full(
    setup: JTFSSetup,
    *,
    scrapl,
    ref_module,
    batch: int,
    repeats: int,
    ref_repeats: int,
    device: torch.device,
    memory: PeakMemory | None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> FullRow:
    """Time the full transform's forward + backward, ours against the reference (see module doc)."""
    ours = scrapl.TimeFrequencyScattering(**setup.kwargs()).to(device)
    ref = reference_full_module(ref_module, setup).to(device) if ref_module is not None else None
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(batch, setup.shape, generator=gen).to(device)
    n_out = len(ours.full_paths)
    W = None

    def step(fn):
        nonlocal W
        x = x0.clone().requires_grad_(True)
        S = fn(x)
        if W is None:
            W = torch.randn(S.shape, generator=torch.Generator().manual_seed(seed + 1)).to(device)
        (S * W).sum().backward()
        return S.detach(), x.grad

    last: dict[str, tuple] = {}  # outputs of the latest timed call of each method

    def keep(name, fn):
        def run():
            last[name] = step(fn)

        return run

    methods = {"ours": keep("ours", ours.full)}
    if ref is not None:
        methods["reference"] = keep("reference", ref)
    load = load_average()
    methods["ours"]()  # warm-up: operator caches
    reps = {"ours": repeats}
    if ref is not None:
        reps["reference"] = ref_repeats
    times = interleaved(methods, reps, device)
    row = FullRow(
        setup,
        batch,
        n_out,
        median_ms(times["ours"]),
        None,
        len(times["ours"]),
        0,
        None,
        None,
        None,
        None,
        load,
    )
    if ref is not None:
        row.ref_ms, row.n_ref = median_ms(times["reference"]), len(times["reference"])
        row.coef_err = rel_err(last["ours"][0], last["reference"][0])
        row.grad_err = rel_err(last["ours"][1], last["reference"][1])
    if memory is not None:
        row.ours_peak = memory.measure(methods["ours"])
        if ref is not None:
            row.ref_peak = memory.measure(methods["reference"])
    log(
        f"  [full {setup.name}] ours {row.ours_ms:.0f} ms, ref {row.ref_ms} ms, "
        f"coef err {row.coef_err}, grad err {row.grad_err}"
    )
    return row
