"""JTFS hyperparameters, their validation, and the sizes derived from them (padding, strides).

Everything here is plain Python (no tensors): the numbers a path needs before any data is seen.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Literal, Union

from .. import filters

AveragingArg = Union[int, Literal["global"], None]  # noqa: UP007 (runtime alias, py3.10)

__all__ = ["JTFSConfig", "AveragingArg"]


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _parse_averaging(name: str, value: AveragingArg, J: int, n_max: int) -> tuple[int, bool]:
    """Return ``(effective width, is_global)`` for ``T`` (or ``F``).

    ``None`` -> ``2**J`` (local), ``'global'`` -> ``2**J`` used for sizes only (global sum),
    an int ``1 <= v <= n_max`` -> ``v`` (local, need not be a power of two).
    """
    if value is None:
        return 2**J, False
    if isinstance(value, str):
        if value != "global":
            raise ValueError(f"{name} must be None, 'global' or an int, got {value!r}")
        return 2**J, True
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be None, 'global' or an int, got {value!r}")
    if not 1 <= value <= n_max:
        raise ValueError(f"{name} must be 'global', None or an int in [1, {n_max}], got {value!r}")
    return int(value), False


@dataclass(frozen=True)
class JTFSConfig:
    """Hyperparameters of a joint time-frequency scattering transform and its derived sizes.

    Args:
        N: signal length in samples (``shape`` in :class:`~scrapl.SCRAPLLoss`).
        J: number of octaves of the temporal wavelets (first and second order).
        Q1: wavelets per octave, first order.
        Q2: wavelets per octave, second order.
        J_fr: number of octaves of the frequential wavelets.
        Q_fr: frequential wavelets per octave.
        T: temporal averaging width in samples. ``None`` means ``2**J`` samples (not ``J**2``: this is
            what scrapl-loss 0.1.0 really does), ``'global'`` sums over all frames.
        F: frequential averaging width in first-order bins. ``None`` means ``2**J_fr`` bins,
            ``'global'`` sums over all bins.

    Derived (cf. ``jtfs-spec.md`` §1, §3): ``T_eff``, ``log2_T``, ``F_eff``, ``log2_F``, the padded
    length ``Np = 2**J_pad`` and reflect padding ``pad_left``/``pad_right``, the nominal number of
    first-order bins ``N_in_fr = (J + 1) Q1`` and the zero-padded frequential length ``N_fr``.
    """

    N: int
    J: int
    Q1: int
    Q2: int
    J_fr: int
    Q_fr: int
    T: AveragingArg = None
    F: AveragingArg = None
    T_eff: int = field(init=False)
    global_T: bool = field(init=False)
    F_eff: int = field(init=False)
    global_F: bool = field(init=False)
    Np: int = field(init=False)
    pad_left: int = field(init=False)
    pad_right: int = field(init=False)
    N_in_fr: int = field(init=False)
    N_fr: int = field(init=False)

    def __post_init__(self) -> None:
        N = _check_int("shape", self.N, 2)
        J = _check_int("J", self.J, 1)
        Q1 = _check_int("Q1", self.Q1, 1)
        _check_int("Q2", self.Q2, 1)
        J_fr = _check_int("J_fr", self.J_fr, 0)
        _check_int("Q_fr", self.Q_fr, 1)
        if 2**J > N:
            raise ValueError(f"J must satisfy 2**J <= shape, got J={J!r} for shape={N!r}")
        T_eff, global_T = _parse_averaging("T", self.T, J, N)
        N_in_fr = (J + 1) * Q1
        F_eff, global_F = _parse_averaging("F", self.F, J_fr, N_in_fr)
        set_ = object.__setattr__
        set_(self, "T_eff", T_eff)
        set_(self, "global_T", global_T)
        set_(self, "F_eff", F_eff)
        set_(self, "global_F", global_F)
        # temporal padding: 3 supports of the low-pass on the unpadded length, capped below 3N - 2
        phi = filters.gaussian_spectrum(N, filters.SIGMA0 / T_eff)
        min_to_pad = 3 * filters.temporal_support(phi)
        J_pad = min(math.ceil(math.log2(N + 2 * min_to_pad)), math.floor(math.log2(3 * N - 2)))
        Np = 2**J_pad
        pad_left = (Np - N) // 2
        set_(self, "Np", Np)
        set_(self, "pad_left", pad_left)
        set_(self, "pad_right", Np - N - pad_left)
        # frequential padding: a multiple of 2**J_fr at least 8 min(F, 2**J_fr) above N_in_fr
        min_to_pad_fr = 8 * min(F_eff, 2**J_fr)
        set_(self, "N_in_fr", N_in_fr)
        set_(self, "N_fr", (N_in_fr + min_to_pad_fr) // 2**J_fr * 2**J_fr)
        if self.log2_F > J_fr:
            raise ValueError(
                f"F must be at most 2**J_fr = {2**J_fr} (frequential stride beyond the frequential "
                f"wavelets' decimation), got F={self.F!r}"
            )

    @property
    def log2_T(self) -> int:
        """Temporal stride exponent: frames are ``2**log2_T`` samples apart (``floor(log2 T_eff)``)."""
        return int(math.floor(math.log2(self.T_eff)))

    @property
    def log2_F(self) -> int:
        """Frequential stride exponent (``floor(log2 F_eff)``)."""
        return int(math.floor(math.log2(self.F_eff)))

    @property
    def sigma_phi(self) -> float:
        """Width (cycles/sample) of the temporal low-pass ``phi``: ``SIGMA0 / T_eff``."""
        return filters.SIGMA0 / self.T_eff

    @property
    def sigma_phi_F(self) -> float:
        """Width (cycles/bin) of the frequential averaging low-pass: ``SIGMA0 / F_eff``."""
        return filters.SIGMA0 / self.F_eff

    def k1(self, j1: int) -> int:
        """Decimation exponent of a first-order scalogram: ``min(j1, log2_T)`` (``j1`` with
        ``T='global'``), so ``U1`` has ``Np / 2**k1`` samples."""
        return j1 if self.global_T else min(j1, self.log2_T)

    def k_fr(self, j_fr: int) -> int:
        """Decimation exponent along ``n1`` of a frequential filter: ``min(j_fr, log2_F)``
        (``j_fr`` with ``F='global'``)."""
        return j_fr if self.global_F else min(j_fr, self.log2_F)

    @property
    def n_time(self) -> int:
        """Frames per path: ``Np / 2**log2_T`` (no unpadding), or 1 with ``T='global'``."""
        return 1 if self.global_T else self.Np // 2**self.log2_T
