"""The engine's stages against their definitions (``jtfs-spec.md`` §4-5), and their adjoints.

First order: ``U1[n1] = |IDFT_{M1}(fold_mean(DFT(x_pad) psi1[n1], k1))|`` on ``M1 = Np / 2**k1``
points, whatever cluster (FFT length, one- or two-sided synthesis) the engine puts ``n1`` in.
Second order: ``Y[n1] = IDFT_{M2}(fold_mean(DFT_{M1}(U1[n1]) psi2[n2].level[k1], j2 - k1))`` up to
a phase common to all rows, i.e. every linear combination of rows (what the frequential filter
computes) has the same modulus. Both linear stages pass gradcheck and gradgradcheck (their
backward is their exact adjoint, and the adjoint's backward is the map).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scrapl import TimeFrequencyScattering, filters
from scrapl.jtfs.ops import fold_mean
from scrapl.jtfs.plan import SecondOrderPart

# wide wavelets (two-sided clusters), narrow ones (one-sided, a merged cluster sampled on a finer
# grid), a length that is not a power of two, and the paper's configuration at a short length
CONFIGS = {
    "wide": dict(shape=256, J=3, Q1=1, Q2=1, J_fr=1, Q_fr=1),
    "narrow": dict(shape=512, J=4, Q1=8, Q2=1, J_fr=1, Q_fr=1),
    "Q2=2": dict(shape=1000, J=5, Q1=3, Q2=2, J_fr=3, Q_fr=3),
    "paper-short": dict(shape=4096, J=10, Q1=8, Q2=2, J_fr=3, Q_fr=2),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def jtfs64(request):
    return TimeFrequencyScattering(**CONFIGS[request.param]).double()


def _f32(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32).astype(np.float64))


def _first_order_by_definition(jtfs, x_pad: torch.Tensor, n1: int) -> torch.Tensor:
    k1 = jtfs.config.k1(jtfs.bank.psi1[n1].j)
    X = torch.fft.fft(x_pad)
    return torch.fft.ifft(fold_mean(X * _f32(jtfs.bank.psi1_f[n1]), k1)).abs()


def test_every_cluster_row_is_the_first_order_by_definition(jtfs64):
    x_pad = jtfs64.padded(torch.randn(2, jtfs64.config.N, dtype=torch.float64))
    U1 = jtfs64.scalograms(x_pad)
    Np, seen = jtfs64.config.Np, []
    for cluster, U in zip(jtfs64.plan.first_order.layout, U1, strict=True):
        for r, n1 in enumerate(cluster.n1):
            expected = _first_order_by_definition(jtfs64, x_pad, n1)
            got = U[:, r, :: 2 ** cluster.alpha(r, Np)]
            torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12 * expected.abs().max().item())
            seen.append(n1)
    assert sorted(seen) == list(range(jtfs64.n1_limit))


def test_second_order_rows_share_one_phase_with_the_definition(jtfs64):
    """For a spread of ``n2``: ``|a . Y_ours| == |a . Y_def|`` for random complex row weights ``a``."""
    c = jtfs64.config
    x_pad = jtfs64.padded(torch.randn(1, c.N, dtype=torch.float64))
    n2s = sorted({p.n2 for p in jtfs64.paths})
    gen = torch.Generator().manual_seed(0)
    for n2 in n2s[:: max(1, len(n2s) // 4)] + [n2s[-1]]:
        p = next(p for p in jtfs64.paths if p.n2 == n2)
        reader = jtfs64.plan.reader(p)
        planes = jtfs64.second_order(jtfs64.first_order(x_pad, reader.parts), reader)
        Y = torch.complex(planes[:, 0], planes[:, 1])  # (1, n1, M2), rows in reader.row_n1 order
        rows = []
        for n1 in reader.row_n1:
            k1 = c.k1(jtfs64.bank.psi1[n1].j)
            h = _f32(filters.fold_sum(jtfs64.bank.psi2_f[n2], k1))
            U1 = _first_order_by_definition(jtfs64, x_pad, n1)
            rows.append(torch.fft.ifft(fold_mean(torch.fft.fft(U1) * h, p.j2 - k1)))
        Y_def = torch.stack(rows, dim=-2)
        a = torch.randn(4, Y.shape[-2], dtype=torch.complex128, generator=gen)
        atol = 1e-12 * Y_def.abs().max()
        torch.testing.assert_close((a @ Y).abs(), (a @ Y_def).abs(), rtol=1e-9, atol=atol)


def _tiny(name):
    return TimeFrequencyScattering(**CONFIGS[name]).double()


Tensors = tuple[torch.Tensor, ...] | torch.Tensor


def _real(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def _inner(a: Tensors, b: Tensors) -> torch.Tensor:
    """The real inner product (complex numbers as pairs of reals), autograd's convention."""
    a, b = (a,) if isinstance(a, torch.Tensor) else a, (b,) if isinstance(b, torch.Tensor) else b
    return sum((_real(x) * _real(y)).sum() for x, y in zip(a, b, strict=True))


def _check_adjoint(fn, x: tuple[torch.Tensor, ...], seed: int = 0) -> None:
    """``<A x, y> == <x, A^T y>`` (``A^T`` = ``fn``'s backward), and ``A^T``'s own backward is ``A``:
    ``<A^T y, z> == <y, A z>``, to 1e-12 relative, for random ``x, y, z`` (float64)."""
    gen = torch.Generator().manual_seed(seed)
    x = tuple(t.detach().requires_grad_(True) for t in x)
    Ax = fn(*x)
    outs = (Ax,) if isinstance(Ax, torch.Tensor) else Ax
    y = tuple(torch.randn(o.shape, dtype=o.dtype, generator=gen).requires_grad_(True) for o in outs)
    ATy = torch.autograd.grad(outs, x, y, create_graph=True)
    lhs, rhs = _inner(outs, y), _inner(x, ATy)
    assert abs(lhs - rhs).item() <= 1e-12 * abs(lhs).item()
    z = tuple(torch.randn(t.shape, dtype=t.dtype, generator=gen) for t in x)
    (Az_via_double_backward,) = (torch.autograd.grad(ATy, y, z),)
    Az = fn(*z)
    torch.testing.assert_close(Az_via_double_backward, (Az,) if isinstance(Az, torch.Tensor) else Az)


@pytest.mark.parametrize("name", ["wide", "narrow"])
def test_first_order_maps_have_exact_adjoints(name):
    """``x_pad -> ranges of (V, -iV)`` and, per cluster, ``range -> (Re u, Im u)``; and the first
    order with its modulus passes gradcheck and gradgradcheck (its second derivatives are what
    the θ-IS warmup uses)."""
    jtfs = _tiny(name)
    layout = jtfs.plan.first_order.layout
    parts = [SecondOrderPart(c, 0, len(cl.n1)) for c, cl in enumerate(layout)]
    x_pad = torch.randn(2, jtfs.config.Np, dtype=torch.float64)
    _check_adjoint(lambda x: jtfs.spectra(x, len(layout)), (x_pad,))
    ranges = jtfs.spectra(x_pad, len(layout))
    for part in parts:
        Fc = torch.randn(ranges[part.cluster].shape, dtype=torch.float64)
        _check_adjoint(lambda F, part=part: jtfs.planes(F, part), (Fc,))
    x_pad = x_pad[:1].requires_grad_(True)

    def fn(x_pad):
        return tuple(U[..., :: max(1, U.shape[-1] // 64)] for U in jtfs.first_order(x_pad, parts))

    assert torch.autograd.gradcheck(fn, (x_pad,), eps=1e-6, atol=1e-9, rtol=1e-6)
    assert torch.autograd.gradgradcheck(fn, (x_pad,), eps=1e-6, atol=1e-8, rtol=1e-6, fast_mode=True)


@pytest.mark.parametrize("name", ["wide", "narrow", "Q2=2"])
def test_second_order_has_an_exact_adjoint(name):
    """``U1 parts -> Y`` for the first and the last wavelet ``n2`` (one- and two-sided runs)."""
    jtfs = _tiny(name)
    clusters = jtfs.plan.first_order.layout
    for p in (jtfs.paths[0], jtfs.paths[-1]):
        reader = jtfs.plan.reader(p)
        sizes = [(part.rows, clusters[part.cluster].length) for part in reader.parts]
        U1 = tuple(torch.rand(2, G, M, dtype=torch.float64) for G, M in sizes)
        _check_adjoint(lambda *U, reader=reader: jtfs.second_order(U, reader), U1)
