"""Filter design for the joint time-frequency scattering transform (JTFS).

All filters are built in float64 with numpy, in the Fourier domain (frequencies in cycles per sample,
0.5 = Nyquist), and cast to float32 only when they are registered as buffers. The design follows the
Morlet filter bank of Andén et al. (the one scrapl-loss 0.1.0 and kymatio use), so that our filters
are bit-identical to the reference's after the float32 cast:

* centre frequencies: a geometric progression of ratio ``2**(1/Q)`` from ``xi_max(Q)`` down to an
  "elbow", then ``Q - 1`` linearly spaced filters of constant width ``sigma0 / 2**J``;
* a Morlet wavelet is a periodised Gabor minus ``kappa`` times a periodised Gaussian of the same width
  (zero mean), L1-normalised in time;
* ``level_l(h)`` is the filter folded (summed) onto a grid ``2**l`` times coarser, the right discrete
  filter for a signal already decimated by ``2**l``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import scipy.fft

SIGMA0 = 0.1
"""Width of the lowest-frequency filters is ``SIGMA0 / 2**J`` (cycles/sample)."""
ALPHA = 5.0
"""A filter of centre ``xi`` and width ``sigma`` is treated as band-limited to ``|xi| + ALPHA*sigma``."""
R_PSI = math.sqrt(0.5)
"""Adjacent wavelets of one bank cross at ``R_PSI`` of their peak."""
SUPPORT_CRITERION = 1e-3
"""L1 tail mass left outside the temporal support used to size the padding."""

__all__ = [
    "SIGMA0",
    "ALPHA",
    "R_PSI",
    "xi_max",
    "sigma_psi",
    "anden_generator",
    "max_subsampling",
    "morlet_spectrum",
    "gaussian_spectrum",
    "fold_sum",
    "temporal_support",
]


def xi_max(Q: int) -> float:
    """Return the highest centre frequency of a bank with ``Q`` wavelets per octave.

    ``xi_max(Q) = max(1 / (1 + 2**(3/Q)), 0.35)`` cycles/sample.
    """
    return max(1.0 / (1.0 + math.pow(2.0, 3.0 / Q)), 0.35)


def sigma_psi(xi: float, Q: int, r: float = R_PSI) -> float:
    """Return the Fourier-domain width of a wavelet of centre ``xi`` in a ``Q``-per-octave bank.

    ``sigma = xi * (1 - c) / (1 + c) / sqrt(2 ln(1/r))`` with ``c = 2**(-1/Q)``, so that two
    neighbours ``2**(1/Q)`` apart cross at ``r`` of their peak. The factors are multiplied in this
    order on purpose: another order changes ``sigma`` by an ulp and flips float32 filter samples.
    """
    c = 1.0 / math.pow(2, 1.0 / Q)
    bandwidth_ratio = (1 - c) / (1 + c)
    gauss_factor = 1.0 / math.sqrt(2 * math.log(1.0 / r))
    return xi * bandwidth_ratio * gauss_factor


def anden_generator(J: int, Q: int) -> Iterator[tuple[float, float]]:
    """Yield ``(xi, sigma)`` of every wavelet of a bank, highest frequency first.

    Geometric part: ``xi_{n+1} = xi_n / 2**(1/Q)`` and ``sigma_{n+1} = sigma_n / 2**(1/Q)`` while
    ``sigma > sigma_min * 2**(1/Q)`` with ``sigma_min = SIGMA0 / 2**J``. Linear tail: ``Q - 1`` filters
    ``xi_e (1 - q/Q)``, ``q = 1..Q-1``, of width ``sigma_min``, where ``xi_e`` is the last geometric
    centre. Repeated division (not ``xi_max * 2**(-n/Q)``) keeps the float64 bits of the reference.
    """
    ratio = math.pow(2, 1 / Q)
    xi = xi_max(Q)
    sigma = sigma_psi(xi, Q)
    sigma_min = SIGMA0 / 2**J
    if sigma <= sigma_min:
        xi = sigma
    else:
        yield xi, sigma
        while sigma > sigma_min * ratio:
            xi /= ratio
            sigma /= ratio
            yield xi, sigma
    xi_elbow = xi
    for _ in range(Q - 1):
        xi -= 1 / Q * xi_elbow
        yield xi, sigma_min


def max_subsampling(xi: float, sigma: float) -> int:
    """Return ``j``, the largest dyadic decimation ``2**j`` a filter's output tolerates.

    ``j = floor(-log2(min(|xi| + ALPHA*sigma, 0.5))) - 1``: the band edge ``|xi| + ALPHA*sigma`` must
    stay below the Nyquist frequency ``2**-(j+1)`` of the decimated grid. This is not an octave index.
    """
    upper = min(abs(xi) + ALPHA * sigma, 0.5)
    return int(math.floor(-math.log2(upper)) - 1)


def _periods(sigma: float, tol: float = 1e-7) -> int:
    """Number ``P`` of periods summed on each side when periodising a Gaussian of width ``sigma``."""
    return min(int(math.ceil(math.sqrt(-2 * sigma**2 * math.log(tol)) + 1)), 5)


def morlet_spectrum(M: int, xi: float, sigma: float) -> np.ndarray:
    """Return the length-``M`` DFT of a Morlet wavelet (or of a Gaussian low-pass if ``xi == 0``).

    With frequencies ``f[m, k] = k/M + m``, ``m = 1-P .. P-1``, ``L[k] = mean_m exp(-f^2 / 2 sigma^2)``
    (periodised Gaussian) and ``G[k] = mean_m exp(-(f - xi)^2 / 2 sigma^2)`` (periodised Gabor):

    ``h = G - (G[0] / L[0]) L`` (zero mean) for ``xi != 0``, ``h = L`` for ``xi == 0``, then
    ``h /= sum_t |IDFT(h)[t]|`` (unit L1 norm in time). Negative ``xi`` gives the spin-down wavelet.

    Shape: ``(M,)`` float64, real (the filters are real in the Fourier domain).
    """
    P = _periods(sigma)
    freqs = np.arange((1 - P) * M, P * M, dtype=float) / float(M)
    if P == 1:
        low_freqs = np.fft.fftfreq(M)
    else:
        low_freqs = freqs
    lowpass = np.exp(-(low_freqs**2) / (2 * sigma**2)).reshape(2 * P - 1, -1).mean(axis=0)
    if xi:
        gabor = np.exp(-((freqs - xi) ** 2) / (2 * sigma**2)).reshape(2 * P - 1, -1).mean(axis=0)
        kappa = gabor[0] / lowpass[0]
        h = gabor - kappa * lowpass
    else:
        h = lowpass
    h /= np.abs(scipy.fft.ifft(h)).sum()
    return h


def gaussian_spectrum(M: int, sigma: float) -> np.ndarray:
    """Return the length-``M`` DFT of a Gaussian low-pass of width ``sigma`` (``morlet_spectrum`` at 0)."""
    return morlet_spectrum(M, 0.0, sigma)


def fold_sum(h: np.ndarray, level: int) -> np.ndarray:
    """Return the filter for a grid ``2**level`` times coarser: ``h_l[k] = sum_m h[k + m M / 2**level]``.

    Shape: ``(..., M)`` -> ``(..., M / 2**level)``.
    """
    if level == 0:
        return h
    M = h.shape[-1]
    return h.reshape(*h.shape[:-1], 2**level, M // 2**level).sum(axis=-2)


def temporal_support(h: np.ndarray, criterion: float = SUPPORT_CRITERION) -> int:
    """Return the half-support ``s`` of a centred filter given by its DFT ``h`` (shape ``(M,)``).

    With ``a = |IDFT(h)|`` and ``R[n] = sum_{t=n}^{M/2-1} a[t]``, ``s = 1 + min{n : R[n] <= criterion}``
    (``M // 2`` if the tail never gets that small).
    """
    a = np.abs(scipy.fft.ifft(h))
    half = a.shape[-1] // 2
    tail = np.cumsum(a[:half][::-1])[::-1]
    small = np.nonzero(tail <= criterion)[0]
    if small.size == 0:
        return half
    return int(small[0]) + 1
