"""The JTFS path engine: configuration and sizes, filter banks and path metadata, the per-path math,
and the :class:`TimeFrequencyScattering` module."""

from .config import JTFSConfig
from .filterbank import FilterBank, JTFSPath, Wavelet
from .transform import TimeFrequencyScattering

__all__ = ["JTFSConfig", "FilterBank", "JTFSPath", "Wavelet", "TimeFrequencyScattering"]
