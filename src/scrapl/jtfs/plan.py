"""Everything a path needs, built once at construction and registered as buffers.

:class:`JTFSPlan` turns the filter bank (float64 design, float32-rounded values, as the reference
stores them) into the constants of the per-path computation:

* :class:`FirstOrderPlan`: the gather that builds the extended full spectrum pair ``(V, -i V)``
  from ``rfft(x_pad)``, and one :class:`ClusterPlan` per first-order cluster
  (:func:`~scrapl.jtfs.bands.first_order_clusters`): band weights over each row's window, their
  adjoint, the window positions (for the backward scatter) and the sampling mask of rows
  synthesised on a finer grid than their own;
* one :class:`SecondOrderPlan` per second-order wavelet ``n2``: which bins each row of ``Y[n2]``
  reads from its cluster's ``rfft(U1)``, with weights and adjoint weights;
* one :class:`FrequentialPlan` per frequential filter and decimation ``(n_fr, j2)``: the block
  matrix of the frequential filter (rows that cannot reach the data dropped), and the final
  frequential averaging ``C`` and constant ``bias`` that put the dropped rows and the modulus'
  ``1e-12`` back;
* the temporal averaging matrix ``phi`` of each ``j2``.

Nothing is cached or built later: ``.to(device)``, ``.double()`` and ``.half()`` act on these
buffers like on any module's, and none is persistent (``state_dict`` stays empty; they are derived
from the configuration). The dense operators keep exact float64 values
(:class:`~scrapl.jtfs.constants.ConstantModule`), and in float64 the frequential filters drop
fewer rows (below 1e-14 of their peak instead of 1e-7), as float64 results deserve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from .. import filters
from .bands import Cluster, band_hulls, first_order_clusters, second_order_layout, signed
from .config import JTFSConfig
from .constants import ConstantModule
from .filterbank import FilterBank, JTFSPath
from .ops import MODULUS_EPS, circulant_decimation_matrix

__all__ = [
    "merge_length",
    "JTFSPlan",
    "FirstOrderPlan",
    "ClusterPlan",
    "SecondOrderPart",
    "PartReads",
    "SecondOrderPlan",
    "FrequentialPlan",
]


def merge_length(Np: int) -> int:
    """First-order decimation groups whose own FFT length is at most ``max(1024, Np / 64)`` share
    one cluster (one FFT call for all of them). In the paper configuration that merges the six
    coarsest groups (lengths 1024 down to 32) at 1024 samples, adding 1.8 % to the first order's
    samples and saving five clusters' operators (about 24 each per training step)."""
    return max(1024, Np // 64)


PRUNE_TOL = {torch.float32: 1e-7, torch.float64: 1e-14}
"""Frequential rows whose largest entry is below this fraction of the filter's are dropped (float32
filters carry ~1e-8 rounding noise, so 1e-7 is the float32 floor)."""


def _f32(a: np.ndarray) -> np.ndarray:
    """The float32-rounded values, as float64 (what the reference's filter buffers hold)."""
    return a.astype(np.float32).astype(np.float64)


def _tensor(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


class ClusterPlan(nn.Module):
    """Constants of one first-order cluster (:class:`~scrapl.jtfs.bands.Cluster`).

    Buffers (``G`` rows, window of ``W`` bins, ``M`` the cluster's FFT length; ``W = M/2 + 1``
    for a one-sided cluster):
        weight: ``(P, G, W, 2)``, complex band weights as (Re, Im) pairs, 0 outside each row's
            band: for a one-sided cluster ``P = 2``, ``w`` and ``-i w`` (the half spectra of
            ``Re u`` and ``Im u``; ``w`` halved on bins > 0, which the real inverse FFT counts
            twice); for a two-sided one ``P = 1``, ``w``.
        adjoint_weight: ``(G, hi - lo, 2)``, the same for the adjoint (``weight * c / M``, ``c``
            the inverse FFT's doubling) on the window bins ``lo .. hi - 1`` that are inside some
            row's band (:attr:`run`).
        positions: ``(G (hi - lo),)`` int64, ``r d + i`` for those bins: their position in the
            cluster's range of the extended spectrum (signed bins ``a0 .. a0 + span - 1``).
        mask: ``(G, M)``, 1 on the samples each row keeps (every ``2**alpha``-th), or absent.
    """

    weight: Tensor
    adjoint_weight: Tensor
    positions: Tensor
    mask: Tensor | None

    def __init__(self, cluster: Cluster, psi1: np.ndarray, start: np.ndarray, width: np.ndarray):
        super().__init__()
        self.cluster = cluster
        G, M, W = len(cluster.n1), cluster.length, cluster.window
        Np = psi1.shape[-1]
        i = np.arange(W)
        weight, positions = np.zeros((G, W)), np.zeros((G, W), np.int64)
        alphas = [cluster.alpha(r, Np) for r in range(G)]
        for r, n1 in enumerate(cluster.n1):
            p = cluster.a0 + r * cluster.d + i  # signed full-spectrum bins read by row r
            inside = (p >= start[n1]) & (p < start[n1] + width[n1])
            weight[r] = np.where(inside, psi1[n1][p % Np], 0.0) * 2.0 ** (alphas[r] - cluster.k1[r])
            positions[r] = p - cluster.a0
        on = np.flatnonzero(weight.any(axis=0))
        self.run = (int(on[0]), int(on[-1]) + 1)  # window bins inside some row's band
        lo, hi = self.run
        if cluster.one_sided:  # the half spectra of Re u and Im u: w V and -i w V
            half = weight * np.where(i == 0, 1.0, 0.5)
            forward = np.stack([np.stack([half, 0 * half], -1), np.stack([0 * half, -half], -1)])
        else:  # one complex inverse FFT of w V
            forward = np.stack([weight, 0 * weight], -1)[None]
        adjoint = weight[:, lo:hi] / M
        self.register_buffer("weight", _tensor(forward).float(), persistent=False)
        self.register_buffer("adjoint_weight", _pairs(adjoint), persistent=False)
        self.register_buffer("positions", _tensor(positions[:, lo:hi].reshape(-1)), persistent=False)
        mask = None
        if max(alphas) > 0:
            t = np.arange(M)
            mask = _tensor(np.stack([(t % 2**a == 0) for a in alphas]).astype(np.float32))
        self.register_buffer("mask", mask, persistent=False)

    @property
    def span(self) -> int:
        """Bins of the extended spectrum the cluster's windows cover: ``(G - 1) d + window``."""
        return (len(self.cluster.n1) - 1) * self.cluster.d + self.cluster.window


def _pairs(w: np.ndarray) -> Tensor:
    """Real factors ``(..., 2)`` applying ``w`` to the (Re, Im) of complex values, float32."""
    return _tensor(np.stack([w, w], axis=-1)).float()


def _spectrum_gather(a0: int, span: int, Np: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(index, sign, fold)`` of signed bins ``a0 .. a0 + span - 1`` of ``V``, each ``(span, 2)``
    (bin, re/im): the elements of the half spectrum's real view read, their signs (a bin above
    ``Np/2`` is the conjugate of its mirror), and the adjoint's weights (the signs times the
    adjoint of ``rfft``: 1/2 on the bins a real inverse FFT counts twice)."""
    k = (a0 + np.arange(span)) % Np
    direct = k <= Np // 2
    b = np.where(direct, k, Np - k)  # the half-spectrum bin, read conjugated where not direct
    index = np.stack([2 * b, 2 * b + 1], -1)
    sign = np.stack([np.ones_like(b), np.where(direct, 1, -1)], -1).astype(np.float64)
    scale = np.where((b == 0) | (b == Np // 2), 1.0, 0.5)[:, None]
    return index, sign, sign * scale


class FirstOrderPlan(nn.Module):
    """Constants of the first order: the extended spectrum and the clusters.

    Cluster ``c`` reads the range of signed bins ``a0 .. a0 + span - 1`` of the signals' full
    spectrum ``V`` (bin ``q`` holds ``V[q mod Np]``, a bin above ``Np/2`` the conjugate of its
    mirror): a signed gather of the real view of ``rfft(x_pad)``. The clusters' ranges are laid
    out one after the other, so the ranges of the first ``k`` clusters are a prefix.

    Buffers (``L = sum span``):
        spectrum_index: ``(2 L,)`` int64, element of the real view of the half spectrum read.
        spectrum_sign: ``(2 L,)``, its sign (-1 on the imaginary part of a conjugated bin), which
            is also the adjoint's weight from the half spectrum.
        fold_weight: ``(2 L,)``, the adjoint's weights from ``x_pad``: the signs times the adjoint
            of ``rfft`` (1/2 on the bins a real inverse FFT counts twice).
        clusters: the :class:`ClusterPlan` of each cluster.
    """

    spectrum_index: Tensor
    spectrum_sign: Tensor
    fold_weight: Tensor

    def __init__(self, config: JTFSConfig, psi1: np.ndarray, k1: list[int]):
        super().__init__()
        Np = config.Np
        layout = first_order_clusters(psi1, k1, merge_length(config.Np))
        start, width = band_hulls(psi1)
        start = signed(start, Np)
        self.clusters = nn.ModuleList(ClusterPlan(c, psi1, start, width) for c in layout)
        parts = [_spectrum_gather(c.a0, self.cluster(i).span, Np) for i, c in enumerate(layout)]
        index, sign, fold = (np.concatenate([p[n].reshape(-1) for p in parts]) for n in range(3))
        self.register_buffer("spectrum_index", _tensor(index), persistent=False)
        self.register_buffer("spectrum_sign", _tensor(sign).float(), persistent=False)
        self.register_buffer("fold_weight", _tensor(fold).float(), persistent=False)

    def offset(self, c: int) -> int:
        """Bins of the extended spectrum before cluster ``c``'s range (sum of the spans before it)."""
        return sum(self.cluster(i).span for i in range(c))

    def cluster(self, c: int) -> ClusterPlan:
        """The plan of cluster ``c``."""
        return cast(ClusterPlan, self.clusters[c])

    @property
    def layout(self) -> list[Cluster]:
        """The clusters' layouts, in order."""
        return [self.cluster(c).cluster for c in range(len(self.clusters))]


@dataclass(frozen=True)
class SecondOrderPart:
    """Rows ``first .. first + rows - 1`` of first-order cluster ``cluster`` (for ``Y[n2]``: the
    rows of that cluster with ``j1 < j2``)."""

    cluster: int
    first: int
    rows: int


class PartReads(nn.Module):
    """The bins that the rows of one :class:`SecondOrderPart` read from their ``rfft(U1)``.

    Buffers:
        index: ``(rows S,)`` int64, flat bins of the part's spectra ``(rows, M/2 + 1)``.
    """

    index: Tensor

    def __init__(self, part: SecondOrderPart, index: np.ndarray):
        super().__init__()
        self.part = part
        self.register_buffer("index", _tensor(index), persistent=False)


class SecondOrderPlan(nn.Module):
    """Constants of second-order wavelet ``n2`` on the clusters' rows with ``j1 < j2``.

    Buffers (``n1`` rows, run of ``S`` bins):
        weight: ``(n1, S, 2)`` (halved on bins > 0 for a one-sided synthesis).
        adjoint_weight: ``(n1, S, 2)``: the weights without halving, divided by ``M2``, times the
            adjoint of the cluster's ``rfft`` at the bins read (1/2: no row reads bin 0 or ``M/2``).
        wrap: ``(S,)`` int64, ``j mod M2`` (only for a run longer than ``M2``).
        reads: the :class:`PartReads` of each part (cluster) the rows come from.
    """

    weight: Tensor
    adjoint_weight: Tensor
    wrap: Tensor | None

    def __init__(self, bank: FilterBank, layout: list[Cluster], n2: int, j2: int, n1_max: int, Np: int):
        super().__init__()
        self.j2, self.n_out = j2, Np // 2**j2
        parts, rows = [], []
        for c, cl in enumerate(layout):
            first = cl.rows_below(n1_max)
            if first < len(cl.n1):
                parts.append(SecondOrderPart(c, first, len(cl.n1) - first))
                rows += [(cl, r) for r in range(first, len(cl.n1))]
        self.parts = tuple(parts)
        self.row_n1 = tuple(cl.n1[r] for cl, r in rows)
        level = {k: _f32(filters.fold_sum(bank.psi2_f[n2], k)) for k in {cl.k1[r] for cl, r in rows}}
        filters_ = [level[cl.k1[r]] for cl, r in rows]
        reads, self.run = second_order_layout(
            filters_, [cl.length for cl, _ in rows], [j2 - cl.k1[r] for cl, r in rows], self.n_out
        )
        self.one_sided = self.run <= self.n_out // 2
        half = np.where(np.arange(self.run) == 0, 1.0, 0.5)[:, None] if self.one_sided else 1.0
        weight = np.stack([rd.weight * half for rd in reads])
        adjoint = np.stack([rd.weight / (2 * self.n_out) for rd in reads])  # with rfft's adjoint: 1/2
        self.register_buffer("weight", _tensor(weight).float(), persistent=False)
        self.register_buffer("adjoint_weight", _tensor(adjoint).float(), persistent=False)
        self.reads = nn.ModuleList()
        at = 0
        for part in parts:
            H = layout[part.cluster].length // 2 + 1
            flat = [(r * H + reads[at + r].index) for r in range(part.rows)]
            self.reads.append(PartReads(part, np.concatenate(flat)))
            at += part.rows
        wrap = None if self.one_sided or self.run <= self.n_out else _tensor(np.arange(self.run) % self.n_out)
        self.register_buffer("wrap", wrap, persistent=False)

    def index(self, i: int) -> Tensor:
        """Flat bins read by part ``i``, shape ``(rows S,)``."""
        return cast(PartReads, self.reads[i]).index


class FrequentialPlan(ConstantModule):
    """Frequential filter ``n_fr`` on the ``n1`` rows of ``Y`` (in the rows' order), with decimation
    ``2**k_fr``, and the final averaging along the frequential axis, for paths of decimation ``j2``.

    Constants (``R`` kept rows; float32 and float64 values, :meth:`constant`):
        H: ``(2 R, 2 n1)``, ``[[Re H, -Im H], [Im H, Re H]]`` on stacked planes ``(Re Y; Im Y)``.
        C: ``(n_freq, R)``: the frequential low-pass ``phi_F`` (spin up/down) or the identity
            (spin 0) on the kept rows.
        bias: ``(n_freq, n_time)``: what the dropped rows and the ``1e-12`` of the modulus add,
            ``eps (A 1)(1^T Phi)`` with ``A`` the averaging on all rows and ``Phi`` the temporal one.
    """

    def __init__(self, H: Tensor, A: Tensor, phi_colsum: Tensor):
        super().__init__()
        values = {}
        for dtype, tol in PRUNE_TOL.items():
            row_max = H.abs().amax(dim=1)
            keep = torch.nonzero(row_max >= tol * row_max.max()).flatten()
            Hk = H[keep]
            block = torch.cat([torch.cat([Hk.real, -Hk.imag], 1), torch.cat([Hk.imag, Hk.real], 1)])
            values[dtype] = (block, A[:, keep])
        self.register_constant("H", values[torch.float32][0], values[torch.float64][0])
        self.register_constant("C", values[torch.float32][1], values[torch.float64][1])
        self.register_constant("bias", MODULUS_EPS * A.sum(dim=1)[:, None] * phi_colsum[None, :])

    def rows(self, dtype: torch.dtype) -> int:
        """Number ``R`` of kept rows in ``dtype``."""
        return self.constant("C", dtype).shape[1]


class JTFSPlan(nn.Module):
    """All constants of the per-path computation of a configuration (module docstring).

    Buffers:
        rotation: ``(2, 1, 1, 2)``, the complex numbers 1 and ``-i`` as (Re, Im) pairs (the two
            half spectra of a one-sided synthesis are ``V`` and ``-i V``).
    """

    rotation: Tensor

    def __init__(self, config: JTFSConfig, bank: FilterBank, n1_limit: int):
        super().__init__()
        self.config = c = config
        psi1 = _f32(bank.psi1_f[:n1_limit])
        self.first_order = FirstOrderPlan(c, psi1, [c.k1(w.j) for w in bank.psi1[:n1_limit]])
        layout = self.first_order.layout
        self.second_order = nn.ModuleDict()
        self.frequential = nn.ModuleDict()
        self.averages = nn.ModuleDict()
        by_j2: dict[int, JTFSPath] = {}
        for p in bank.paths:
            if str(p.n2) not in self.second_order:
                n1 = min(p.n1_max, n1_limit)
                self.second_order[str(p.n2)] = SecondOrderPlan(bank, layout, p.n2, p.j2, n1, c.Np)
            by_j2.setdefault(p.j2, p)
        for j2, p in by_j2.items():
            self.averages[str(j2)] = self._average(bank, j2)
            row_n1 = self.reader(p).row_n1
            for n_fr in range(len(bank.psi_fr)):
                self.frequential[f"{n_fr}_{j2}"] = self._frequential(bank, n_fr, j2, list(row_n1))
        self.register_buffer("rotation", torch.tensor([[[[1.0, 0.0]]], [[[0.0, -1.0]]]]), persistent=False)

    def _average(self, bank: FilterBank, j2: int) -> ConstantModule:
        """``phi``: temporal low-pass at level ``j2``, stride ``2**log2_T``, ``(Np/2**j2, n_time)``
        (absent with ``T='global'``)."""
        m = ConstantModule()
        c = self.config
        if not c.global_T:
            level = torch.from_numpy(_f32(filters.fold_sum(bank.phi_f, j2)))
            Phi = circulant_decimation_matrix(level, c.log2_T - j2, c.Np // 2**j2).real.T.contiguous()
            m.register_constant("phi", Phi)
        return m

    def _frequential(self, bank: FilterBank, n_fr: int, j2: int, row_n1: list[int]) -> FrequentialPlan:
        c = self.config
        w = bank.psi_fr[n_fr]
        k_fr = c.k_fr(w.j)
        H = circulant_decimation_matrix(torch.from_numpy(_f32(bank.psi_fr_f[n_fr])), k_fr, c.N_fr)
        H = H[:, row_n1]  # columns in the order of Y's rows
        n_rows = H.shape[0]
        if w.xi == 0:
            A = torch.eye(n_rows, dtype=torch.float64)  # spin 0: no frequential averaging
        elif c.global_F:
            A = torch.ones(1, n_rows, dtype=torch.float64)
        else:
            level = torch.from_numpy(_f32(filters.fold_sum(bank.phi_fr_f, k_fr)))
            A = circulant_decimation_matrix(level, c.log2_F - k_fr, n_rows).real
        M2 = c.Np // 2**j2
        if c.global_T:
            colsum = torch.full((1,), float(M2), dtype=torch.float64)
        else:
            colsum = cast(ConstantModule, self.averages[str(j2)]).constant("phi", torch.float64).sum(dim=0)
        return FrequentialPlan(H, A, colsum)

    def reader(self, p: JTFSPath) -> SecondOrderPlan:
        """The second-order plan of path ``p``'s wavelet ``n2``."""
        return cast(SecondOrderPlan, self.second_order[str(p.n2)])

    def frequential_plan(self, p: JTFSPath) -> FrequentialPlan:
        """The frequential plan of path ``p``."""
        return cast(FrequentialPlan, self.frequential[f"{p.n_fr}_{p.j2}"])

    def average(self, j2: int, dtype: torch.dtype) -> Tensor | None:
        """Temporal averaging matrix of level ``j2`` in ``dtype``, or None with ``T='global'``."""
        if self.config.global_T:
            return None
        return cast(ConstantModule, self.averages[str(j2)]).constant("phi", dtype)
