"""Where each temporal wavelet is read from a spectrum, and where its band is placed (host-side).

Every JTFS wavelet is real in the Fourier domain and negligible outside a *band*: the smallest
circular run of bins where ``|h| >= 1e-12 max|h|`` (dropping the rest changes a result by less than
1e-12 of its scale). Filtering a real signal ``v`` with ``h`` and decimating by ``2**s``
(``jtfs-spec.md`` §4-5) only reads the band: ``u = IDFT_{M/2^s}(fold_mean(DFT_M(v) h, s))``.

**First order.** A first-order wavelet ``n1`` at decimation ``k1`` samples ``|u|`` on
``M1 = Np / 2**k1`` points. We synthesise ``u`` on a *cluster length* ``M >= M1`` (a power of two
times ``M1``) and keep every ``2**alpha``-th sample (``M = 2**alpha M1``): placing the band at the
start of a length-``M`` spectrum and taking the inverse DFT interpolates ``u`` exactly, with
``u_M[2**alpha t] = 2**-alpha u[t]`` (the factor goes into the weights), aliasing of a band wider
than ``M1`` included. Moving the band to another start bin multiplies ``u`` by a unit phase, which
the modulus removes. So the wavelets of several decimation groups can share one FFT length (one
call for the whole *cluster*). A band is synthesised *one-sided* (two real inverse FFTs of a half
spectrum, :mod:`scrapl.jtfs.scalogram`) when it fits in the lower half of the spectrum; the
wide wavelets of small ``Q1`` take a complex inverse FFT at their own length instead.

Within a cluster the rows (wavelets) are ordered by increasing band start (decreasing ``n1``), and
row ``r`` reads the ``M/2 + 1`` bins ``[a0 + r d, a0 + r d + M/2]`` of the signal's full spectrum
(extended circularly): one strided view for the whole cluster, weighted by zero outside each band.
:func:`cluster_window` finds ``(a0, d)``.

**Second order.** Second-order wavelet ``n2`` at level ``k1`` reads its band from the spectrum of
``U1`` (length ``M1``, periodic in a longer cluster spectrum) and folds it onto
``M2 = Np / 2**j2`` bins. All rows of a path are placed with one common shift, so that they keep a
common phase (they are combined linearly by the frequential filter before the next modulus);
:func:`second_order_layout` computes, for every row, the bins to read and their weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BAND_REL_TOL",
    "band_hulls",
    "signed",
    "cluster_window",
    "Cluster",
    "first_order_clusters",
    "RowRead",
    "second_order_layout",
]

BAND_REL_TOL = 1e-12
"""Bins below this fraction of a wavelet's peak magnitude are outside its band."""


def band_hulls(h: np.ndarray, rel_tol: float = BAND_REL_TOL) -> tuple[np.ndarray, np.ndarray]:
    """``(start, width)`` of each filter's band: the smallest circular run of bins holding every bin
    where ``|h| >= rel_tol max|h|``.

    Args:
        h: real filters in the Fourier domain, shape ``(G, M)``.

    Returns:
        Two int64 arrays of shape ``(G,)``: start bin in ``[0, M)`` and width (1 for a zero filter).
    """
    G, M = h.shape
    starts, widths = np.zeros(G, dtype=np.int64), np.ones(G, dtype=np.int64)
    mag = np.abs(h)
    for g in range(G):
        on = np.flatnonzero(mag[g] >= rel_tol * mag[g].max())
        if on.size == 0 or mag[g].max() == 0:
            continue
        gaps = np.diff(np.append(on, on[0] + M))  # gaps[i]: from on[i] to the next one, circularly
        i = int(np.argmax(gaps))  # the largest empty arc ends the band
        starts[g], widths[g] = on[(i + 1) % on.size], M - gaps[i] + 1
    return starts, widths


def signed(start: np.ndarray, M: int) -> np.ndarray:
    """Band starts as signed bins in ``(-M/2, M/2]`` (a band starting at ``M - 8`` starts at -8)."""
    return np.where(start > M // 2, start - M, start)


def cluster_window(a: np.ndarray, S: np.ndarray, half: int) -> tuple[int, int] | None:
    """``(a0, d)`` such that window ``[a0 + r d, a0 + r d + half)`` holds band ``[a[r], a[r] + S[r])``
    for every row ``r``, with ``d >= 0``; None if there is none. Of the feasible strides the one with
    the largest margin is chosen, and ``a0`` as large as possible.

    Args:
        a: band starts (signed bins), rows in the cluster's order, shape ``(G,)``.
        S: band widths, shape ``(G,)``.
        half: usable output bins ``M / 2`` (the band must end before the Nyquist bin).
    """
    G = a.shape[0]
    r = np.arange(G)
    d_max = max(1, int(np.max(a) - np.min(a)) // max(G - 1, 1) + 1)
    d = np.arange(d_max + 1)[:, None]  # (D, 1)
    lo = np.min(a[None] - r[None] * d, axis=1)  # window start may not pass any band start
    hi = np.max(a[None] + S[None] - half - r[None] * d, axis=1)  # nor end before any band end
    slack = lo - hi
    if slack.max() < 0:
        return None
    best = int(np.argmax(slack))
    return int(lo[best]), best


@dataclass(frozen=True)
class Cluster:
    """First-order wavelets synthesised at one FFT length.

    Attributes:
        n1: first-order filter indices of the rows, in row order (decreasing ``n1``).
        k1: decimation exponent of each row (``U1`` of row ``r`` has ``Np / 2**k1[r]`` samples).
        length: the FFT length ``M`` (``M / (Np / 2**k1)`` is a power of two).
        a0, d: row ``r`` reads full-spectrum bins ``a0 + r d .. a0 + r d + window - 1`` (signed).
        one_sided: synthesised by two real inverse FFTs of half spectra (window ``M/2 + 1``);
            otherwise by a complex inverse FFT (window a multiple of ``M``, folded onto ``M`` bins),
            for wavelets too wide for a one-sided synthesis at their own length.
        window: bins read per row.
    """

    n1: tuple[int, ...]
    k1: tuple[int, ...]
    length: int
    a0: int
    d: int
    one_sided: bool = True
    window: int = 0

    def alpha(self, r: int, Np: int) -> int:
        """``log2(length / M1)`` of row ``r``: its samples are every ``2**alpha``-th of the cluster's."""
        return int(round(np.log2(self.length * 2 ** self.k1[r] / Np)))

    def rows_below(self, n1_max: int) -> int:
        """First row with ``n1 < n1_max`` (rows are in decreasing ``n1``: the used rows are a suffix)."""
        return sum(1 for n in self.n1 if n >= n1_max)


def _fit_cluster(rows: list[int], k1: list[int], a: np.ndarray, S: np.ndarray, Np: int) -> Cluster:
    """Lay a cluster out at the finest row's length ``M``: one-sided if its bands fit (half spectra
    of ``M/2 + 1`` bins); else, for a single decimation group, two-sided at ``M`` (the window grown
    by multiples of ``M``, folded); else (merged groups) one-sided at a doubled length."""
    length = Np // 2 ** min(k1)
    fit = cluster_window(a, S, length // 2)
    if fit is not None:
        return Cluster(tuple(rows), tuple(k1), length, *fit, True, length // 2 + 1)
    if len(set(k1)) == 1:
        window = length
        while (fit := cluster_window(a, S, window)) is None:
            window += length
        return Cluster(tuple(rows), tuple(k1), length, *fit, False, window)
    while (fit := cluster_window(a, S, length // 2)) is None:
        length *= 2
    return Cluster(tuple(rows), tuple(k1), length, *fit, True, length // 2 + 1)


def first_order_clusters(psi1: np.ndarray, k1: list[int], merge_len: int) -> list[Cluster]:
    """Group the first-order wavelets into clusters, finest decimation first.

    Wavelets sharing a decimation ``k1`` form a group; every group whose own length
    ``Np / 2**k1`` is at most ``merge_len`` joins one cluster (the coarse groups are cheap, and one
    FFT call each would dominate their cost). Rows are in decreasing ``n1``.

    Args:
        psi1: first-order filters (float32 values), shape ``(n1_limit, Np)``.
        k1: decimation of each filter, non-decreasing.
        merge_len: groups of at most this length share a cluster.
    """
    Np = psi1.shape[-1]
    start, width = band_hulls(psi1)
    a = signed(start, Np)
    groups: list[list[int]] = []
    for n1, k in enumerate(k1):
        if groups and k1[groups[-1][0]] == k:
            groups[-1].append(n1)
        elif groups and Np // 2**k <= merge_len and Np // 2 ** k1[groups[-1][0]] <= merge_len:
            groups[-1].append(n1)
        else:
            groups.append([n1])
    clusters = []
    for group in groups:
        rows = sorted(group, reverse=True)
        idx = np.array(rows)
        clusters.append(_fit_cluster(rows, [k1[n] for n in rows], a[idx], width[idx], Np))
    return clusters


@dataclass(frozen=True)
class RowRead:
    """What one row of ``Y[n2]`` reads from its cluster's ``rfft(U1)`` (length ``M/2 + 1``).

    Attributes:
        index: ``(S,)`` bins to read, for output bins ``0 .. S-1`` of the placed run; never bin 0
            or ``M/2`` (the adjoint of ``rfft`` then halves every bin read, see
            :func:`second_order_layout`).
        weight: ``(S, 2)`` real factors of the (Re, Im) of each bin read (0 outside the row's band;
            the sign of Im flipped where the bin is read conjugated), without the one-sided halving.
    """

    index: np.ndarray
    weight: np.ndarray


def second_order_layout(
    filters: list[np.ndarray], lengths: list[int], s: list[int], M2: int
) -> tuple[list[RowRead], int]:
    """Where each row of ``Y[n2]`` reads its band, placed with one common shift.

    Row ``r`` has second-order filter ``filters[r]`` at its level (float32 values, length ``M1``,
    decimation ``2**s[r]`` onto ``M2`` bins) and a cluster spectrum of ``lengths[r] / 2 + 1`` bins
    (``lengths[r] = 2**alpha M1``; bins up to ``M/2`` are those of ``DFT_{M1}(U1)``, periodically).
    Output bin ``j`` of the run (``0 <= j < S``) is spectrum bin ``j`` of ``Y`` (folded mod ``M2``).

    A second-order wavelet is zero at frequency 0 (a Morlet wavelet has zero mean; its levels fold
    bins where it vanishes onto bin 0): its weight there, float rounding below 1e-12 of its peak, is
    dropped, and so are the Nyquist bins, outside every band. Reads outside a band (weight 0) point
    at bin 1. So no row reads bin 0 or ``M/2``, and the adjoint of ``rfft`` at the bins read is one
    factor 1/2 for all of them (the other bins are counted twice by a real inverse FFT).

    Returns:
        ``(reads, S)``: one :class:`RowRead` per row, and the run width ``S`` shared by the rows.
    """
    hulls = [band_hulls(h[None]) for h in filters]
    starts = [int(st[0]) % M2 for st, _ in hulls]
    diff = [(st - starts[0] + M2 // 2) % M2 - M2 // 2 for st in starts]
    shift = (starts[0] + min(diff)) % M2
    offsets = [(st - shift) % M2 for st in starts]
    S = max(o + int(w[0]) for o, (_, w) in zip(offsets, hulls, strict=True))
    reads = []
    for h, M, s_r, o, (st, w) in zip(filters, lengths, s, offsets, hulls, strict=True):
        M1 = h.shape[-1]
        j = np.arange(S)
        inside = (j >= o) & (j < o + int(w[0]))
        q = (int(st[0]) + j - o) % M1
        direct = q <= M // 2
        index = np.where(direct, q, M - q)
        dead = ~inside | (index == 0) | (index == M // 2)
        assert np.all(np.abs(h[q[inside & dead]]) <= 1e-12 * np.abs(h).max()), "band at DC or Nyquist"
        value = np.where(dead, 0.0, h[q] * 2.0**-s_r)
        weight = np.stack([value, np.where(direct, value, -value)], axis=-1)
        reads.append(RowRead(np.where(dead, 1, index).astype(np.int64), weight))
    return reads, S
