"""The sound-matching encoder: a log-frequency spectrogram, a small CNN, θ in ``[0, 1]``.

Everything is plain torch (no torchaudio): an STFT magnitude is projected on triangular filters spaced
``bins_per_octave`` per octave (a CQT-like front end), compressed by ``log1p(S / eps)``, and read by
a few conv blocks whose global pooling makes the prediction invariant to the time shift.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["LogFreqSpectrogram", "Encoder", "log_frequency_filterbank"]


def log_frequency_filterbank(
    *, n_fft: int, sr: float, f_min: float, n_octaves: int, bins_per_octave: int
) -> Tensor:
    """Triangular filters with centres ``f_min 2^(k / bins_per_octave)`` over the rfft bins.

    Each triangle spans its neighbours' centres, widened to at least one FFT bin on each side so that
    low, narrow bands still see energy. Rows are normalized to sum to 1.

    Shape:
        output: ``(n_octaves * bins_per_octave, n_fft // 2 + 1)``.

    Example:
        >>> log_frequency_filterbank(n_fft=512, sr=8192, f_min=128, n_octaves=5, bins_per_octave=12).shape
        torch.Size([60, 257])
    """
    n_bins = n_octaves * bins_per_octave
    k = torch.arange(-1, n_bins + 1, dtype=torch.float64)
    centres = f_min * 2.0 ** (k / bins_per_octave)  # (n_bins + 2,) including both edges
    freqs = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    df = sr / n_fft
    lo = torch.minimum(centres[:-2], centres[1:-1] - df)[:, None]
    mid = centres[1:-1, None]
    hi = torch.maximum(centres[2:], centres[1:-1] + df)[:, None]
    up = (freqs - lo) / (mid - lo)
    down = (hi - freqs) / (hi - mid)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)  # (n_bins, n_freq)
    return (fb / fb.sum(dim=1, keepdim=True)).float()


class LogFreqSpectrogram(nn.Module):
    """``log1p(|STFT| @ fbᵀ / eps)``: a CQT-like log-frequency, log-magnitude spectrogram.

    Args:
        sr: sample rate in Hz. n_fft: FFT size (Hann window). hop: hop size in samples.
        f_min: lowest centre frequency in Hz. n_octaves, bins_per_octave: frequency axis.
        eps: magnitude scale of the log compression.

    Shape:
        ``x``: ``(batch, 1, N)``; output: ``(batch, 1, n_octaves * bins_per_octave, 1 + N // hop)``.
    """

    window: Tensor  # (n_fft,) Hann window (a buffer)
    fb: Tensor  # (n_bins, n_fft // 2 + 1) log-frequency filters (a buffer)

    def __init__(
        self,
        *,
        sr: float = 8192.0,
        n_fft: int = 512,
        hop: int = 64,
        f_min: float = 128.0,
        n_octaves: int = 5,
        bins_per_octave: int = 12,
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.n_fft, self.hop, self.eps = n_fft, hop, eps
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        fb = log_frequency_filterbank(
            n_fft=n_fft, sr=sr, f_min=f_min, n_octaves=n_octaves, bins_per_octave=bins_per_octave
        )
        self.register_buffer("fb", fb, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        spec = torch.stft(
            x.flatten(0, 1), self.n_fft, self.hop, window=self.window, return_complex=True
        ).abs()  # (batch, n_freq, frames)
        S = torch.einsum("kf,bft->bkt", self.fb, spec)  # (batch, n_bins, frames)
        return torch.log1p(S / self.eps).unsqueeze(1)


class Encoder(nn.Module):
    """Spectrogram → conv blocks (3×3 conv, instance norm, ReLU, 2×2 max-pool) → global pooling → MLP.

    Global average and max pooling over time and frequency make θ̂ invariant to the input's time
    shift; a sigmoid maps the output to ``[0, 1]``. Normalization is per example and per channel
    (``GroupNorm`` with one group per channel), not over the batch: the encoder is deterministic
    and each example's θ̂ depends on that example only (the θ-IS warmup needs both), and with it
    the supervised run hears the AM rate in about a third of the steps it needs without.

    Args:
        channels: output channels of the conv blocks (default 16, 32, 32, 64).
        hidden: width of the MLP head.
        n_theta: number of outputs (default 2: AM, FM).
        frontend: the spectrogram (default :class:`LogFreqSpectrogram` ()).

    Shape:
        ``x``: ``(batch, 1, N)``; output: ``(batch, n_theta)`` in ``[0, 1]``.

    Example:
        >>> Encoder()(torch.randn(2, 1, 8192)).shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        *,
        channels: tuple[int, ...] = (16, 32, 32, 64),
        hidden: int = 64,
        n_theta: int = 2,
        frontend: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.frontend = frontend if frontend is not None else LogFreqSpectrogram()
        blocks: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.GroupNorm(c_out, c_out),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            c_in = c_out
        self.conv = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Linear(2 * c_in, hidden), nn.ReLU(), nn.Linear(hidden, n_theta))
        self.input_scale = 1.0 / math.log1p(1.0 / 1e-3)  # log1p(1 / eps) ≈ 6.9: unit-ish input

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            S = self.frontend(x) * self.input_scale  # (batch, 1, n_bins, frames)
        h = self.conv(S)  # (batch, C, n_bins', frames')
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)  # (batch, 2C)
        return torch.sigmoid(self.head(pooled))
