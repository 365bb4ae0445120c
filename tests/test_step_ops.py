"""What one SCRAPL training step on a given path dispatches: at most as many working aten
operators as auraloss's multi-resolution STFT loss (on a GPU each is at least one kernel launch,
and at the paper's size a step is bound by launches), and no host synchronisation (no value read
back on the host, no data-dependent shape), so that the step can be captured in a CUDA graph.

Operators are counted with :mod:`benchmarks.opcount` (views and bare allocations excluded). The
count of a step does not depend on the data or the batch, so the paper configuration's 315 paths
are counted on the ``meta`` device (shapes only, no arithmetic); a test checks that the ``meta``
count is the CPU count. Running a step on ``FakeTensorMode`` tensors, which hold no data at all,
proves that nothing in it reads a value.
"""

from __future__ import annotations

import auraloss
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from benchmarks.common import PAPER, QUICK
from benchmarks.opcount import OpCount, count_ops, training_step
from scrapl import SCRAPLLoss


def _loss(setup, **kwargs) -> SCRAPLLoss:
    return SCRAPLLoss(**setup.kwargs(), use_p_adam=False, use_p_saga=False, **kwargs)


def _count(loss_fn, N: int, device: str = "cpu") -> OpCount:
    gen = torch.Generator().manual_seed(0)
    x0, target = (torch.randn(1, 1, N, generator=gen).to(device) for _ in range(2))
    step = training_step(lambda x: loss_fn(x, target), x0)
    step()  # the first call of a process may set things up (not part of a step)
    return count_ops(step)


@pytest.fixture(scope="module")
def mss_count() -> int:
    count = _count(auraloss.freq.MultiResolutionSTFTLoss(), PAPER.shape)
    assert 150 < count.total < 400 and not count.syncs  # auraloss 0.4.0's default three resolutions
    return count.total


def test_meta_count_is_the_cpu_count():
    loss = _loss(PAPER)
    cpu = {k: _count(lambda x, t, k=k: loss(x, t, path_idx=k), PAPER.shape) for k in (0, 180, 314)}
    loss.to("meta")
    for k, count in cpu.items():
        meta = _count(lambda x, t, k=k: loss(x, t, path_idx=k), PAPER.shape, "meta")
        assert meta.ops == count.ops, k


def test_every_paper_path_dispatches_no_more_operators_than_mss(mss_count):
    loss = _loss(PAPER).to("meta")
    counts = {}
    for k in range(loss.n_paths):
        count = _count(lambda x, t, k=k: loss(x, t, path_idx=k), PAPER.shape, "meta")
        assert not count.syncs, (k, count.syncs)
        counts[k] = count.total
    worst = max(counts, key=counts.__getitem__)
    assert counts[worst] <= mss_count, f"path {worst}: {counts[worst]} operators, MSS {mss_count}"


@pytest.mark.parametrize(
    "setup, low_memory, paths",
    [(PAPER, False, [0, 35, 180, 314]), (QUICK, False, [0, 20]), (QUICK, True, [0, 20])],
    ids=["paper", "quick", "quick-low-memory"],
)
def test_a_step_reads_no_value_on_the_host(setup, low_memory, paths):
    """On tensors without data, an ``.item()``, ``.tolist()``, ``bool(t)`` or a data-dependent
    shape raises; the steps run to the end, and the counter sees no synchronising operator."""
    loss = _loss(setup, low_memory=low_memory)
    with FakeTensorMode(allow_non_fake_inputs=True):
        for k in paths:
            count = _count(lambda x, t, k=k: loss(x, t, path_idx=k), setup.shape)
            assert count.total > 0 and not count.syncs, (k, count.syncs)


@pytest.mark.parametrize(
    "fn, sync",
    [
        (lambda x: x.sum().item(), "_local_scalar_dense"),
        (lambda x: torch.nonzero(x > 0), "nonzero"),
        (lambda x: x[x > 0], "index"),
        (lambda x: x * torch.tensor([2.0]), "lift_fresh"),
    ],
    ids=["item", "nonzero", "boolean mask", "host tensor"],
)
def test_the_counter_sees_host_synchronisations(fn, sync):
    assert sync in count_ops(lambda: fn(torch.randn(8))).syncs


@pytest.mark.parametrize(
    "fn",
    [lambda x: x.sum().item(), lambda x: x.tolist(), lambda x: torch.nonzero(x > 0), lambda x: x[x > 0]],
    ids=["item", "tolist", "nonzero", "boolean mask"],
)
def test_fake_tensors_refuse_to_read_values(fn):
    """What makes :func:`test_a_step_reads_no_value_on_the_host` a real check (``.tolist()``
    dispatches no operator, so only the fake tensors catch it)."""
    with pytest.raises(Exception):  # noqa: B017 (the fake-tensor errors have no common public base)
        with FakeTensorMode():
            fn(torch.randn(8))


@pytest.mark.parametrize("k", [0, 20])
def test_the_per_path_computation_compiles_into_one_graph(k):
    """``torch.compile(fullgraph=True)`` of a step's computation (the engine on ``x`` and on the
    target, then the distance) traces without a graph break, and the compiled step gives the eager
    step's loss and gradient (``aot_eager``: autograd of the traced graph, our custom functions
    included, without code generation)."""
    from scrapl.distance import path_distance

    jtfs = _loss(QUICK).engine

    def step(x, target):
        S = jtfs.path(x, k)
        with torch.no_grad():
            S_target = jtfs.path(target, k)
        return path_distance(S, S_target)

    gen = torch.Generator().manual_seed(k)
    x0, target = (torch.randn(2, QUICK.shape, generator=gen) for _ in range(2))
    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    results = []
    for fn in (step, compiled):
        x = x0.clone().requires_grad_(True)
        value = fn(x, target)
        value.backward()
        results.append((value.detach(), x.grad))
    torch.testing.assert_close(results[1], results[0], rtol=1e-6, atol=0)
