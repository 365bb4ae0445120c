"""The full JTFS (every path of every order), for evaluation and for comparison with kymatio.

It reproduces the reference's vendored kymatio ``TimeFrequencyScattering`` with ``format='joint'``
(``docs/dev/full-jtfs.md``): first the first-order paths ``(n_fr,)``, ``n_fr = 0..K`` (the
time-averaged scalogram ``S1`` filtered along ``n1`` by the spin-0 and spin-up frequential filters,
modulus, frequential averaging for spin up), then every second-order path ``(n2, n_fr)`` in the
order of :attr:`TimeFrequencyScattering.paths`. The zeroth order is not part of the joint output.
The second-order paths are computed by the very functions :meth:`path` uses.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from . import core
from .filterbank import FirstOrderPath, JTFSPath

if TYPE_CHECKING:
    from .transform import TimeFrequencyScattering

__all__ = ["first_order_paths", "full_paths", "full_transform", "unpad_frames"]


def first_order_paths(jtfs: TimeFrequencyScattering) -> list[FirstOrderPath]:
    """Metadata of the first-order JTFS paths ``(n_fr,)``, spin 0 and +1, in output order."""
    bank = jtfs.bank
    return [
        FirstOrderPath(
            idx=n_fr,
            n_fr=n_fr,
            j_fr=w.j,
            spin=int(math.copysign(1, w.xi)) if w.xi else 0,
            n1_max=jtfs.n1_limit,
            xi_fr=w.xi,
            Q1=jtfs.config.Q1,
        )
        for n_fr, w in enumerate(bank.psi_fr)
        if w.xi >= 0
    ]


def full_paths(jtfs: TimeFrequencyScattering) -> list[FirstOrderPath | JTFSPath]:
    """Metadata of every path of :func:`full_transform`, in output order."""
    return [*first_order_paths(jtfs), *jtfs.paths]


def unpad_frames(jtfs: TimeFrequencyScattering) -> slice:
    """Frames of the unpadded signal at stride ``2**log2_T``: ``ceil(pad_left / 2**log2_T)`` to
    ``ceil((pad_left + N) / 2**log2_T)`` (all frames with ``T='global'``)."""
    c = jtfs.config
    if c.global_T:
        return slice(None)
    stride = 2**c.log2_T
    return slice(-(-c.pad_left // stride), -(-(c.pad_left + c.N) // stride))


def _first_order_jtfs(jtfs: TimeFrequencyScattering, U1) -> list[Tensor]:
    """First-order paths from the grouped scalograms ``U1``."""
    c = jtfs.config
    dtype = U1[0][1].dtype
    S1 = []
    for k1, U, _ in U1:
        Phi = None if c.global_T else jtfs.operator("phi_t", k1, U.shape[-1], dtype)
        S1.append(core.average_time(U, Phi))
    X1 = torch.cat(S1, dim=-2)  # (B, n1, n_time), n1 < min(len(psi1), N_fr)
    out = []
    for p in first_order_paths(jtfs):
        op = jtfs.frequential_operator(p.n_fr, X1.shape[-2], dtype)
        # no temporal averaging at first order: pruned rows are the constant eps itself (M = 1)
        W = core.unprune_rows(core.frequential_scattering(X1, op), op, None, 1)
        if p.spin != 0:
            A = None if c.global_F else jtfs.operator("phi_fr", jtfs._k_fr(p.j_fr), W.shape[-2], dtype)
            W = core.average_frequency(W, A)
        out.append(W)
    return out


def full_transform(jtfs: TimeFrequencyScattering, x: Tensor, *, unpad: bool = True) -> Tensor:
    """Every JTFS path of ``x``: first order ``(n_fr,)`` then second order ``(n2, n_fr)``.

    Args:
        jtfs: a :class:`~scrapl.jtfs.TimeFrequencyScattering`.
        x: signals, shape ``(B, N)``.
        unpad: keep only the frames that overlap the unpadded signal (what kymatio returns);
            ``False`` keeps all ``Np / 2**log2_T`` frames (what the SCRAPL loss compares).

    Returns:
        Shape ``(B, K + 1 + n_paths, n_freq, n_time)``.

    Raises:
        ValueError: with ``F='global'``, whose paths do not share one shape (use ``all_paths``).
    """
    if jtfs.config.global_F:
        raise ValueError(
            "F='global' gives paths of different shapes (spin-0 paths keep their "
            "frequential rows); use all_paths() for a list of per-path tensors"
        )
    U1 = jtfs.first_order(jtfs.padded_spectrum(x), jtfs.n1_limit)
    out = _first_order_jtfs(jtfs, U1)
    by_n2: dict[int, list[JTFSPath]] = {}
    for p in jtfs.paths:
        by_n2.setdefault(p.n2, []).append(p)
    for group in by_n2.values():
        n1_max = min(group[0].n1_max, jtfs.n1_limit)
        out.extend(jtfs.frequential(jtfs.second_order(U1, group[0].n2, group[0].j2, n1_max), group))
    S = torch.stack(out, dim=-3)  # (B, n_paths_full, n_freq, n_time)
    return S[..., unpad_frames(jtfs)] if unpad else S
