"""The demo's chirplet synthesizer: shapes, parameter mapping, FM/AM definitions, time shift,
differentiability (twice, for the θ-IS warmup), argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch

from scrapl.demo.synth import (
    AM_RANGES,
    FM_RANGES,
    ChirpletSynth,
    ThetaRange,
    log_uniform,
    shift_signals,
)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("n_samples", [1024, 8192])
def test_output_shape(batch, n_samples):
    synth = ChirpletSynth(n_samples=n_samples, max_shift=n_samples // 4)
    x = synth(torch.rand(batch, 2), synth.random_shifts(batch))
    assert x.shape == (batch, 1, n_samples)


@pytest.mark.parametrize("rng", list(AM_RANGES.values()) + list(FM_RANGES.values()))
def test_log_uniform_maps_the_unit_interval_onto_the_range(rng):
    values = log_uniform(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64), rng)
    torch.testing.assert_close(
        values,
        torch.tensor([rng.low, math.sqrt(rng.low * rng.high), rng.high], dtype=torch.float64),
        rtol=1e-12,
        atol=0,
    )


@pytest.mark.parametrize("am,fm", [("slow", "slow"), ("fast", "mid"), ("fast", "fast")])
def test_params_stay_in_their_ranges(am, fm):
    synth = ChirpletSynth(n_samples=1024, max_shift=0, am_range=AM_RANGES[am], fm_range=FM_RANGES[fm])
    am_hz, fm_oct = synth.params_hz(torch.rand(1000, 2, generator=torch.Generator().manual_seed(0)))
    assert AM_RANGES[am].low <= am_hz.min() and am_hz.max() <= AM_RANGES[am].high
    assert FM_RANGES[fm].low <= fm_oct.min() and fm_oct.max() <= FM_RANGES[fm].high


def _analytic(theta):
    synth = ChirpletSynth(n_samples=8192, am_range=AM_RANGES["fast"], fm_range=FM_RANGES["mid"])
    theta = torch.tensor([theta], dtype=torch.float64)
    x = synth.chirplet(theta)[0].numpy()
    am, fm = (float(v) for v in synth.params_hz(theta))
    return synth, scipy.signal.hilbert(x), am, fm


def _inst_freq(z, n, sr):
    """Instantaneous frequency (Hz) at sample ``n``, from the analytic signal's phase slope."""
    phase = np.unwrap(np.angle(z[n - 8 : n + 9]))
    return np.polyfit(np.arange(17), phase, 1)[0] * sr / (2 * np.pi)


@pytest.mark.parametrize("theta", [(0.2, 0.0), (0.7, 0.5), (0.5, 1.0)])
def test_frequency_rises_at_theta_fm_octaves_per_second(theta):
    synth, z, _, fm = _analytic(theta)
    sigma = 0.1 * 2 * synth.sr / fm  # envelope std, samples
    c, d = synth.n_samples // 2, int(sigma / 2)
    f_lo, f_hi = _inst_freq(z, c - d, synth.sr), _inst_freq(z, c + d, synth.sr)
    assert math.log2(f_hi / f_lo) == pytest.approx(fm * 2 * d / synth.sr, rel=0.02)
    assert math.sqrt(f_lo * f_hi) == pytest.approx(512.0, rel=0.01)  # f0 at the centre


@pytest.mark.parametrize("theta", [(0.0, 0.3), (0.6, 0.6), (1.0, 0.0)])
def test_envelope_is_gaussian_times_am_sinusoid(theta):
    synth, z, am, fm = _analytic(theta)
    sigma = 0.1 * 2 * synth.sr / fm
    m = np.array([-0.75, -0.4, 0.3, 0.8]) * sigma  # sample offsets from the centre
    n = (synth.n_samples // 2 + m).astype(int)
    t = (n - synth.n_samples // 2) / synth.sr
    expected = np.exp(-0.5 * ((n - synth.n_samples // 2) / sigma) ** 2) * np.abs(np.sin(np.pi * am * t))
    np.testing.assert_allclose(np.abs(z[n]), expected, rtol=0.03)


@pytest.mark.parametrize("am,fm", [("slow", "slow"), ("fast", "mid"), ("fast", "fast")])
def test_unit_energy_chirplets_have_unit_norm_and_the_same_shape(am, fm):
    kwargs = dict(n_samples=8192, am_range=AM_RANGES[am], fm_range=FM_RANGES[fm], max_shift=0)
    theta = torch.rand(5, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    raw = ChirpletSynth(**kwargs).double().chirplet(theta)
    unit = ChirpletSynth(**kwargs, unit_energy=True).double().chirplet(theta)
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(5, dtype=torch.float64), rtol=1e-12, atol=0)
    torch.testing.assert_close(unit * raw.norm(dim=-1, keepdim=True), raw, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("shift", [-700, -1, 0, 1, 513, 1024])
def test_shift_is_a_zero_filled_delay(shift):
    synth = ChirpletSynth(n_samples=2048, max_shift=1024)
    theta = torch.tensor([[0.3, 0.8]])
    centred = synth(theta, torch.tensor([0]))[0, 0]
    shifted = synth(theta, torch.tensor([shift]))[0, 0]
    N = synth.n_samples
    if shift >= 0:
        torch.testing.assert_close(shifted[shift:], centred[: N - shift], rtol=0, atol=0)
        assert torch.count_nonzero(shifted[:shift]) == 0
    else:
        torch.testing.assert_close(shifted[: N + shift], centred[-shift:], rtol=0, atol=0)
        assert torch.count_nonzero(shifted[N + shift :]) == 0


def test_shift_signals_matches_zeroed_roll():
    x = torch.randn(4, 50, generator=torch.Generator().manual_seed(1))
    shifts = torch.tensor([-49, -3, 0, 20])
    expected = torch.stack([torch.roll(row, int(s)) for row, s in zip(x, shifts, strict=True)])
    for row, s in zip(expected, shifts.tolist(), strict=True):
        if s > 0:
            row[:s] = 0
        elif s < 0:
            row[s:] = 0
    torch.testing.assert_close(shift_signals(x, shifts), expected, rtol=0, atol=0)


@pytest.mark.parametrize("max_shift", [0, 5, 2048])
def test_random_shifts_are_integers_within_range_and_reach_both_ends(max_shift):
    synth = ChirpletSynth(n_samples=8192, max_shift=max_shift)
    s = synth.random_shifts(20000, generator=torch.Generator().manual_seed(0))
    assert s.dtype == torch.int64
    assert s.min().item() == -max_shift and s.max().item() == max_shift


def test_random_shifts_are_reproducible_from_a_generator():
    synth = ChirpletSynth(n_samples=4096)
    a = synth.random_shifts(16, generator=torch.Generator().manual_seed(7))
    b = synth.random_shifts(16, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def _tiny_synth(unit_energy):
    # 256 samples at 256 Hz: f0 = 16 Hz, a few periods, same formula as the full-size synth
    return ChirpletSynth(n_samples=256, sr=256.0, f0_hz=16.0, max_shift=32, unit_energy=unit_energy).double()


@pytest.mark.parametrize("unit_energy", [False, True])
def test_gradcheck_in_theta(unit_energy):
    synth = _tiny_synth(unit_energy)
    theta = torch.tensor([[0.3, 0.6], [0.9, 0.1]], dtype=torch.float64, requires_grad=True)
    shifts = torch.tensor([5, -17])
    assert torch.autograd.gradcheck(lambda th: synth(th, shifts), (theta,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("unit_energy", [False, True])
def test_gradgradcheck_in_theta(unit_energy):
    synth = _tiny_synth(unit_energy)
    theta = torch.tensor([[0.4, 0.7]], dtype=torch.float64, requires_grad=True)
    shifts = torch.tensor([-9])
    assert torch.autograd.gradgradcheck(lambda th: synth(th, shifts), (theta,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_samples": 1}, "n_samples"),
        ({"n_samples": 1024, "max_shift": 1024}, "max_shift"),
        ({"max_shift": -1}, "max_shift"),
        ({"sr": 0.0}, "sr"),
        ({"f0_hz": -5.0}, "f0_hz"),
    ],
)
def test_bad_construction_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ChirpletSynth(**kwargs)


def test_bad_range_type_raises_type_error():
    with pytest.raises(TypeError, match="am_range"):
        ChirpletSynth(am_range=(1.0, 2.0))


@pytest.mark.parametrize("low,high", [(0.0, 1.0), (2.0, 1.0), (1.0, math.inf)])
def test_bad_theta_range_raises_value_error(low, high):
    with pytest.raises(ValueError, match="ThetaRange"):
        ThetaRange(low, high)


@pytest.mark.parametrize(
    "theta,shifts,match",
    [
        (torch.rand(2, 3), torch.tensor([0, 0]), "theta"),
        (torch.rand(2, 2), torch.tensor([0]), "shifts"),
        (torch.rand(2, 2), torch.tensor([0.0, 1.0]), "integers"),
        (torch.rand(2, 2), torch.tensor([0, 2049]), "integers"),
    ],
)
def test_bad_call_arguments_raise_value_error(theta, shifts, match):
    with pytest.raises(ValueError, match=match):
        ChirpletSynth()(theta, shifts)
