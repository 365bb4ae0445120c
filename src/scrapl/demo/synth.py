"""A differentiable chirplet synthesizer (SCRAPL paper §4.3, after Vahidi et al.'s "Mesostructures").

A chirplet is a Gaussian-windowed sine sweep whose frequency rises at ``θ_FM`` octaves per second,
amplitude-modulated at ``θ_AM`` Hz, then shifted in time by a random integer number of samples. Every
operation is smooth in θ (``sin``, ``exp``, ``2**x``), so the synthesizer can be differentiated twice,
which the θ-IS warmup needs.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["ChirpletSynth", "ThetaRange", "AM_RANGES", "FM_RANGES", "log_uniform", "shift_signals"]


@dataclass(frozen=True)
class ThetaRange:
    """A positive interval ``[low, high]`` that a normalized parameter in ``[0, 1]`` maps onto."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (
            isinstance(self.low, numbers.Real)
            and isinstance(self.high, numbers.Real)
            and 0 < self.low < self.high
            and math.isfinite(self.high)
        ):
            raise ValueError(f"a ThetaRange needs 0 < low < high < inf, got ({self.low!r}, {self.high!r})")


# The paper's parameter ranges: AM rate in Hz, FM rate in octaves per second.
AM_RANGES = {"slow": ThetaRange(0.99, 1.98), "fast": ThetaRange(3.96, 7.92)}
FM_RANGES = {"slow": ThetaRange(0.5, 1.0), "mid": ThetaRange(2.0, 4.0), "fast": ThetaRange(8.0, 16.0)}


def log_uniform(theta: Tensor, rng: ThetaRange) -> Tensor:
    """Map ``theta`` in ``[0, 1]`` log-uniformly onto ``rng``: ``low * (high / low) ** theta``.

    Example:
        >>> log_uniform(torch.tensor([0.0, 0.5, 1.0]), ThetaRange(2.0, 8.0))
        tensor([2., 4., 8.])
    """
    return rng.low * (rng.high / rng.low) ** theta


def shift_signals(x: Tensor, shifts: Tensor) -> Tensor:
    """Delay each signal by an integer number of samples, zeroing what would wrap around.

    ``y[b, n] = x[b, n - shifts[b]]`` if ``0 <= n - shifts[b] < N``, else 0 (a ``roll`` whose wrapped
    part is zeroed). Linear in ``x``, so it is differentiable to any order.

    Shape:
        ``x``: ``(batch, N)``; ``shifts``: ``(batch,)`` integers; output: ``(batch, N)``.

    Example:
        >>> shift_signals(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([1]))
        tensor([[0., 1., 2., 3.]])
    """
    N = x.shape[-1]
    src = torch.arange(N, device=x.device) - shifts.to(x.device).long()[:, None]  # (batch, N)
    inside = (src >= 0) & (src < N)
    return torch.gather(x, -1, src.clamp(0, N - 1)) * inside.to(x.dtype)


class ChirpletSynth(nn.Module):
    """Amplitude-modulated Gaussian chirplets with a random time shift.

    With ``t`` in seconds centred on the middle of the signal (``t = (n - N // 2) / sr``), the
    parameters ``am = log_uniform(θ[:, 0], am_range)`` (Hz) and ``fm = log_uniform(θ[:, 1], fm_range)``
    (octaves per second), the chirplet is

    ``x(t) = sin(2π φ(t)) · exp(-m² / (2 σ²)) · sin(2π (am / 2) t)``,
    ``φ(t) = f0 / (fm ln 2) · (2^(fm t) - 1)``, ``σ = sigma0 · bw_octaves · sr / fm`` samples,

    ``m`` the sample offset from the centre (so the instantaneous frequency ``f0 2^(fm t)`` covers about
    ``bw_octaves`` octaves inside the envelope, and the AM envelope ``|sin|`` has rate ``am`` Hz), and
    each signal is then delayed by an integer shift in ``[-max_shift, max_shift]``, zero-filled.

    Args:
        n_samples: signal length ``N`` (the paper: 32768).
        sr: sample rate in Hz (default 8192).
        f0_hz: carrier frequency at the centre of the chirplet (default 512).
        am_range: AM rate range in Hz (default the paper's fast range, [3.96, 7.92]).
        fm_range: FM rate range in octaves per second (default [8, 16]).
        max_shift: largest absolute time shift in samples (default 2048).
        sigma0: relative envelope width (default 0.1).
        bw_octaves: bandwidth spanned by the envelope (default 2).

    Shape:
        ``theta``: ``(batch, 2)`` in ``[0, 1]`` (columns: AM, FM); ``shifts``: ``(batch,)`` integers;
        output: ``(batch, 1, n_samples)``.

    Example:
        >>> synth = ChirpletSynth(n_samples=4096)
        >>> synth(torch.full((3, 2), 0.5), torch.tensor([0, 100, -100])).shape
        torch.Size([3, 1, 4096])
    """

    n_theta = 2
    t: Tensor  # (N,) time in seconds, centred (a buffer)
    m: Tensor  # (N,) sample offsets from the centre (a buffer)
    n_samples: int
    sr: float
    f0_hz: float
    am_range: ThetaRange
    fm_range: ThetaRange
    max_shift: int
    sigma0: float
    bw_octaves: float
    unit_energy: bool

    def __init__(
        self,
        *,
        n_samples: int = 8192,
        sr: float = 8192.0,
        f0_hz: float = 512.0,
        am_range: ThetaRange = AM_RANGES["fast"],
        fm_range: ThetaRange = FM_RANGES["fast"],
        max_shift: int = 2048,
        sigma0: float = 0.1,
        bw_octaves: float = 2.0,
        unit_energy: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 2:
            raise ValueError(f"n_samples must be an int >= 2, got {n_samples!r}")
        if (
            isinstance(max_shift, bool)
            or not isinstance(max_shift, numbers.Integral)
            or not 0 <= max_shift < n_samples
        ):
            raise ValueError(f"max_shift must be an int in [0, n_samples), got {max_shift!r}")
        for name, value in (("sr", sr), ("f0_hz", f0_hz), ("sigma0", sigma0), ("bw_octaves", bw_octaves)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name, value in (("am_range", am_range), ("fm_range", fm_range)):
            if not isinstance(value, ThetaRange):
                raise TypeError(f"{name} must be a ThetaRange, got {type(value).__name__}")
        self.n_samples, self.sr, self.f0_hz = int(n_samples), float(sr), float(f0_hz)
        self.am_range, self.fm_range, self.max_shift = am_range, fm_range, int(max_shift)
        self.sigma0, self.bw_octaves = float(sigma0), float(bw_octaves)
        self.unit_energy = bool(unit_energy)
        offsets = torch.arange(self.n_samples, dtype=torch.float64) - self.n_samples // 2
        self.register_buffer("t", (offsets / self.sr).float(), persistent=False)  # seconds
        self.register_buffer("m", offsets.float(), persistent=False)  # samples

    def params_hz(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(am in Hz, fm in octaves/s)``, each ``(batch,)``, for normalized ``theta``."""
        return log_uniform(theta[:, 0], self.am_range), log_uniform(theta[:, 1], self.fm_range)

    def chirplet(self, theta: Tensor) -> Tensor:
        """The centred (unshifted) chirplets, ``(batch, N)``."""
        am, fm = (p[:, None] for p in self.params_hz(theta))  # (batch, 1)
        t, m = self.t.to(theta.dtype), self.m.to(theta.dtype)
        phase = self.f0_hz / (fm * math.log(2.0)) * torch.expm1(fm * t * math.log(2.0))
        sigma = self.sigma0 * self.bw_octaves * self.sr / fm  # samples
        envelope = torch.exp(-0.5 * (m / sigma) ** 2)
        modulator = torch.sin(2 * math.pi * (am / 2) * t)
        x = torch.sin(2 * math.pi * phase) * envelope * modulator
        if self.unit_energy:
            x = x / x.norm(dim=-1, keepdim=True)
        return x

    def random_shifts(self, batch: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``batch`` integer shifts uniformly in ``[-max_shift, max_shift]`` (CPU, int64)."""
        return torch.randint(-self.max_shift, self.max_shift + 1, (batch,), generator=generator)

    def forward(self, theta: Tensor, shifts: Tensor) -> Tensor:
        """Synthesize chirplets for ``theta`` in ``[0, 1]`` ``(batch, 2)``, delayed by ``shifts``."""
        if theta.dim() != 2 or theta.shape[1] != self.n_theta:
            raise ValueError(f"theta must have shape (batch, 2), got {tuple(theta.shape)}")
        if shifts.shape != (theta.shape[0],):
            raise ValueError(f"shifts must have shape ({theta.shape[0]},), got {tuple(shifts.shape)}")
        if shifts.is_floating_point() or shifts.abs().max() > self.max_shift:
            raise ValueError(f"shifts must be integers in [-{self.max_shift}, {self.max_shift}]")
        return shift_signals(self.chirplet(theta), shifts).unsqueeze(1)  # (batch, 1, N)
