"""The two linear stages around the first-order modulus, as autograd functions with exact adjoints.

**First order** (``jtfs-spec.md`` §4): from the padded signals ``x_pad`` to the analytic signals
``u`` of every first-order wavelet of the selected clusters (:mod:`scrapl.jtfs.bands`), as real
planes ``(Re u, Im u)``:

``X = rfft(x_pad)``; ``F = (V, -i V)`` the extended full spectrum (a signed gather of ``X``); row
``r`` of a cluster reads the window ``F[a0 + r d .. a0 + r d + M/2]`` (one strided view per
cluster), weighted (zero outside its band, halved on bins > 0); two real inverse FFTs of length
``M`` give ``Re u = irfft(W V)`` and ``Im u = irfft(-i W V)``. One call per cluster, not per
wavelet.

**Second order** (§5): from the first-order moduli ``U1`` of the clusters to ``Y[n2]``, as planes
``(Re Y, Im Y)``: each row is zero-stuffed to its own sampling (``U1 * mask``; a row synthesised
``2**alpha`` times finer keeps every ``2**alpha``-th sample, whose DFT is the coarse one, repeated),
``rfft``, its band read at the row's bins and weighted, all rows' runs placed with one common shift
and synthesised with one inverse FFT of length ``M2 = Np / 2**j2``.

Both maps are linear. Each is an ``autograd.Function`` whose backward applies the adjoint, itself
an ``autograd.Function`` whose backward applies the map again, so gradients of any order (the
Hessian-vector products of the θ-IS warmup) use the same fast kernels. The constants come from
:class:`~scrapl.jtfs.plan.JTFSPlan`; :class:`FirstOrderSpec` and :class:`SecondOrderSpec` hold
the sizes (plain ints, so that ``torch.compile`` sees constants).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "FirstOrderSpec",
    "SecondOrderSpec",
    "first_order",
    "first_order_windows",
    "second_order",
    "second_order_run",
    "second_order_synthesis",
    "place",
]


class FirstOrderSpec(NamedTuple):
    """Sizes of a first-order call.

    Attributes:
        n_pad: padded length ``Np``.
        length: length ``L`` of the extended spectrum.
        windows: per selected cluster part, ``(G, M, W, start, d, lo, hi)``: rows, FFT length,
            bins per window (``M/2 + 1``: one-sided synthesis; a multiple of ``M``: two-sided),
            first window's position in the extended spectrum, the stride between rows' windows,
            and the window bins ``lo .. hi - 1`` that hold a band (the adjoint reads only those).
    """

    n_pad: int
    length: int
    windows: tuple[tuple[int, int, int, int, int, int, int], ...]


class SecondOrderSpec(NamedTuple):
    """Sizes of a second-order call.

    Attributes:
        parts: per input ``U1`` part, ``(G, M)``: its rows and FFT length.
        run: run width ``S`` (bins read per row, placed at bins ``0 .. S-1`` of ``Y``'s spectrum).
        n_out: length ``M2`` of ``Y``.
        one_sided: synthesise with two real inverse FFTs (the run fits below ``M2 / 2``).
    """

    parts: tuple[tuple[int, int], ...]
    run: int
    n_out: int
    one_sided: bool


def place(run: Tensor, n_out: int) -> Tensor:
    """Fold a run of bins ``0 .. S-1`` (last axis) onto ``n_out`` bins: ``out[j mod n_out] += run[j]``.

    Shape: ``(..., S) -> (..., n_out)``.
    """
    S = run.shape[-1]
    if S <= n_out:
        return F.pad(run, (0, n_out - S))
    r = -(-S // n_out)
    return F.pad(run, (0, r * n_out - S)).unflatten(-1, (r, n_out)).sum(dim=-2)


# -- first order ---------------------------------------------------------------------------------
def first_order_windows(x_pad: Tensor, spec: FirstOrderSpec, consts: tuple[Tensor, ...]) -> Iterator[Tensor]:
    """Yield the planes ``(B, 2, G, M)`` of each window in turn (no autograd; :func:`first_order`
    is the differentiable map). ``consts``: ``(spectrum_index, spectrum_sign, fold_weight,
    *[weight, adjoint_weight, positions] per window)``."""
    B, L = x_pad.shape[0], spec.length
    X = torch.view_as_real(torch.fft.rfft(x_pad)).flatten(-2)  # (B, Np/2 + 1) -> (B, Np + 2) real
    Fr = (X.index_select(-1, consts[0]) * consts[1]).view(B, 2, L, 2)  # planes V, -iV; (re, im)
    for s, (G, M, W, start, d, _, _) in enumerate(spec.windows):
        if W == M // 2 + 1:  # one-sided: Re u = irfft(w V), Im u = irfft(-i w V)
            window = Fr.as_strided((B, 2, G, W, 2), (4 * L, 2 * L, 2 * d, 2, 1), 2 * start)
            halves = torch.view_as_complex(window * consts[3 + 3 * s])  # (B, 2, G, M/2 + 1)
            yield torch.fft.irfft(halves, n=M)  # (B, 2, G, M): Re u, Im u
        else:  # two-sided: u = ifft(w V folded onto M bins)
            window = Fr.as_strided((B, G, W, 2), (4 * L, 2 * d, 2, 1), 2 * start)  # plane V
            u = torch.fft.ifft(place(torch.view_as_complex(window * consts[3 + 3 * s]), M))
            yield torch.stack([u.real, u.imag], dim=1)  # (B, 2, G, M)


def _first_order_adjoint(
    grads: tuple[Tensor | None, ...], spec: FirstOrderSpec, consts: tuple[Tensor, ...], batch: int
) -> Tensor:
    """The adjoint of :func:`_first_order`: plane gradients -> gradient of ``x_pad`` ``(B, Np)``."""
    L, Np, sign = spec.length, spec.n_pad, consts[1]
    complex_dtype = torch.complex128 if sign.dtype == torch.float64 else torch.complex64
    gV = torch.zeros(batch, L, dtype=complex_dtype, device=sign.device)  # extended spectrum, plane V
    for s, g in enumerate(grads):
        if g is None:
            continue
        _, M, W, _, _, lo, hi = spec.windows[s]
        if W == M // 2 + 1:
            bins = torch.fft.rfft(g)[..., lo:hi]  # (B, 2, G, hi - lo) of (B, 2, G, M/2 + 1)
            comb = torch.add(bins.select(1, 0), bins.select(1, 1), alpha=1j)  # adjoint of (V, -iV)
        else:
            comb = torch.fft.fft(torch.complex(g.select(1, 0), g.select(1, 1)))  # (B, G, M)
            comb = (comb if W == M else comb.repeat(1, 1, W // M))[..., lo:hi]  # adjoint of the fold
        comb = torch.view_as_complex(torch.view_as_real(comb) * consts[4 + 3 * s])
        gV.index_add_(-1, consts[5 + 3 * s], comb.flatten(-2))
    folded = torch.view_as_real(gV).flatten(-2) * consts[2]  # (B, 2 L), with the rfft's halving
    gX = sign.new_zeros(batch, Np + 2).index_add_(-1, consts[0][: 2 * L], folded)
    return torch.fft.irfft(torch.view_as_complex(gX.view(batch, Np // 2 + 1, 2)), n=Np, norm="forward")


class _FirstOrder(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, spec: FirstOrderSpec, consts: tuple[Tensor, ...], x_pad: Tensor) -> Any:
        ctx.set_materialize_grads(False)
        ctx.spec, ctx.consts, ctx.batch = spec, consts, x_pad.shape[0]
        return tuple(first_order_windows(x_pad, spec, consts))

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> Any:
        return None, None, _FirstOrderAdjoint.apply(ctx.spec, ctx.consts, ctx.batch, *grads)


class _FirstOrderAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, spec: FirstOrderSpec, consts: tuple[Tensor, ...], batch: int, *grads: Tensor | None
    ) -> Any:
        ctx.set_materialize_grads(False)
        ctx.spec, ctx.consts, ctx.used = spec, consts, [g is not None for g in grads]
        return _first_order_adjoint(grads, spec, consts, batch)

    @staticmethod
    def backward(ctx: Any, g: Tensor | None) -> Any:
        if g is None:
            return (None,) * (3 + len(ctx.used))
        planes = _FirstOrder.apply(ctx.spec, ctx.consts, g)
        return None, None, None, *(p if u else None for p, u in zip(planes, ctx.used, strict=True))


def first_order(x_pad: Tensor, spec: FirstOrderSpec, consts: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Return the first-order analytic signals of the selected cluster rows, as planes.

    ``u[r] = IDFT_M(placed band of DFT(x_pad) psi1[n1] 2**-k1, times 2**alpha)``; the modulus of
    every ``2**alpha``-th sample is the reference's ``U1[n1]`` (up to its ``1e-12``).

    Args:
        x_pad: reflect-padded signals, shape ``(B, Np)``.
        spec: sizes (:class:`FirstOrderSpec`).
        consts: ``(spectrum_index, spectrum_sign, fold_weight)`` of
            :class:`~scrapl.jtfs.plan.FirstOrderPlan`, then ``weight, adjoint_weight, positions``
            of each window's rows, all in the dtype of ``x_pad``.

    Returns:
        One tensor per window, shape ``(B, 2, G, M)``: ``[:, 0]`` is ``Re u``, ``[:, 1]`` is ``Im u``.
    """
    return _FirstOrder.apply(spec, consts, x_pad)


# -- second order ---------------------------------------------------------------------------------
def second_order_run(U1: Tensor, i: int, spec: SecondOrderSpec, consts: tuple[Any, ...]) -> Tensor:
    """The run of bins that the rows of part ``i`` (``U1``, ``(B, G, M)``) read: ``(B, G, S)``
    complex, before weighting (no autograd; :func:`second_order` is the differentiable map).
    ``consts``: ``(weight, adjoint_weight, rotation, wrap, *[index, mask] per part)``."""
    mask = consts[5 + 2 * i]
    V = torch.fft.rfft(U1 if mask is None else U1 * mask)  # (B, G, M/2 + 1)
    return V.flatten(-2).index_select(-1, consts[4 + 2 * i]).view(U1.shape[0], U1.shape[1], spec.run)


def second_order_synthesis(runs: list[Tensor], spec: SecondOrderSpec, consts: tuple[Any, ...]) -> Tensor:
    """Weight the runs of every part, place them and synthesise ``Y``'s planes ``(B, 2, n1, M2)``."""
    run = runs[0] if len(runs) == 1 else torch.cat(runs, dim=-2)  # (B, n1, S)
    run = torch.view_as_complex(torch.view_as_real(run) * consts[0])
    if spec.one_sided:
        halves = run.unsqueeze(-3) * torch.view_as_complex(consts[2])  # (B, 2, n1, S): V, -iV
        return torch.fft.irfft(F.pad(halves, (0, spec.n_out // 2 + 1 - spec.run)), n=spec.n_out)
    u = torch.fft.ifft(place(run, spec.n_out))  # (B, n1, M2)
    return torch.stack([u.real, u.imag], dim=-3)


def _second_order_adjoint(gY: Tensor, spec: SecondOrderSpec, consts: tuple[Any, ...]) -> tuple[Tensor, ...]:
    """The adjoint of :func:`_second_order`: gradient of ``Y``'s planes -> gradients of the parts."""
    B, S = gY.shape[0], spec.run
    if spec.one_sided:
        bins = torch.fft.rfft(gY)[..., :S]  # (B, 2, n1, S)
        g = torch.add(bins.select(-3, 0), bins.select(-3, 1), alpha=1j)  # adjoint of (V, -iV)
    else:
        bins = torch.fft.fft(torch.complex(gY.select(-3, 0), gY.select(-3, 1)))
        g = bins[..., :S] if consts[3] is None else bins.index_select(-1, consts[3])
    g = torch.view_as_complex(torch.view_as_real(g) * consts[1])  # (B, n1, S)
    out = []
    rows = g.split([G for G, _ in spec.parts], dim=-2)
    for i, (g_part, (G, M)) in enumerate(zip(rows, spec.parts, strict=True)):
        V = g_part.new_zeros(B, G * (M // 2 + 1)).index_add_(-1, consts[4 + 2 * i], g_part.flatten(-2))
        U1 = torch.fft.irfft(V.view(B, G, M // 2 + 1), n=M, norm="forward")  # adjoint of rfft
        mask = consts[5 + 2 * i]
        out.append(U1 if mask is None else U1 * mask)
    return tuple(out)


class _SecondOrder(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, spec: SecondOrderSpec, consts: tuple[Any, ...], *U1s: Tensor) -> Tensor:
        ctx.set_materialize_grads(False)
        ctx.spec, ctx.consts = spec, consts
        runs = [second_order_run(U1, i, spec, consts) for i, U1 in enumerate(U1s)]
        return second_order_synthesis(runs, spec, consts)

    @staticmethod
    def backward(ctx: Any, gY: Tensor | None) -> Any:
        if gY is None:
            return (None,) * (2 + len(ctx.spec.parts))
        return None, None, *_SecondOrderAdjoint.apply(ctx.spec, ctx.consts, gY)


class _SecondOrderAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, spec: SecondOrderSpec, consts: tuple[Any, ...], gY: Tensor) -> Any:
        ctx.set_materialize_grads(False)
        ctx.spec, ctx.consts = spec, consts
        out = _second_order_adjoint(gY, spec, consts)
        ctx.like = [(U.shape, U.dtype, U.device) for U in out]
        return out

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> Any:
        if all(g is None for g in grads):
            return None, None, None
        U1s = [
            g if g is not None else torch.zeros(shape, dtype=dtype, device=device)
            for g, (shape, dtype, device) in zip(grads, ctx.like, strict=True)
        ]
        return None, None, _SecondOrder.apply(ctx.spec, ctx.consts, *U1s)


def second_order(U1s: tuple[Tensor, ...], spec: SecondOrderSpec, consts: tuple[Any, ...]) -> Tensor:
    """Return ``Y[n2]`` on the rows of ``U1s``, as stacked planes (no modulus).

    ``Y[n1] = IDFT_{M2}(fold_mean(DFT(U1[n1]) psi2[n2].level[k1], j2 - k1))`` up to a phase common
    to all rows.

    Args:
        U1s: first-order moduli of each part's rows, shapes ``(B, G, M)``.
        spec: sizes (:class:`SecondOrderSpec`).
        consts: ``weight, adjoint_weight, rotation, wrap`` of
            :class:`~scrapl.jtfs.plan.SecondOrderPlan` (``wrap`` may be None), then ``index, mask``
            of each part (``mask`` None when every row keeps all its samples), in ``U1``'s dtype.

    Returns:
        Shape ``(B, 2, n1, M2)``: ``[:, 0]`` is ``Re Y``, ``[:, 1]`` is ``Im Y``.
    """
    return _SecondOrder.apply(spec, consts, *U1s)
