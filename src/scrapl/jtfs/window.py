"""A band of a real signal's spectrum, read through real filters and synthesised back to time.

Every JTFS wavelet is real in the Fourier domain and negligible outside a band of bins. Filtering a
real signal ``v`` with wavelet ``h`` and decimating by ``2**s`` (``jtfs-spec.md`` §4-5) is

``u = IDFT_{M/2^s}( fold_mean( DFT_M(v) · h, s ) )``,

so only the bins of the band matter: they are read from the half spectrum of ``v`` (``rfft``; a bin
``k > M/2`` is the conjugate of bin ``M - k``), weighted, and placed as one contiguous run of the
folded spectrum. The complex result ``u`` is returned as two real planes ``(Re u, Im u)`` stacked on
axis -3, on which the modulus that follows is a cheap contiguous pass.

**Placement.** Moving the whole run to another start bin multiplies ``u`` by ``exp(2πi c t / n)``,
a phase that every later modulus removes, provided all rows that are later combined linearly are
moved alike. The first order puts each wavelet's run at bin 0; the second order puts the runs of
one wavelet at a common offset for all its rows.

**One-sided synthesis.** When the run fits in bins ``0 .. n/2 - 1``, ``Re u = irfft(V')`` and
``Im u = irfft(-i V')``, with ``V'`` the run halved except at bin 0: two real inverse FFTs, each half
the cost of a complex one, that produce the planes directly. Otherwise (wide filters of small
configurations) a complex inverse FFT does it.

:func:`synthesize` is a linear autograd function whose backward is its exact adjoint (forward FFTs
of the two planes, read at the run, scattered back onto the half spectrum), written with
differentiable operations so that it can be differentiated again (Hessian-vector products).
:func:`synthesize_real` is the same for real rows whose ``rfft`` it takes itself (one second-order
wavelet on the first-order scalograms): its adjoint ends with one real inverse FFT of the scattered
run, without a full-size pass for the ``rfft``'s own adjoint.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .ops import one_sided_scale

__all__ = [
    "Window",
    "band_hull",
    "make_window",
    "full_spectrum",
    "synthesize",
    "synthesize_real",
    "place",
]


class Window(NamedTuple):
    """How to read ``G`` filter bands from a half spectrum and place them for an inverse DFT.

    Attributes:
        bins: bins of the half spectrum to read, ``(G, S)`` (one run per filter, input ``(B, H)``)
            or ``(S,)`` (one filter for every row of an input ``(B, G, H)``).
        weight: ``(G, S, 2)`` or ``(S, 2)`` real factors of the (Re, Im) of each bin read: the
            filter value times ``2**-s``, with the sign of Im flipped where the bin is read
            conjugated, halved on bins > 0 for a one-sided synthesis.
        adjoint_weight: the factors of the exact adjoint (the same without the halving, divided by
            ``n_out``).
        offset: first bin of the run in the output spectrum.
        n_out: length of the inverse DFT.
        one_sided: synthesise with two real inverse FFTs (the run lies in ``0 .. n_out/2 - 1``).
        starts: per-filter runs only: the first bin of each run in the full spectrum (of ``n_in``
            bins), for :func:`synthesize` given a :func:`full_spectrum`.
        direct_weight: per-filter runs only: ``weight`` for bins read from the full spectrum,
            where no bin is read conjugated, ``(G, S, 2)``.
        n_in: per-filter runs only: length of the full spectrum.
    """

    bins: Tensor
    weight: Tensor
    adjoint_weight: Tensor
    offset: int
    n_out: int
    one_sided: bool
    starts: tuple[int, ...] = ()
    direct_weight: Tensor | None = None
    n_in: int = 0


def _circular_hull(mask: Tensor) -> tuple[int, int]:
    """``(start, width)`` of the smallest circular interval covering the True entries of ``mask``."""
    M = mask.shape[-1]
    on = torch.nonzero(mask).flatten().tolist()
    if not on:
        return 0, 1
    gaps = [(on[(i + 1) % len(on)] - on[i]) % M or M for i in range(len(on))]
    i = max(range(len(on)), key=lambda i: gaps[i])  # the largest empty arc ends the interval
    start = on[(i + 1) % len(on)]
    return start, M - gaps[i] + 1


def band_hull(h_f: Tensor, rel_tol: float = 1e-12) -> list[tuple[int, int]]:
    """``(start, width)`` of each filter's band: the smallest circular run of bins holding every bin
    where ``|h| >= rel_tol max|h|``. Dropping the other bins changes a result by less than
    ``rel_tol`` of its scale. ``h_f``: shape ``(G, M)``."""
    return [_circular_hull(h.abs() >= rel_tol * h.abs().max()) for h in h_f]


def make_window(h_f: Tensor, s: int, *, shift: int | None = None, rel_tol: float = 1e-12) -> Window:
    """Build the :class:`Window` of real filters ``h_f`` (shape ``(G, M)``, or ``(M,)`` for one filter
    applied to every row) with decimation ``2**s`` (``n_out = M / 2**s``).

    Args:
        h_f: filters in the Fourier domain (real), dtype and device of the computation.
        s: decimation exponent (the mean-fold's ``2**-s`` is part of the weights).
        shift: None: every filter's run starts at output bin 0. An int ``c``: the run of the (single)
            filter starts at ``(start - c) mod n_out``, ``start`` its band's first bin.
        rel_tol: bins below ``rel_tol`` of a filter's peak are left out (see :func:`band_hull`).
    """
    single = h_f.dim() == 1
    h2 = h_f[None] if single else h_f
    M = h2.shape[-1]
    n_out = M // 2**s
    hulls = band_hull(h2, rel_tol)
    S = max(w for _, w in hulls)
    ar = torch.arange(S, device=h2.device)
    k = (torch.tensor([a for a, _ in hulls], device=h2.device)[:, None] + ar) % M  # (G, S)
    inside = ar < torch.tensor([w for _, w in hulls], device=h2.device)[:, None]
    w = torch.gather(h2, 1, k) * inside * 2.0**-s
    sign = torch.where(k > M // 2, -1.0, 1.0).to(w.dtype)
    pair = torch.stack([w, w * sign], dim=-1)  # (G, S, 2)
    offset = 0 if shift is None else (hulls[0][0] - shift) % n_out
    one_sided = offset + S <= n_out // 2
    half = torch.ones(S, 1, dtype=w.dtype, device=w.device)
    if one_sided:
        half[int(offset == 0) :] = 0.5  # irfft doubles every bin but 0 (and n/2, never used)
    index = torch.where(k <= M // 2, k, M - k)
    if single:
        weight, adjoint_weight = (pair[0] * half).contiguous(), (pair[0] / n_out).contiguous()
        return Window(index[0], weight, adjoint_weight, int(offset), n_out, one_sided)
    return Window(
        index,
        (pair * half).contiguous(),
        (pair / n_out).contiguous(),
        int(offset),
        n_out,
        one_sided,
        starts=tuple(int(a) for a, _ in hulls),
        direct_weight=(torch.stack([w, w], dim=-1) * half).contiguous(),
        n_in=M,
    )


DIRECT_MIN_BINS = 1024
"""A one-sided synthesis given a :func:`full_spectrum` reads runs at least this wide as slices of
it, one filter at a time, instead of gathering them through ``bins``: no gathered copy, and each
slice is read while it is in cache."""


def full_spectrum(spectrum: Tensor, n: int, extra: int) -> tuple[Tensor, Tensor]:
    """The full spectrum ``V`` of real signals of length ``n`` from their half spectrum, extended
    circularly by ``extra`` bins, and ``-i V``, as real views ``(B, n + extra, 2)``.

    With them, :func:`synthesize` reads every run of a per-filter window (``S <= extra`` bins) as
    one slice, conjugate bins included.
    """
    H = spectrum.shape[-1]
    with torch.no_grad():
        full = torch.cat([spectrum, spectrum[..., 1 : n - H + 1].flip(-1).conj()], dim=-1)
        full = torch.cat([full, full[..., :extra]], dim=-1).resolve_conj()
        return torch.view_as_real(full), torch.view_as_real(full * -1j)


def _weighted_runs(full: tuple[Tensor, Tensor], window: Window, run: Tensor) -> None:
    """Write ``V`` and ``-i V`` weighted (each ``(B, G, S)`` complex) into ``run[:, 0]`` and
    ``run[:, 1]``, reading each filter's run as a slice of ``full`` (:func:`full_spectrum`)."""
    S = window.bins.shape[-1]
    assert window.direct_weight is not None  # per-filter windows always have one
    for p, source in enumerate(full):
        out = torch.view_as_real(run.select(-3, p))  # (B, G, S, 2)
        for g, a in enumerate(window.starts):
            torch.mul(source[..., a : a + S, :], window.direct_weight[g], out=out[..., g, :, :])


def place(V: Tensor, start: int, n_out: int) -> Tensor:
    """Fold a run of bins ``start .. start + S - 1`` (last axis of ``V``) onto ``n_out`` bins:
    ``out[(start + i) mod n_out] += V[i]``, by zero-padding (and summing wrapped blocks).

    Shape: ``(..., S) -> (..., n_out)``.
    """
    S = V.shape[-1]
    end = start + S
    if end <= n_out:
        return F.pad(V, (start, n_out - end))
    r = -(-end // n_out)
    W = F.pad(V, (start, r * n_out - end))
    return W.reshape(*V.shape[:-1], r, n_out).sum(dim=-2)


def _bins(spectrum: Tensor, window: Window) -> Tensor:
    """The bins of every row's run: ``(B, H) -> (B, G, S)`` (per-filter runs) or
    ``(B, G, H) -> (B, G, S)`` (one filter), complex, before weighting."""
    if window.bins.dim() == 2:
        G, S = window.bins.shape
        return spectrum.index_select(-1, window.bins.flatten()).unflatten(-1, (G, S))
    return spectrum.index_select(-1, window.bins)


def _synthesize(spectrum: Tensor, window: Window, full: tuple[Tensor, Tensor] | None = None) -> Tensor:
    n, S = window.n_out, window.bins.shape[-1]
    G = window.bins.shape[0] if window.bins.dim() == 2 else spectrum.shape[-2]
    lead = spectrum.shape[:-1] if window.bins.dim() == 2 else spectrum.shape[:-2]
    if window.one_sided:
        # the two half spectra (B, 2, G, n/2 + 1), every entry written once: zeros around the run,
        # the weighted run V for Re u, -i V for Im u
        halves = torch.empty(*lead, 2, G, n // 2 + 1, dtype=spectrum.dtype, device=spectrum.device)
        halves[..., : window.offset].zero_()
        halves[..., window.offset + S :].zero_()
        run = halves[..., window.offset : window.offset + S]
        if full is not None and window.starts and S >= DIRECT_MIN_BINS:
            _weighted_runs(full, window, run)
        else:
            bins = torch.view_as_real(_bins(spectrum, window))  # (B, G, S, 2)
            torch.mul(bins, window.weight, out=torch.view_as_real(run.select(-3, 0)))
            torch.mul(run.select(-3, 0), -1j, out=run.select(-3, 1))
        return torch.fft.irfft(halves, n=n)  # (B, 2, G, n): Re u, Im u
    bins = torch.view_as_real(_bins(spectrum, window))  # (B, G, S, 2)
    V = torch.view_as_complex(bins * window.weight)
    u = torch.fft.ifft(place(V, window.offset, n))
    return torch.stack([u.real, u.imag], dim=-3)


def _adjoint_bins(g: Tensor, window: Window, weight: Tensor) -> Tensor:
    """The gradient of the planes read back at the run: ``(B, 2, G, n) -> (B, G, S)`` complex,
    each bin's (Re, Im) times ``weight``."""
    S = window.bins.shape[-1]
    if window.one_sided:
        spec = torch.fft.rfft(g)[..., window.offset : window.offset + S]  # (B, 2, G, S)
        spec = torch.add(spec.select(-3, 0), spec.select(-3, 1), alpha=1j)  # F(g_re) + i F(g_im)
    else:
        pos = (window.offset + torch.arange(S, device=g.device)) % window.n_out
        spec = torch.fft.fft(torch.complex(g.select(-3, 0), g.select(-3, 1))).index_select(-1, pos)
    return torch.view_as_complex(torch.view_as_real(spec) * weight)


def _scatter(g_bins: Tensor, window: Window, n_in: int) -> Tensor:
    """Add the run's bins ``g_bins`` (``(B, G, S)``) into a zero half spectrum of ``n_in`` bins at
    ``window.bins``: ``(B, n_in)`` for per-filter runs, ``(B, G, n_in)`` for one filter."""
    if window.bins.dim() == 2:
        out = g_bins.new_zeros(*g_bins.shape[:-2], n_in)
        return out.index_add_(-1, window.bins.flatten(), g_bins.flatten(-2))
    out = g_bins.new_zeros(*g_bins.shape[:-1], n_in)
    return out.index_add_(-1, window.bins, g_bins)


def _adjoint(g: Tensor, window: Window, n_in: int) -> Tensor:
    """The adjoint of :func:`_synthesize`: gradient of the planes -> gradient of the half spectrum."""
    return _scatter(_adjoint_bins(g, window, window.adjoint_weight), window, n_in)


def _adjoint_real(g: Tensor, window: Window, n: int) -> Tensor:
    """The adjoint of ``_synthesize(rfft(v), window)``: gradient of the planes -> gradient of the
    real rows ``v`` (length ``n``). The adjoint of ``rfft`` is a real inverse FFT of the half
    spectrum halved on the bins it counts twice; the halving is applied to the run's ``S`` bins
    before they are scattered, not to the full spectrum."""
    H = n // 2 + 1
    scale = one_sided_scale(H, n, g.dtype, g.device)[window.bins]  # (..., S, 2)
    g_bins = _adjoint_bins(g, window, window.adjoint_weight * scale)
    return torch.fft.irfft(_scatter(g_bins, window, H), n=n, norm="forward")


class _Synthesis(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spectrum: Tensor, window: Window, full: tuple[Tensor, Tensor] | None) -> Tensor:
        ctx.window, ctx.n_in = window, spectrum.shape[-1]
        return _synthesize(spectrum, window, full)

    @staticmethod
    def backward(ctx, g: Tensor):
        return _adjoint(g, ctx.window, ctx.n_in), None, None


class _RealSynthesis(torch.autograd.Function):
    @staticmethod
    def forward(ctx, signal: Tensor, window: Window) -> Tensor:
        ctx.window, ctx.n = window, signal.shape[-1]
        return _synthesize(torch.fft.rfft(signal), window)

    @staticmethod
    def backward(ctx, g: Tensor):
        return _adjoint_real(g, ctx.window, ctx.n), None


def synthesize(spectrum: Tensor, window: Window, full: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Return ``u = IDFT_n(placed run of spectrum · filter)`` of every row as real planes.

    Args:
        spectrum: half spectrum (``rfft``) of real signals, complex. Shape ``(B, H)`` for a window
            with per-filter runs (``bins`` of shape ``(G, S)``), ``(B, G, H)`` for a window of one
            filter (``bins`` of shape ``(S,)``).
        window: the :class:`Window`.
        full: optionally, :func:`full_spectrum` of ``spectrum`` (built once for several windows):
            per-filter runs of at least :data:`DIRECT_MIN_BINS` bins are then read from it as
            slices (the same values, faster).

    Returns:
        Shape ``(B, 2, G, n_out)`` real: ``[:, 0]`` is ``Re u``, ``[:, 1]`` is ``Im u``.

    Example:
        >>> h = torch.zeros(2, 16); h[0, 2:5] = 1.0; h[1, 5:9] = 1.0
        >>> planes = synthesize(torch.fft.rfft(torch.randn(3, 16)), make_window(h, 1))
        >>> tuple(planes.shape)
        (3, 2, 2, 8)
    """
    return _Synthesis.apply(spectrum, window, full)


def synthesize_real(signal: Tensor, window: Window) -> Tensor:
    """Return ``synthesize(rfft(signal), window)`` for real rows ``signal``, as one linear function.

    The same values; the backward is the exact adjoint of the composition, which costs one full-size
    pass less than the adjoint of ``rfft`` after that of :func:`synthesize` (the halving of the
    one-sided spectrum is applied to the run only) and touches the spectrum only where the run is.

    Args:
        signal: real rows, shape ``(B, G, n)``.
        window: :class:`~scrapl.jtfs.window.Window` of one filter (``bins`` of shape ``(S,)``)
            built for spectra of ``n // 2 + 1`` bins.

    Returns:
        Shape ``(B, 2, G, n_out)`` real: ``[:, 0]`` is ``Re u``, ``[:, 1]`` is ``Im u``.
    """
    return _RealSynthesis.apply(signal, window)
