"""The JTFS filter banks (float64 numpy) and the enumeration of second-order paths with metadata.

Banks (``jtfs-spec.md`` §2.5): first-order ``psi1`` and second-order ``psi2`` Morlet wavelets on the
padded length ``Np``, the temporal low-pass ``phi``, the frequential wavelets ``psi_fr`` on ``N_fr``
(index 0: low-pass of width ``2**J_fr``, spin 0; then ``K`` spin-up wavelets, then their ``K``
spin-down mirrors), and the frequential averaging low-pass ``phi_F``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .. import filters
from .config import JTFSConfig

__all__ = ["Wavelet", "FilterBank", "JTFSPath", "FirstOrderPath"]


@dataclass(frozen=True)
class Wavelet:
    """Centre frequency ``xi`` and width ``sigma`` (cycles per sample or per bin), decimation ``j``."""

    xi: float
    sigma: float
    j: int


@dataclass(frozen=True)
class JTFSPath:
    """Metadata of one second-order JTFS path ``(n2, n_fr)``; no data.

    Attributes:
        idx: position in the path order (the same as scrapl-loss 0.1.0's ``scrapl_keys``).
        n2: index of the second-order temporal wavelet.
        n_fr: index of the frequential filter (0: low-pass, spin 0).
        j2: decimation exponent of the temporal wavelet (``jtfs-spec.md`` §2.2; not an octave).
        j_fr: decimation exponent of the frequential filter.
        spin: +1 (spin up), -1 (spin down) or 0 (frequential low-pass).
        n1_max: number of first-order filters feeding the path (those with ``j1 < j2``).
        xi2: temporal modulation frequency, cycles per sample.
        xi_fr: signed frequential modulation frequency, cycles per first-order bin.
        Q1: first-order bins per octave (to convert ``xi_fr`` to cycles per octave).
    """

    idx: int
    n2: int
    n_fr: int
    j2: int
    j_fr: int
    spin: int
    n1_max: int
    xi2: float
    xi_fr: float
    Q1: int

    @property
    def key(self) -> tuple[int, int]:
        """The reference's path key ``(n2, n_fr)``."""
        return (self.n2, self.n_fr)

    @property
    def order(self) -> int:
        """Scattering order (2: a temporal wavelet of the scalogram, then a frequential filter)."""
        return 2

    def rate_hz(self, sr: float) -> float:
        """Temporal modulation rate of the path in Hz for sample rate ``sr``: ``xi2 * sr``."""
        return self.xi2 * sr

    @property
    def scale_cycles_per_octave(self) -> float:
        """Signed frequential modulation scale in cycles per octave: ``xi_fr * Q1``."""
        return self.xi_fr * self.Q1


@dataclass(frozen=True)
class FirstOrderPath:
    """Metadata of a first-order JTFS path of the full transform: the time-averaged scalogram
    ``S1`` filtered along ``n1`` by frequential filter ``n_fr`` (spin 0 or +1 only).

    Attributes mirror :class:`JTFSPath`; ``key`` is ``(n_fr,)`` and the temporal rate is 0 (low-pass).
    """

    idx: int
    n_fr: int
    j_fr: int
    spin: int
    n1_max: int
    xi_fr: float
    Q1: int
    xi2: float = 0.0

    @property
    def key(self) -> tuple[int]:
        """The reference's key ``(n_fr,)``."""
        return (self.n_fr,)

    @property
    def order(self) -> int:
        """Scattering order (1)."""
        return 1

    def rate_hz(self, sr: float) -> float:
        """Temporal modulation rate: 0 Hz (the scalogram is only low-passed in time)."""
        return 0.0

    @property
    def scale_cycles_per_octave(self) -> float:
        """Signed frequential modulation scale in cycles per octave: ``xi_fr * Q1``."""
        return self.xi_fr * self.Q1


class FilterBank:
    """All JTFS filters of a configuration, in float64, and the list of second-order paths.

    Attributes:
        psi1, psi2, psi_fr: lists of :class:`Wavelet`.
        phi_j: decimation exponent of the temporal low-pass (``log2_T``).
        paths: list of :class:`JTFSPath` in the reference's order (``n2``-major, ``n_fr``-minor).

    Raises:
        ValueError: when the configuration is outside the domain where the transform is defined
            (``jtfs-spec.md`` §10.3): aliasing wavelets, unordered banks, a second-order wavelet
            coarser than the averaging (``j2 > log2_T``), or missing second-order filter levels.
    """

    def __init__(self, config: JTFSConfig) -> None:
        self.config = c = config
        self.psi1 = [
            Wavelet(xi, s, filters.max_subsampling(xi, s)) for xi, s in filters.anden_generator(c.J, c.Q1)
        ]
        self.psi2 = [
            Wavelet(xi, s, filters.max_subsampling(xi, s)) for xi, s in filters.anden_generator(c.J, c.Q2)
        ]
        fr = list(filters.anden_generator(c.J_fr, c.Q_fr))
        sigma_fr0 = filters.SIGMA0 / 2**c.J_fr
        self.psi_fr = [Wavelet(0.0, sigma_fr0, c.J_fr)]
        self.psi_fr += [Wavelet(xi, s, filters.max_subsampling(xi, s)) for xi, s in fr]
        self.psi_fr += [Wavelet(-xi, s, filters.max_subsampling(-xi, s)) for xi, s in fr]
        self._validate()
        self.paths = self._enumerate_paths()

    # -- validation --------------------------------------------------------------------------------
    def _validate(self) -> None:
        c = self.config
        for name, bank in (("Q1", self.psi1), ("Q2", self.psi2)):
            for w in bank:
                if not w.xi < 0.5 / 2**w.j:
                    raise ValueError(
                        f"{name}={getattr(c, name)!r} with J={c.J!r} gives an aliased "
                        f"wavelet (xi={w.xi:.4g}, j={w.j})"
                    )
        for w in self.psi_fr[1:]:
            if not abs(w.xi) < 0.5 / 2**w.j:
                raise ValueError(
                    f"Q_fr={c.Q_fr!r} with J_fr={c.J_fr!r} gives an aliased "
                    f"frequential wavelet (xi={w.xi:.4g}, j={w.j})"
                )
        for w1 in self.psi1:
            for w2 in self.psi2:
                if w1.j < w2.j and not w1.xi > w2.xi:
                    raise ValueError(
                        f"Q2={c.Q2!r} is incompatible with Q1={c.Q1!r}: a second-order "
                        f"wavelet (xi={w2.xi:.4g}) is above a first-order one it "
                        f"demodulates (xi={w1.xi:.4g})"
                    )
        j1_max = max(w.j for w in self.psi1)
        for n2, w2 in enumerate(self.psi2):
            used = [w1.j for w1 in self.psi1 if w1.j < w2.j]
            if not used:
                continue
            if not c.global_T and w2.j > c.log2_T:
                raise ValueError(
                    f"T={c.T!r} is too small: second-order wavelet n2={n2} needs decimation "
                    f"2**{w2.j} > T, so its coefficients cannot be averaged at stride 2**log2_T; "
                    f"use T >= {2 ** max(w.j for w in self.psi2)}, T=None or T='global'"
                )
            n_levels = max(1, min(j1_max, w2.j, 1 + c.log2_T))
            if max(used) >= n_levels:
                raise ValueError(
                    f"Q2={c.Q2!r} is too large for Q1={c.Q1!r} and J={c.J!r}: second-order wavelet "
                    f"n2={n2} (j2={w2.j}) is coarser than every first-order wavelet (max j1={j1_max})"
                )

    # -- paths ------------------------------------------------------------------------------------
    def n1_max(self, j2: int) -> int:
        """Number of first-order filters with ``j1 < j2`` (always a prefix ``0..n1_max-1``)."""
        return sum(1 for w in self.psi1 if w.j < j2)

    def _enumerate_paths(self) -> list[JTFSPath]:
        paths: list[JTFSPath] = []
        for n2, w2 in enumerate(self.psi2):
            n1_max = self.n1_max(w2.j)
            if n1_max == 0:
                continue
            for n_fr, w_fr in enumerate(self.psi_fr):
                paths.append(
                    JTFSPath(
                        idx=len(paths),
                        n2=n2,
                        n_fr=n_fr,
                        j2=w2.j,
                        j_fr=w_fr.j,
                        spin=int(np.sign(w_fr.xi)),
                        n1_max=n1_max,
                        xi2=w2.xi,
                        xi_fr=w_fr.xi,
                        Q1=self.config.Q1,
                    )
                )
        return paths

    # -- filters in the Fourier domain (float64) ---------------------------------------------------
    @cached_property
    def psi1_f(self) -> np.ndarray:
        """First-order wavelets on ``Np``. Shape ``(n_psi1, Np)``."""
        return np.stack([filters.morlet_spectrum(self.config.Np, w.xi, w.sigma) for w in self.psi1])

    @cached_property
    def psi2_f(self) -> np.ndarray:
        """Second-order wavelets on ``Np`` (level 0). Shape ``(n_psi2, Np)``."""
        return np.stack([filters.morlet_spectrum(self.config.Np, w.xi, w.sigma) for w in self.psi2])

    @cached_property
    def phi_f(self) -> np.ndarray:
        """Temporal low-pass on ``Np`` (level 0), width ``SIGMA0 / T_eff``. Shape ``(Np,)``."""
        return filters.gaussian_spectrum(self.config.Np, self.config.sigma_phi)

    @cached_property
    def psi_fr_f(self) -> np.ndarray:
        """Frequential filters on ``N_fr``. Shape ``(2K + 1, N_fr)``."""
        N_fr = self.config.N_fr
        return np.stack([filters.morlet_spectrum(N_fr, w.xi, w.sigma) for w in self.psi_fr])

    @cached_property
    def phi_fr_f(self) -> np.ndarray:
        """Frequential averaging low-pass on ``N_fr`` (level 0), width ``SIGMA0 / F_eff``."""
        return filters.gaussian_spectrum(self.config.N_fr, self.config.sigma_phi_F)

    @property
    def j1_levels(self) -> list[int]:
        """Distinct decimations ``j1`` of the first-order filters, increasing."""
        return sorted({w.j for w in self.psi1})
