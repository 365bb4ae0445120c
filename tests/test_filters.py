"""Properties of the filter design (scrapl.filters) and of the JTFS filter banks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scrapl import filters
from scrapl.jtfs import FilterBank, JTFSConfig


@pytest.mark.parametrize(
    "J,Q,count", [(3, 1, 4), (12, 8, 86), (12, 2, 25), (3, 2, 7), (5, 2, 11), (2, 1, 3), (0, 1, 1)]
)
def test_generator_counts(J, Q, count):
    """Number of wavelets per bank (jtfs-spec.md §2.1, verified on the reference)."""
    assert len(list(filters.anden_generator(J, Q))) == count


def test_dyadic_indices():
    """``j`` is the maximum decimation, not the octave (jtfs-spec.md §2.2)."""
    j = [filters.max_subsampling(xi, s) for xi, s in filters.anden_generator(12, 8)]
    assert j == [0] * 10 + sum(([k] * 8 for k in range(1, 9)), []) + [9] * 7 + [10] * 4 + [11]
    j2 = [filters.max_subsampling(xi, s) for xi, s in filters.anden_generator(12, 2)]
    assert j2 == [0] * 4 + sum(([k] * 2 for k in range(1, 11)), []) + [11]


def test_geometric_then_linear_centres():
    bank = list(filters.anden_generator(12, 8))
    xi = np.array([b[0] for b in bank])
    sigma = np.array([b[1] for b in bank])
    ratio = xi[:79][:-1] / xi[:79][1:]
    np.testing.assert_allclose(ratio, 2 ** (1 / 8), rtol=1e-12)
    np.testing.assert_allclose(sigma[79:], 0.1 / 2**12, rtol=0)
    np.testing.assert_allclose(xi[79:], xi[78] * (1 - np.arange(1, 8) / 8), rtol=1e-12)
    assert xi[0] == pytest.approx(1 / (1 + 2 ** (3 / 8)))


@pytest.mark.parametrize(
    "M,xi,sigma", [(4096, 0.35, 0.07), (4096, 0.01, 0.002), (36, -0.175, 0.07), (1024, 0.0, 0.0125)]
)
def test_unit_l1_norm_in_time(M, xi, sigma):
    h = filters.morlet_spectrum(M, xi, sigma)
    assert np.abs(np.fft.ifft(h)).sum() == pytest.approx(1.0, rel=1e-12)


@pytest.fixture(scope="module")
def bank_B():
    return FilterBank(JTFSConfig(48000, 12, 8, 2, 3, 2))


def test_wavelets_have_zero_mean(bank_B):
    for bank in (bank_B.psi1_f, bank_B.psi2_f, bank_B.psi_fr_f[1:]):
        assert np.abs(bank[:, 0]).max() <= 1e-12 * np.abs(bank).max()


def test_lowpass_peaks_at_zero(bank_B):
    assert bank_B.phi_f[0] == pytest.approx(bank_B.phi_f.max())
    assert bank_B.psi_fr_f[0, 0] == pytest.approx(bank_B.psi_fr_f[0].max())


def test_wavelet_peaks_at_centre_frequency(bank_B):
    M = bank_B.config.Np
    for w, h in zip(bank_B.psi1 + bank_B.psi2, np.concatenate([bank_B.psi1_f, bank_B.psi2_f]), strict=True):
        assert abs(np.argmax(h) / M - w.xi) <= 2 / M


def test_spin_down_mirrors_spin_up(bank_B):
    """psi_fr[K + q] is psi_fr[q] mirrored in frequency (negative centre frequency)."""
    K = (len(bank_B.psi_fr) - 1) // 2
    up, down = bank_B.psi_fr_f[1 : K + 1], bank_B.psi_fr_f[K + 1 :]
    mirrored = np.roll(up[:, ::-1], 1, axis=-1)
    np.testing.assert_allclose(down, mirrored, atol=1e-12)


def test_littlewood_paley_bounded(bank_B):
    """sum_n |psi_n(w)|^2 + |phi(w)|^2 stays within [0.3, 1.2] across the band the bank covers."""
    M = bank_B.config.Np
    freqs = np.arange(M) / M
    for bank, waves in ((bank_B.psi1_f, bank_B.psi1), (bank_B.psi2_f, bank_B.psi2)):
        lp = (bank**2).sum(0) + bank_B.phi_f**2
        band = (freqs >= waves[-1].xi) & (freqs <= waves[0].xi)
        assert lp[band].min() >= 0.3
        assert lp.max() <= 1.2


def test_temporal_support_of_lowpass():
    """Padding sizes of jtfs-spec.md §9.1 (s_T, Np, pads)."""
    for N, T, s_T, Np in [
        (8096, 8, 41, 16384),
        (48000, 4096, 20129, 131072),
        (32768, 4096, 16193, 65536),
        (44100, 2048, 10075, 131072),
    ]:
        phi = filters.gaussian_spectrum(N, 0.1 / T)
        assert filters.temporal_support(phi) == s_T
        J = int(math.log2(T)) if T != 8 else 3
        c = JTFSConfig(
            N,
            12 if N > 10000 else J,
            8 if N > 10000 else 1,
            2 if N > 10000 else 1,
            3 if N != 44100 else 5,
            2 if N > 10000 else 1,
            T=None if N in (8096, 48000) else T,
            F=None,
        )
        assert c.Np == Np
