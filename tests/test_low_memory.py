"""``low_memory=True``: chunked, checkpointed paths give the default mode's values, gradients and
Hessian-vector products, and a lower peak of live tensors."""

from __future__ import annotations

import pytest
import torch

from benchmarks.common import _LiveTensors
from scrapl import SCRAPLLoss, TimeFrequencyScattering

E = dict(shape=4096, J=6, Q1=2, Q2=1, J_fr=2, Q_fr=1)


@pytest.fixture(scope="module")
def pair():
    fast = TimeFrequencyScattering(**E)
    low = TimeFrequencyScattering(**E, low_memory=True)
    low.chunk_elems = 2 * 4096  # two filters of the undecimated group, two frequential rows, at B=2
    return fast, low


@pytest.mark.parametrize("k", [0, 5, 11, 17, 23, 27])
def test_values_gradients_and_hvp_match(pair, k):
    fast, low = pair
    g = torch.Generator().manual_seed(k)
    x0, v = torch.randn(2, E["shape"], generator=g), torch.randn(2, E["shape"], generator=g)
    out = []
    for m in (fast, low):
        x = x0.clone().requires_grad_(True)
        S = m.path(x, k)
        (grad,) = torch.autograd.grad(S.square().sum(), x, create_graph=True)
        (hvp,) = torch.autograd.grad((grad * v).sum(), x)
        with torch.no_grad():
            S_nograd = m.path(x0, k)
        out.append((S.detach(), grad.detach(), hvp, S_nograd))
    for what, a, b in zip(("S", "grad", "hvp", "S no grad"), out[0], out[1], strict=True):
        assert ((b - a).norm() / a.norm()).item() <= 1e-5, what


def _peak_bytes(m, k):
    x = torch.randn(4, m.config.N, requires_grad=True)
    m.path(x, k).sum().backward()  # builds and caches the path's operators
    tracker = _LiveTensors()
    with tracker:
        m.path(x, k).square().sum().backward()
    return tracker.peak


@pytest.mark.parametrize("k", [0, -1])  # the first path (j2 = 1) and the last (largest j2)
def test_lower_peak_memory(k):
    kw = dict(E, shape=16384, J=8, Q1=4)
    fast, low = TimeFrequencyScattering(**kw), TimeFrequencyScattering(**kw, low_memory=True)
    low.chunk_elems = 8192
    k %= fast.n_paths
    assert _peak_bytes(low, k) < 0.5 * _peak_bytes(fast, k)


def test_scrapl_loss_low_memory():
    x, y = torch.randn(2, 1, E["shape"]), torch.randn(2, 1, E["shape"])
    losses = [SCRAPLLoss(**E, low_memory=flag, use_p_adam=False) for flag in (False, True)]
    values = [loss(x, y, path_idx=9) for loss in losses]
    torch.testing.assert_close(values[1], values[0])
    with pytest.raises(TypeError, match="low_memory must be a bool, got 1"):
        SCRAPLLoss(**E, low_memory=1)
