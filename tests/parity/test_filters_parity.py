"""Our filters, rounded to float32 as the engine uses them (:mod:`scrapl.jtfs.plan` rounds the
float64 design of :class:`~scrapl.jtfs.FilterBank`, and folds it to levels in float64 first), are
bit-identical to scrapl-loss 0.1.0's filter buffers, for every bank and level."""

from __future__ import annotations

import pytest
import torch

from scrapl import TimeFrequencyScattering, filters


def _f32(a) -> torch.Tensor:
    return torch.from_numpy(a).to(torch.float32)


CONFIGS = [
    dict(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1),
    dict(shape=48000, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2),
    dict(shape=44100, J=12, Q1=8, Q2=2, J_fr=5, Q_fr=2, T=2048, F=1),
    dict(shape=4096, J=6, Q1=2, Q2=1, J_fr=2, Q_fr=1, T=100, F=3),
]


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: f"N{kw['shape']}")
def test_filters_bit_identical(scrapl_ref, kw):
    ref = scrapl_ref.SCRAPLLoss(**kw).jtfs
    ref.load_filters()
    ours = TimeFrequencyScattering(**kw)
    c = ours.config
    assert (c.Np, c.pad_left, c.pad_right, c.N_fr) == (
        ref._N_padded,
        ref.pad_left,
        ref.pad_right,
        ref._N_padded_fr,
    )
    bank = ours.bank
    for n1, f in enumerate(ref.psi1_f):
        assert torch.equal(_f32(bank.psi1_f[n1]), f["levels"][0].flatten())
        assert bank.psi1[n1].j == f["j"] and bank.psi1[n1].xi == f["xi"]
    for n2, f in enumerate(ref.psi2_f):
        assert bank.psi2[n2].j == f["j"] and bank.psi2[n2].sigma == f["sigma"]
        for level, filt in enumerate(f["levels"]):
            assert torch.equal(_f32(filters.fold_sum(bank.psi2_f[n2], level)), filt.flatten())
    for level, filt in enumerate(ref.phi_f["levels"]):
        assert torch.equal(_f32(filters.fold_sum(bank.phi_f, level)), filt.flatten())
    phi_F, psis_fr = ref.filters_fr
    for n_fr, f in enumerate(psis_fr):
        assert torch.equal(_f32(bank.psi_fr_f[n_fr]), f["levels"][0].flatten())
        assert bank.psi_fr[n_fr].j == f["j"]
    for level, filt in enumerate(phi_F["levels"]):
        assert torch.equal(_f32(filters.fold_sum(bank.phi_fr_f, level)), filt.flatten())
