"""Properties of the JTFS engine: one path == all paths == full transform, batching, dtypes,
gradients (gradcheck, gradgradcheck), silent inputs, shapes, metadata, bad configurations.

The stages themselves (first and second order against their definition, exact adjoints) are in
``test_jtfs_stages.py``; the engine's buffers and devices in ``test_jtfs_plan.py``."""

from __future__ import annotations

import doctest

import pytest
import torch

from scrapl import TimeFrequencyScattering
from scrapl.jtfs import ops, scalogram
from scrapl.jtfs.full import unpad_frames

E = dict(shape=4096, J=6, Q1=2, Q2=1, J_fr=2, Q_fr=1)
TINY = dict(shape=256, J=3, Q1=1, Q2=1, J_fr=1, Q_fr=1)
# narrow first-order wavelets: some bands fit a one-sided (two real inverse FFT) synthesis
NARROW = dict(shape=512, J=4, Q1=8, Q2=1, J_fr=1, Q_fr=1)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread (restored afterwards): on a shared CI machine, a second thread that has
    to wait for a core turns each of the many small FFTs here from microseconds into milliseconds;
    the results do not depend on the thread count."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def jtfs_E():
    return TimeFrequencyScattering(**E)


def test_one_path_equals_all_paths_and_full(jtfs_E):
    x = torch.randn(2, E["shape"])
    every = jtfs_E.all_paths(x)
    full = jtfs_E.full(x, unpad=False)
    K1 = len(jtfs_E.full_paths) - jtfs_E.n_paths
    assert full.shape[1] == len(jtfs_E.full_paths)
    for k in range(jtfs_E.n_paths):
        one = jtfs_E.path(x, k)
        torch.testing.assert_close(every[k], one, rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(full[:, K1 + k], one, rtol=1e-6, atol=1e-9)


def test_full_unpadding_keeps_signal_frames(jtfs_E):
    x = torch.randn(1, E["shape"])
    assert torch.equal(jtfs_E.full(x), jtfs_E.full(x, unpad=False)[..., unpad_frames(jtfs_E.config)])
    assert jtfs_E.full(x).shape == (1, 32, 11, 64)


def test_subset_of_paths_in_requested_order(jtfs_E):
    x = torch.randn(1, E["shape"])
    got = jtfs_E.all_paths(x, [27, 3, 3, 10])
    for k, S in zip([27, 3, 3, 10], got, strict=True):
        torch.testing.assert_close(S, jtfs_E.path(x, k), rtol=1e-6, atol=1e-9)


def test_batched_equals_one_by_one(jtfs_E):
    x = torch.randn(3, E["shape"])
    for k in (0, 13, 27):
        batched = jtfs_E.path(x, k)
        single = torch.cat([jtfs_E.path(x[b : b + 1], k) for b in range(3)])
        torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(
    "T,F,shape",
    [
        (None, None, (11, 128)),
        (16, None, (11, 512)),
        ("global", None, (11, 1)),
        (None, 2, (14, 128)),
        (100, 3, (18, 128)),
    ],
)
def test_path_shapes(T, F, shape):
    """Coefficient shapes of jtfs-spec.md §9.1 (edge configurations)."""
    jtfs = TimeFrequencyScattering(**E, T=T, F=F)
    assert jtfs.n_paths == 28
    assert tuple(jtfs.path(torch.randn(1, E["shape"]), 5).shape[1:]) == shape
    assert jtfs.path_shape(5) == shape


def test_global_frequential_average_shapes():
    jtfs = TimeFrequencyScattering(**E, F="global")
    x = torch.randn(1, E["shape"])
    assert tuple(jtfs.path(x, 0).shape[1:]) == (11, 128)  # spin 0 keeps its rows
    assert tuple(jtfs.path(x, 1).shape[1:]) == (1, 128)
    with pytest.raises(ValueError, match="F='global'"):
        jtfs.full(x)


def test_float64_matches_float32(jtfs_E):
    x = torch.randn(2, E["shape"], dtype=torch.float64)
    jtfs64 = TimeFrequencyScattering(**E).double()
    for k in (0, 20):
        S64 = jtfs64.path(x, k)
        assert S64.dtype == torch.float64
        torch.testing.assert_close(
            jtfs_E.path(x.float(), k).double(), S64, rtol=1e-4, atol=1e-6 * S64.abs().max().item()
        )


def test_half_input_computes_in_float32(jtfs_E):
    x = torch.randn(1, E["shape"])
    S = jtfs_E.path(x.half(), 4)
    assert S.dtype == torch.float32
    torch.testing.assert_close(S, jtfs_E.path(x.half().float(), 4))


def test_half_module_computes_in_float32_with_rounded_filters():
    jtfs = TimeFrequencyScattering(**E)
    x = torch.randn(1, E["shape"])
    S = jtfs.path(x, 9)
    jtfs.half()
    assert jtfs.plan.first_order.clusters[0].weight.dtype == torch.float16
    assert jtfs.compute_dtype == torch.float32
    S_half = jtfs.path(x, 9)
    assert S_half.dtype == torch.float32
    torch.testing.assert_close(S_half, S, rtol=2e-2, atol=2e-3 * S.abs().max().item())


def test_dtype_moves_keep_exact_float64_constants():
    """``.double()`` computes in float64 with the float64 operators, also after a round trip
    through float32: ``.double().float().double()`` gives exactly a fresh double module's
    coefficients (the band weights are float32 numbers, the dense operators keep float64 values),
    and float32 ones to float32 accuracy."""
    x = torch.randn(1, E["shape"], dtype=torch.float64)
    fresh = TimeFrequencyScattering(**E).double()
    moved = TimeFrequencyScattering(**E)
    S32 = moved.path(x.float(), 7)
    moved.double().float()
    assert moved.compute_dtype == torch.float32
    torch.testing.assert_close(moved.path(x.float(), 7), S32, rtol=0, atol=0)
    moved.double()
    assert moved.compute_dtype == torch.float64
    for k in (0, 7, 27):
        assert torch.equal(moved.path(x, k), fresh.path(x, k))
    S64 = fresh.path(x, 7)
    torch.testing.assert_close(S64.float(), S32, rtol=1e-4, atol=1e-6 * S32.abs().max().item())


def test_silent_input_has_zero_finite_gradient(jtfs_E):
    x = torch.zeros(1, E["shape"], requires_grad=True)
    y = torch.randn(1, E["shape"])
    for k in (0, 15):
        (grad,) = torch.autograd.grad(((jtfs_E.path(x, k) - jtfs_E.path(y, k)) ** 2).sum(), x)
        assert torch.isfinite(grad).all()
        assert grad.abs().max() == 0


def test_silent_bands_leave_the_loss_gradient_stable():
    """A pure low tone leaves most first-order bands numerically silent: there the modulus is at
    its kink, ``|u|`` is rounding noise and ``u / |u|`` a random phase. Those bands must not
    perturb the loss gradient: in float64, noise of 1e-13 on the input moves it by less than 1e-6
    (relative); in float32 it is finite, and within a factor 2 of the float64 one in norm (float32
    rounding in the silent bands makes a few percent of difference, as in scrapl-loss 0.1.0)."""
    t = torch.arange(E["shape"], dtype=torch.float64)
    x = torch.sin(2 * torch.pi * 0.001 * t)[None]
    y = 0.8 * torch.sin(2 * torch.pi * 0.0012 * t + 1.0)[None]
    noise = 1e-13 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    jtfs64, jtfs32 = TimeFrequencyScattering(**E).double(), TimeFrequencyScattering(**E)

    def grad(m, x, dtype):
        xk = x.to(dtype).requires_grad_(True)
        (g,) = torch.autograd.grad((m.path(xk, k) - m.path(y.to(dtype), k)).square().sum(), xk)
        return g.double()

    for k in (0, 9, 27):
        g64 = grad(jtfs64, x, torch.float64)
        assert ((grad(jtfs64, x + noise, torch.float64) - g64).norm() / g64.norm()).item() < 1e-6, k
        g32 = grad(jtfs32, x, torch.float32)
        assert torch.isfinite(g32).all()
        assert 0.5 < (g32.norm() / g64.norm()).item() < 2.0, k


@pytest.mark.parametrize("cfg", [TINY, NARROW], ids=["tiny", "narrow"])
def test_gradcheck_and_gradgradcheck_float64(cfg):
    jtfs = TimeFrequencyScattering(**cfg).double()
    y = torch.randn(1, cfg["shape"], dtype=torch.float64)
    x = torch.randn(1, cfg["shape"], dtype=torch.float64, requires_grad=True)
    for k in (0, jtfs.n_paths - 1):

        def fn(x, k=k):
            return ((jtfs.path(x, k) - jtfs.path(y, k)) ** 2).sum()

        assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-7, rtol=1e-4)
        # fast mode checks random projections of the Hessian (the full one costs 2N backward passes)
        assert torch.autograd.gradgradcheck(fn, (x,), eps=1e-6, atol=1e-6, rtol=1e-3, fast_mode=True)


def test_metadata(jtfs_E):
    paths = jtfs_E.paths
    assert [p.idx for p in paths] == list(range(28))
    assert paths[0].key == (3, 0) and paths[-1].key == (6, 6)
    for p in paths:
        assert p.n1_max == sum(1 for w in jtfs_E.bank.psi1 if w.j < p.j2)
        assert p.spin == (0 if p.n_fr == 0 else (1 if p.n_fr <= 3 else -1))
        assert p.rate_hz(8000) == pytest.approx(p.xi2 * 8000)
        assert p.scale_cycles_per_octave == pytest.approx(p.xi_fr * E["Q1"])
    assert paths[1].scale_cycles_per_octave == pytest.approx(0.35 * 2)
    assert paths[4].scale_cycles_per_octave == pytest.approx(-0.35 * 2)
    assert jtfs_E.describe()["J_fr"] == 2


@pytest.mark.parametrize("module", [scalogram, ops], ids=["scalogram", "ops"])
def test_doctests(module):
    assert doctest.testmod(module, raise_on_error=False).failed == 0


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(J=0), ValueError, "J must be >= 1"),
        (dict(J=2.5), TypeError, "J must be an int"),
        (dict(Q1=0), ValueError, "Q1"),
        (dict(Q2=True), TypeError, "Q2"),
        (dict(J_fr=-1), ValueError, "J_fr"),
        (dict(Q_fr="2"), TypeError, "Q_fr"),
        (dict(T=0), ValueError, "T must be"),
        (dict(T=5000), ValueError, "T must be"),
        (dict(T="local"), ValueError, "T must be"),
        (dict(T=1.5), TypeError, "T must be"),
        (dict(T=4), ValueError, "T=4 is too small"),
        (dict(F=0), ValueError, "F must be"),
        (dict(F=50), ValueError, "F must be"),
        (dict(F=8), ValueError, "F must be at most"),
        (dict(shape=1), ValueError, "shape"),
        (dict(Q1=1, Q2=2), ValueError, "Q2=2"),
    ],
)
def test_invalid_configuration(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        TimeFrequencyScattering(**{**E, **kwargs})


@pytest.mark.parametrize(
    "x,exc,match",
    [
        (torch.randn(4096), ValueError, "shape"),
        (torch.randn(1, 4000), ValueError, "shape"),
        (torch.ones(1, 4096, dtype=torch.int64), TypeError, "floating"),
        ([0.0] * 4096, TypeError, "torch.Tensor"),
    ],
)
def test_invalid_input(jtfs_E, x, exc, match):
    with pytest.raises(exc, match=match):
        jtfs_E.path(x, 0)


def test_invalid_path_index(jtfs_E):
    with pytest.raises(ValueError, match="path_idx"):
        jtfs_E.path(torch.randn(1, 4096), 28)
    with pytest.raises(ValueError, match="path_indices"):
        jtfs_E.all_paths(torch.randn(1, 4096), [0, -1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(jtfs_E):
    x = torch.randn(2, E["shape"])
    gpu = TimeFrequencyScattering(**E).cuda()
    for k in (0, 27):
        torch.testing.assert_close(gpu.path(x.cuda(), k).cpu(), jtfs_E.path(x, k), rtol=1e-4, atol=1e-6)
