"""Properties of the JTFS engine: one path == all paths == full transform, batching, dtypes,
gradients (gradcheck, gradgradcheck), silent inputs, shapes, metadata, bad configurations."""

from __future__ import annotations

import doctest
import functools

import pytest
import torch

from scrapl import TimeFrequencyScattering
from scrapl.jtfs import core, ops, window
from scrapl.jtfs.full import unpad_frames
from scrapl.jtfs.ops import fold_mean

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
    assert torch.equal(jtfs_E.full(x), jtfs_E.full(x, unpad=False)[..., unpad_frames(jtfs_E)])
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
    assert jtfs.psi1_f.dtype == torch.float16
    S_half = jtfs.path(x, 9)
    assert S_half.dtype == torch.float32
    torch.testing.assert_close(S_half, S, rtol=2e-2, atol=2e-3 * S.abs().max().item())


def test_dtype_move_rebuilds_operators():
    jtfs = TimeFrequencyScattering(**E)
    x = torch.randn(1, E["shape"])
    S32 = jtfs.path(x, 7)
    jtfs.double()
    assert jtfs.psi1_f.dtype == torch.float64
    S64 = jtfs.path(x.double(), 7)
    torch.testing.assert_close(S64.float(), S32, rtol=1e-4, atol=1e-6 * S32.abs().max().item())


def test_silent_input_has_zero_finite_gradient(jtfs_E):
    x = torch.zeros(1, E["shape"], requires_grad=True)
    y = torch.randn(1, E["shape"])
    for k in (0, 15):
        (grad,) = torch.autograd.grad(((jtfs_E.path(x, k) - jtfs_E.path(y, k)) ** 2).sum(), x)
        assert torch.isfinite(grad).all()
        assert grad.abs().max() == 0


def test_silent_band_gradient_is_finite(jtfs_E):
    """A pure low tone leaves most first-order bands (numerically) silent: gradients stay finite."""
    t = torch.arange(E["shape"], dtype=torch.float32)
    x = torch.sin(2 * torch.pi * 0.001 * t)[None].requires_grad_(True)
    loss = sum(jtfs_E.path(x, k).sum() for k in (0, 9, 27))
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all()


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


def _band_filters(one_sided: bool, rows: int) -> torch.Tensor:
    """``rows`` float64 band filters on 64 bins (decimated by 2 to 32): 9 bins wide, or 20 bins
    across bin 0, wider than half the decimated spectrum (which needs the complex inverse FFT)."""
    h = torch.zeros(rows, 64, dtype=torch.float64)
    width = 9 if one_sided else 20
    for g in range(rows):
        lo = 3 + 2 * g if one_sided else 60 - g
        h[g, torch.arange(lo, lo + width) % 64] = torch.linspace(0.2, 1.0, width, dtype=torch.float64)
    return h


def _window(one_sided: bool, rows: int) -> window.Window:
    w = window.make_window(_band_filters(one_sided, rows), 1)
    assert w.one_sided == one_sided
    return w


@pytest.mark.parametrize("one_sided", [True, False], ids=["one-sided", "two-sided"])
def test_window_synthesis_matches_filter_then_decimate(one_sided):
    """synthesize == IDFT_{M/2}(fold_mean(DFT(v) h, 1)) up to one phase per row (removed by |.|)."""
    w, h = _window(one_sided, 3), _band_filters(one_sided, 3)
    v = torch.randn(2, 64, dtype=torch.float64)
    expected = torch.fft.ifft(fold_mean(torch.fft.fft(v)[:, None] * h, 1)).abs()
    planes = window.synthesize(torch.fft.rfft(v), w)
    torch.testing.assert_close(planes.square().sum(-3).sqrt(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("one_sided", [True, False], ids=["one-sided", "two-sided"])
def test_window_synthesis_gradcheck_and_gradgradcheck(one_sided):
    w = _window(one_sided, 2)
    spec = torch.randn(2, 33, dtype=torch.complex128, requires_grad=True)

    def fn(spec):
        return window.synthesize(spec, w)

    assert torch.autograd.gradcheck(fn, (spec,), eps=1e-6, atol=1e-9, rtol=1e-6)
    assert torch.autograd.gradgradcheck(fn, (spec,), eps=1e-6, atol=1e-9, rtol=1e-6)


@pytest.mark.parametrize(
    ("lo", "width", "s", "shift", "one_sided"),
    [(3, 9, 1, 1, True), (60, 20, 1, 60, False), (28, 9, 0, 26, True), (3, 9, 1, 5, False)],
    ids=["one-sided", "two-sided across bin 0", "one-sided across the Nyquist bin", "wrapped run"],
)
def test_real_synthesis_is_synthesis_of_rfft_with_exact_adjoint(lo, width, s, shift, one_sided):
    """synthesize_real(v) == synthesize(rfft(v)) for one filter on every row, and its fused backward
    (the halving of the rfft's adjoint applied on the run only, bins 0 and M/2 not halved) passes
    gradcheck and gradgradcheck."""
    h = torch.zeros(64, dtype=torch.float64)
    h[torch.arange(lo, lo + width) % 64] = torch.linspace(0.2, 1.0, width, dtype=torch.float64)
    w = window.make_window(h, s, shift=shift)
    assert w.one_sided == one_sided
    v = torch.randn(2, 3, 64, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(
        window.synthesize_real(v, w), window.synthesize(torch.fft.rfft(v), w), rtol=1e-12, atol=1e-14
    )
    fn = functools.partial(window.synthesize_real, window=w)
    assert torch.autograd.gradcheck(fn, (v,), eps=1e-6, atol=1e-9, rtol=1e-6)
    assert torch.autograd.gradgradcheck(fn, (v,), eps=1e-6, atol=1e-9, rtol=1e-6)


@pytest.mark.parametrize("module", [window, ops], ids=["window", "ops"])
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


def test_modulus_backward_same_with_and_without_create_graph():
    """The modulus' backward takes a plane-by-plane route when no graph of it is recorded and a
    differentiable one under ``create_graph``: the same gradient ``g (re, im) / (|z| + eps)``, 0 at z = 0."""
    planes = torch.randn(3, 2, 4, 16, dtype=torch.float64)
    planes[0, :, 1, 5] = 0.0
    g = torch.randn(3, 4, 16, dtype=torch.float64)
    p1 = planes.clone().requires_grad_(True)
    (fast,) = torch.autograd.grad(ops.modulus(p1), p1, g)
    p2 = planes.clone().requires_grad_(True)
    (graph,) = torch.autograd.grad(ops.modulus(p2), p2, g, create_graph=True)
    assert graph.requires_grad and not fast.requires_grad
    torch.testing.assert_close(fast, graph.detach(), rtol=0, atol=0)
    expected = planes * (g / (planes.square().sum(1).sqrt() + ops.MODULUS_EPS))[:, None]
    torch.testing.assert_close(fast, expected, rtol=1e-15, atol=0)
    assert (fast[0, :, 1, 5] == 0).all()


def test_wide_runs_read_from_the_full_spectrum_equal_gathered_runs(monkeypatch):
    """Given the full spectrum, one-sided synthesis reads runs of at least ``DIRECT_MIN_BINS`` bins
    as slices of it (conjugate bins included): the same planes as gathering them through ``bins``,
    for runs across the Nyquist bin and across bin 0, and the same gradient."""
    h = torch.zeros(3, 64, dtype=torch.float64)
    for g, lo in enumerate((28, 60, 5)):
        h[g, torch.arange(lo, lo + 9) % 64] = torch.linspace(0.2, 1.0, 9, dtype=torch.float64)
    w = window.make_window(h, 0)
    assert w.one_sided and w.starts == (28, 60, 5)
    spec = torch.fft.rfft(torch.randn(2, 64, dtype=torch.float64)).requires_grad_(True)
    full = window.full_spectrum(spec, 64, 9)
    gathered = window.synthesize(spec, w)
    monkeypatch.setattr(window, "DIRECT_MIN_BINS", 1)
    sliced = window.synthesize(spec, w, full)
    torch.testing.assert_close(sliced, gathered, rtol=0, atol=1e-15)
    g = torch.randn_like(sliced)
    torch.testing.assert_close(*torch.autograd.grad([sliced, gathered], [spec, spec], [g, g]))


def test_widest_first_order_group_read_from_the_full_spectrum_matches():
    """The paper configuration's widest first-order group (10 runs of 22061 bins, some across the
    Nyquist bin) qualifies for the slice route, which matches the gather route to float32 rounding."""
    jtfs = TimeFrequencyScattering(shape=32768, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2, T=4096, F=8)
    k1, start, stop = jtfs._k1_groups[0]
    w = jtfs._psi1_window(k1, start, stop, torch.float32)
    assert w.one_sided and w.bins.shape[-1] >= window.DIRECT_MIN_BINS
    x = torch.randn(1, 32768)
    X = jtfs.padded_spectrum(x)
    full = window.full_spectrum(X, jtfs.config.Np, w.bins.shape[-1])
    torch.testing.assert_close(core.first_order(X, w, full), core.first_order(X, w), rtol=1e-5, atol=1e-6)
