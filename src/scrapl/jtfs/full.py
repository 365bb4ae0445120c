"""The first-order paths of the full JTFS, for evaluation and for comparison with kymatio.

:meth:`TimeFrequencyScattering.full <scrapl.jtfs.transform.TimeFrequencyScattering.full>`
reproduces the reference's vendored kymatio ``TimeFrequencyScattering`` with ``format='joint'``
(``docs/dev/full-jtfs.md``): first the first-order paths ``(n_fr,)``, ``n_fr = 0..K`` (the
time-averaged scalogram ``S1`` filtered along ``n1`` by the spin-0 and spin-up frequential filters,
modulus, frequential averaging for spin up), then every second-order path ``(n2, n_fr)``, computed by
the functions :meth:`path` uses. The zeroth order is not part of the joint output.

The functions here take the configuration, the filter bank and the first-order moduli; the
operators they need (averagings at the first-order decimations, frequential filters on all ``n1``)
are built on each call from the filter bank, in the moduli's dtype (a full transform costs far
more than building them).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .. import filters
from .bands import Cluster
from .config import JTFSConfig
from .core import average_time
from .filterbank import FilterBank, FirstOrderPath
from .ops import MODULUS_EPS, circulant_decimation_matrix, modulus

__all__ = ["first_order_paths", "first_order_jtfs", "unpad_frames"]


def first_order_paths(bank: FilterBank, n1_limit: int) -> list[FirstOrderPath]:
    """Metadata of the first-order JTFS paths ``(n_fr,)``, spin 0 and +1, in output order."""
    return [
        FirstOrderPath(
            idx=n_fr,
            n_fr=n_fr,
            j_fr=w.j,
            spin=int(math.copysign(1, w.xi)) if w.xi else 0,
            n1_max=n1_limit,
            xi_fr=w.xi,
            Q1=bank.config.Q1,
        )
        for n_fr, w in enumerate(bank.psi_fr)
        if w.xi >= 0
    ]


def unpad_frames(config: JTFSConfig) -> slice:
    """Frames of the unpadded signal at stride ``2**log2_T``: ``ceil(pad_left / 2**log2_T)`` to
    ``ceil((pad_left + N) / 2**log2_T)`` (all frames with ``T='global'``)."""
    if config.global_T:
        return slice(None)
    stride = 2**config.log2_T
    return slice(-(-config.pad_left // stride), -(-(config.pad_left + config.N) // stride))


def _f32(a: np.ndarray, like: Tensor) -> Tensor:
    """Filter values rounded to float32 (as the reference stores them), as float64 on ``like``'s device."""
    return torch.from_numpy(a.astype(np.float32).astype(np.float64)).to(like.device)


def time_averaged_scalogram(
    config: JTFSConfig, bank: FilterBank, layout: list[Cluster], U1: list[Tensor]
) -> Tensor:
    """``S1[n1] = A_T(U1[n1] + eps)`` of every first-order filter, in ``n1`` order.

    Args:
        layout: the first-order clusters; ``U1[c]`` holds the moduli of cluster ``c``'s rows,
            shape ``(B, G, M)``, a row of decimation ``k1`` sampled every ``M / (Np / 2**k1)``.

    Returns:
        Shape ``(B, n1, n_time)``.
    """
    rows, parts = [], []
    for cl, U in zip(layout, U1, strict=True):
        for k1 in sorted(set(cl.k1)):
            r = [i for i, k in enumerate(cl.k1) if k == k1]
            M1 = config.Np // 2**k1
            U_k = U[:, r[0] : r[-1] + 1, :: cl.length // M1]  # (B, G_k, M1), rows are contiguous
            phi = None
            if not config.global_T:
                level = _f32(filters.fold_sum(bank.phi_f, k1), U)
                phi = circulant_decimation_matrix(level, config.log2_T - k1, M1).real.T.to(U.dtype)
            colsum = M1 if phi is None else phi.sum(dim=0)
            parts.append(average_time(U_k, phi) + MODULUS_EPS * colsum)
            rows += [cl.n1[i] for i in r]
    S1 = torch.cat(parts, dim=-2)  # (B, n1, n_time), rows in the clusters' order
    order = torch.tensor(np.argsort(rows), device=S1.device)
    return S1.index_select(-2, order)


def first_order_jtfs(
    config: JTFSConfig, bank: FilterBank, n1_limit: int, layout: list[Cluster], U1: list[Tensor]
) -> list[Tensor]:
    """The first-order JTFS paths: ``|psi_fr[n_fr] *_{n1} S1| + eps`` (no temporal averaging
    beyond ``S1``'s), then the frequential low-pass ``phi_F`` for spin up.

    Returns:
        One tensor per path of :func:`first_order_paths`, shape ``(B, n_freq, n_time)``.
    """
    X1 = time_averaged_scalogram(config, bank, layout, U1)  # (B, n1, n_time)
    out = []
    for p in first_order_paths(bank, n1_limit):
        k_fr = config.k_fr(p.j_fr)
        H = circulant_decimation_matrix(_f32(bank.psi_fr_f[p.n_fr], X1), k_fr, X1.shape[-2])
        planes = torch.cat([H.real, H.imag]).to(X1.dtype) @ X1  # (2 n_rows, n1) @ (B, n1, n_time)
        W = modulus(planes.unflatten(-2, (2, H.shape[0]))) + MODULUS_EPS  # (B, n_rows, n_time)
        if p.spin != 0:
            level = _f32(filters.fold_sum(bank.phi_fr_f, k_fr), X1)
            A = circulant_decimation_matrix(level, config.log2_F - k_fr, W.shape[-2]).real.to(W.dtype)
            W = A @ W  # (n_freq, n_rows) @ (B, n_rows, n_time)
        out.append(W)
    return out
