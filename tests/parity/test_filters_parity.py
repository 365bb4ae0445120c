"""Our float32 filter buffers are bit-identical to scrapl-loss 0.1.0's, for every bank and level."""

from __future__ import annotations

import pytest
import torch

from scrapl import TimeFrequencyScattering

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
    for n1, f in enumerate(ref.psi1_f):
        assert torch.equal(ours.psi1_f[n1], f["levels"][0].flatten())
        assert ours.bank.psi1[n1].j == f["j"] and ours.bank.psi1[n1].xi == f["xi"]
    for n2, f in enumerate(ref.psi2_f):
        assert ours.bank.psi2[n2].j == f["j"] and ours.bank.psi2[n2].sigma == f["sigma"]
        for level in ours.psi2_levels_used():
            if level < len(f["levels"]):
                assert torch.equal(getattr(ours, f"psi2_f_level{level}")[n2], f["levels"][level].flatten())
    for level, filt in enumerate(ref.phi_f["levels"]):
        if hasattr(ours, f"phi_f_level{level}"):
            assert torch.equal(getattr(ours, f"phi_f_level{level}"), filt.flatten())
    phi_F, psis_fr = ref.filters_fr
    for n_fr, f in enumerate(psis_fr):
        assert torch.equal(ours.psi_fr_f[n_fr], f["levels"][0].flatten())
        assert ours.bank.psi_fr[n_fr].j == f["j"]
    for level, filt in enumerate(phi_F["levels"]):
        if hasattr(ours, f"phi_fr_f_level{level}"):
            assert torch.equal(getattr(ours, f"phi_fr_f_level{level}"), filt.flatten())
