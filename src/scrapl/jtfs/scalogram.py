"""The linear stages around the first-order modulus, as autograd functions with exact adjoints.

**First order** (``jtfs-spec.md`` §4): from the padded signals ``x_pad`` to the analytic signals
``u`` of the first-order wavelets of a cluster (:mod:`scrapl.jtfs.bands`), as real planes
``(Re u, Im u)``, in two linear maps:

* :func:`spectrum`: ``X = rfft(x_pad)``, then for every cluster its range of the extended full
  spectrum ``V`` (one signed gather of ``X`` for all clusters);
* :func:`window`: row ``r`` of a cluster reads bins ``r d .. r d + M/2`` of its range (one view,
  ``unfold``, for the whole cluster), multiplied by complex weights ``w`` and ``-i w`` (zero
  outside its band, halved on bins > 0) in one product, and two real inverse FFTs of length ``M``
  give ``Re u = irfft(w V)`` and ``Im u = irfft(-i w V)`` (wide wavelets: one complex inverse FFT
  of the folded band).

**Second order** (§5): from the first-order moduli ``U1`` to ``Y[n2]``, as planes
``(Re Y, Im Y)``, one linear map (:func:`second_order`) of two steps:

* :func:`run`: each row zero-stuffed to its own sampling (``U1 * mask``: a row synthesised
  ``2**alpha`` times finer keeps every ``2**alpha``-th sample, whose DFT is the coarse one,
  repeated), ``rfft``, and the bins of its band read (the *run*);
* :func:`synthesis`: the runs of all rows weighted, placed with one common shift and synthesised
  with one inverse FFT of length ``M2 = Np / 2**j2``.

Each map is an ``autograd.Function`` whose backward applies the adjoint, itself an
``autograd.Function`` whose backward applies the map again (:class:`_Linear`), so gradients of
any order (the Hessian-vector products of the θ-IS warmup) use the same fast kernels. A step
creates one first-order node per cluster and evaluates cluster by cluster, so the backward frees
each cluster's gradients before the next (the peak memory of a per-cluster loop); without
autograd, :func:`run` and :func:`synthesis` stream the clusters (each one's moduli are freed once
its run is read). The constants come
from :class:`~scrapl.jtfs.plan.JTFSPlan`; the specs hold the sizes as plain ints, so that
``torch.compile`` sees constants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "SpectrumSpec",
    "WindowSpec",
    "RunSpec",
    "SynthesisSpec",
    "SecondOrderSpec",
    "spectrum",
    "window",
    "second_order",
    "run",
    "synthesis",
    "part_consts",
    "place",
]


class SpectrumSpec(NamedTuple):
    """Sizes of :func:`spectrum`: the padded length ``Np``, the length of each range, and whether
    the input is ``x_pad`` (False) or already its half spectrum ``rfft(x_pad)`` (True)."""

    n_pad: int
    spans: tuple[int, ...]
    from_half_spectrum: bool = False


class WindowSpec(NamedTuple):
    """Sizes of :func:`window` for rows of one cluster.

    Attributes:
        rows: ``G``; length: the FFT length ``M``; bins: bins per window (``M/2 + 1``: one-sided
        synthesis; a multiple of ``M``: two-sided, folded); first: the first row (row ``r`` reads
        bins ``r d .. r d + bins - 1`` of the range); stride: ``d``; lo, hi: the window bins that
        hold a band (the adjoint reads only those).
    """

    rows: int
    length: int
    bins: int
    first: int
    stride: int
    lo: int
    hi: int

    @property
    def one_sided(self) -> bool:
        return self.bins == self.length // 2 + 1


class RunSpec(NamedTuple):
    """Sizes of :func:`run`: rows ``G``, FFT length ``M``, run width ``S``."""

    rows: int
    length: int
    run: int


class SynthesisSpec(NamedTuple):
    """Sizes of :func:`synthesis`: run width ``S``, output length ``M2``, and whether the run fits
    below ``M2 / 2`` (two real inverse FFTs) or not (one complex)."""

    run: int
    n_out: int
    one_sided: bool


class SecondOrderSpec(NamedTuple):
    """Sizes of :func:`second_order`: the :class:`RunSpec` of each input, and the synthesis."""

    runs: tuple[RunSpec, ...]
    synthesis: SynthesisSpec


def place(run: Tensor, n_out: int) -> Tensor:
    """Fold a run of bins ``0 .. S-1`` (last axis) onto ``n_out`` bins: ``out[j mod n_out] += run[j]``.

    Shape: ``(..., S) -> (..., n_out)``.
    """
    S = run.shape[-1]
    if S <= n_out:
        return F.pad(run, (0, n_out - S))
    r = -(-S // n_out)
    return F.pad(run, (0, r * n_out - S)).unflatten(-1, (r, n_out)).sum(dim=-2)


# -- the four maps and their adjoints ---------------------------------------------------------------
def _spectrum(inputs: tuple[Tensor, ...], spec: SpectrumSpec, consts: tuple) -> tuple[Tensor, ...]:
    """``(B, Np)`` (or ``(B, Np/2 + 1)`` complex) -> one ``(B, span, 2)`` view per range.
    ``consts``: ``(spectrum_index, spectrum_sign, adjoint weights)``."""
    (x,) = inputs
    X = x if spec.from_half_spectrum else torch.fft.rfft(x)  # (B, Np/2 + 1)
    X = torch.view_as_real(X).flatten(-2)  # (B, Np + 2) real
    Fr = X.index_select(-1, consts[0]) * consts[1]  # (B, 2 sum(span)): per range (bin, re/im)
    return tuple(f.unflatten(-1, (-1, 2)) for f in Fr.split([2 * s for s in spec.spans], dim=-1))


def _spectrum_adjoint(grads: tuple[Tensor, ...], spec: SpectrumSpec, consts: tuple) -> Tensor:
    B, Np = grads[0].shape[0], spec.n_pad
    g = grads[0] if len(grads) == 1 else torch.cat(grads, dim=-2)  # (B, L, 2)
    folded = g.flatten(-2) * consts[2]  # signs (and the rfft's halving)
    gX = torch.view_as_complex(
        consts[2].new_zeros(B, Np + 2).index_add_(-1, consts[0], folded).view(B, -1, 2)
    )
    if spec.from_half_spectrum:
        return gX
    return torch.fft.irfft(gX, n=Np, norm="forward")


def _bands(F: Tensor, spec: WindowSpec) -> Tensor:
    """Row ``r`` of ``spec``'s rows reads bins ``r d .. r d + bins - 1`` of ``F`` ``(B, span, 2)``:
    a view ``(B, G, bins, 2)`` (windows that overlap share memory)."""
    if spec.stride == 0:  # every row reads the same bins
        return F[..., None, : spec.bins, :].expand(*F.shape[:-2], spec.rows, spec.bins, 2)
    windows = F.unfold(-2, spec.bins, spec.stride)  # (..., n, 2, bins)
    return windows[..., spec.first : spec.first + spec.rows, :, :].transpose(-1, -2)


def _window(inputs: tuple[Tensor, ...], spec: WindowSpec, consts: tuple, span: int) -> Tensor:
    """``(B, span, 2)`` -> planes ``(B, 2, G, M)``. ``consts``: ``(weight, adjoint_weight,
    positions)`` of the rows."""
    (Fc,) = inputs
    bands = torch.view_as_complex(_bands(Fc, spec)).unsqueeze(1)  # (B, 1, G, W)
    halves = bands * torch.view_as_complex(consts[0])  # (B, 2, G, W): w V, -i w V (or (B, 1, ..): w V)
    if spec.one_sided:  # Re u = irfft(w V), Im u = irfft(-i w V)
        return torch.fft.irfft(halves, n=spec.length)
    u = torch.fft.ifft(place(halves.squeeze(1), spec.length))  # (B, G, M)
    return torch.stack([u.real, u.imag], dim=1)


def _window_adjoint(grads: tuple[Tensor, ...], spec: WindowSpec, consts: tuple, span: int) -> Tensor:
    (g,) = grads
    B, M, W, lo, hi = g.shape[0], spec.length, spec.bins, spec.lo, spec.hi
    if spec.one_sided:
        bins = torch.fft.rfft(g)[..., lo:hi]  # (B, 2, G, hi - lo)
        bins = torch.add(bins.select(1, 0), bins.select(1, 1), alpha=1j)  # adjoint of (w, -i w)
    else:
        bins = torch.fft.fft(torch.complex(g.select(1, 0), g.select(1, 1)))  # (B, G, M)
        bins = (bins if W == M else bins.repeat(1, 1, W // M))[..., lo:hi]  # adjoint of the fold
    bins = torch.view_as_complex(torch.view_as_real(bins) * consts[1])
    gF = torch.zeros(B, span, dtype=_complex(g.dtype), device=g.device)
    return torch.view_as_real(gF.index_add_(-1, consts[2], bins.flatten(-2)))


def run(U1: Tensor, spec: RunSpec, consts: tuple) -> Tensor:
    """The bins of ``rfft(U1 * mask)`` that each row's second-order band reads (no autograd: part
    of :func:`second_order`; used alone to stream a forward without autograd).

    Args:
        U1: first-order moduli of ``G`` rows of a cluster, shape ``(B, G, M)``.
        spec: :class:`RunSpec`.
        consts: ``index`` (flat bins, ``(G S,)``) and ``mask`` (``(G, M)`` or None).

    Returns:
        Shape ``(B, G, S)`` complex, before the band's weights.
    """
    V = torch.fft.rfft(U1 if consts[1] is None else U1 * consts[1])  # (B, G, M/2 + 1)
    return V.flatten(-2).index_select(-1, consts[0]).unflatten(-1, (spec.rows, spec.run))


def synthesis(runs: Sequence[Tensor], spec: SynthesisSpec, consts: tuple) -> Tensor:
    """Weight the runs of the rows, place them and synthesise ``Y``'s planes ``(B, 2, n1, M2)`` (no
    autograd: part of :func:`second_order`). ``consts``: ``(weight, adjoint_weight, rotation,
    wrap)``."""
    r = runs[0] if len(runs) == 1 else torch.cat(list(runs), dim=-2)  # (B, n1, S)
    r = torch.view_as_complex(torch.view_as_real(r) * consts[0])
    if spec.one_sided:
        halves = r.unsqueeze(-3) * torch.view_as_complex(consts[2])  # (B, 2, n1, S): V, -iV
        return torch.fft.irfft(F.pad(halves, (0, spec.n_out // 2 + 1 - spec.run)), n=spec.n_out)
    u = torch.fft.ifft(place(r, spec.n_out))  # (B, n1, M2)
    return torch.stack([u.real, u.imag], dim=-3)


def part_consts(consts: tuple, i: int) -> tuple:
    """``(index, mask)`` of part ``i`` in the constants of :func:`second_order`."""
    return consts[4 + 2 * i : 6 + 2 * i]


def _second_order(inputs: tuple[Tensor, ...], spec: SecondOrderSpec, consts: tuple) -> Tensor:
    """``U1`` parts -> planes of ``Y``. ``consts``: ``(weight, adjoint_weight, rotation, wrap,
    *[index, mask] per part)``."""
    runs = [
        run(U1, r, part_consts(consts, i)) for i, (U1, r) in enumerate(zip(inputs, spec.runs, strict=True))
    ]
    return synthesis(runs, spec.synthesis, consts[:4])


def _second_order_adjoint(
    grads: tuple[Tensor, ...], spec: SecondOrderSpec, consts: tuple
) -> tuple[Tensor, ...]:
    (gY,) = grads
    S = spec.synthesis.run
    if spec.synthesis.one_sided:
        bins = torch.fft.rfft(gY)[..., :S]  # (B, 2, n1, S)
        g = torch.add(bins.select(-3, 0), bins.select(-3, 1), alpha=1j)  # adjoint of (V, -iV)
    else:
        bins = torch.fft.fft(torch.complex(gY.select(-3, 0), gY.select(-3, 1)))
        g = bins[..., :S] if consts[3] is None else bins.index_select(-1, consts[3])
    # the adjoint weights include the adjoint of rfft at the bins read (1/2: no run reads 0, M/2)
    g = torch.view_as_complex(torch.view_as_real(g) * consts[1])  # (B, n1, S)
    out = []
    parts = g.split([r.rows for r in spec.runs], dim=-2)
    for i, (g_part, r) in enumerate(zip(parts, spec.runs, strict=True)):
        index, mask = part_consts(consts, i)
        H = r.length // 2 + 1
        V = g_part.new_zeros(g.shape[0], r.rows * H).index_add_(-1, index, g_part.flatten(-2))
        U1 = torch.fft.irfft(V.unflatten(-1, (r.rows, H)), n=r.length, norm="forward")
        out.append(U1 if mask is None else U1 * mask)
    return tuple(out)


def _complex(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


# -- autograd ---------------------------------------------------------------------------------------
class _Op(NamedTuple):
    """A linear map: ``forward(inputs, spec, consts, *extra)`` of a tuple of tensors; ``adjoint``
    the same for its transpose; ``extra`` what the adjoint needs beyond the spec (an input size)."""

    forward: Callable
    adjoint: Callable
    spec: Any
    consts: tuple
    extra: tuple = ()

    def transposed(self) -> _Op:
        return _Op(self.adjoint, self.forward, self.spec, self.consts, self.extra)


class _Linear(torch.autograd.Function):
    """``op`` applied to tensors; the backward applies ``op.transposed()`` through this same
    function, so that every order of derivative runs the fast kernels."""

    @staticmethod
    def forward(ctx: Any, op: _Op, *inputs: Tensor) -> Any:
        ctx.op = op
        return op.forward(inputs, op.spec, op.consts, *op.extra)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> Any:
        out = _Linear.apply(ctx.op.transposed(), *grads)
        return None, *(out if isinstance(out, tuple) else (out,))


def spectrum(x_pad: Tensor, spec: SpectrumSpec, consts: tuple) -> tuple[Tensor, ...]:
    """Return, for every range, the extended full spectrum of ``x_pad`` on it as two planes.

    Range ``c`` covers signed bins ``q = a0 .. a0 + span - 1`` of ``V = DFT(x_pad)``.

    Args:
        x_pad: reflect-padded signals, shape ``(B, Np)`` (or their ``rfft``, ``(B, Np/2 + 1)``,
            with ``spec.from_half_spectrum``).
        spec: :class:`SpectrumSpec`.
        consts: ``spectrum_index, spectrum_sign`` and ``fold_weight`` (``spectrum_sign`` again
            from the half spectrum) of :class:`~scrapl.jtfs.plan.FirstOrderPlan`, cut to the
            ranges, in the real dtype of ``x_pad``.

    Returns:
        One tensor per range, shape ``(B, span, 2)``: ``V[q mod Np]`` as ``(re, im)``.
    """
    out = _Linear.apply(_Op(_spectrum, _spectrum_adjoint, spec, consts), x_pad)
    return out if isinstance(out, tuple) else (out,)


def window(Fc: Tensor, spec: WindowSpec, consts: tuple) -> Tensor:
    """Return the analytic signals ``u`` of a cluster's rows from its range of :func:`spectrum`.

    ``u[r] = IDFT_M(placed band of V psi1[n1] 2**-k1, times 2**alpha)``: the modulus of every
    ``2**alpha``-th sample is the reference's ``U1[n1]`` (up to its ``1e-12``).

    Args:
        Fc: the cluster's range, shape ``(B, span, 2)``.
        spec: :class:`WindowSpec`.
        consts: ``weight, adjoint_weight, positions`` of the rows
            (:class:`~scrapl.jtfs.plan.ClusterPlan`).

    Returns:
        Shape ``(B, 2, G, M)``: ``[:, 0]`` is ``Re u``, ``[:, 1]`` is ``Im u``.
    """
    return _Linear.apply(_Op(_window, _window_adjoint, spec, consts, (Fc.shape[-2],)), Fc)


def second_order(U1s: tuple[Tensor, ...], spec: SecondOrderSpec, consts: tuple) -> Tensor:
    """Return ``Y[n2]`` on the rows of ``U1s``, as stacked planes (no modulus): :func:`run` of
    every part, then :func:`synthesis`, as one linear map.

    ``Y[n1] = IDFT_{M2}(fold_mean(DFT(U1[n1]) psi2[n2].level[k1], j2 - k1))`` up to a phase common
    to all rows.

    Args:
        U1s: first-order moduli of each part's rows, shapes ``(B, G, M)``.
        spec: :class:`SecondOrderSpec`.
        consts: ``weight, adjoint_weight, rotation, wrap`` of
            :class:`~scrapl.jtfs.plan.SecondOrderPlan` (``wrap`` may be None), then ``index,
            mask`` of each part (``mask`` None when every row keeps all its samples), in the real
            dtype of ``U1s``.

    Returns:
        Shape ``(B, 2, n1, M2)``: ``[:, 0]`` is ``Re Y``, ``[:, 1]`` is ``Im Y``.
    """
    return _Linear.apply(_Op(_second_order, _second_order_adjoint, spec, consts), *U1s)
