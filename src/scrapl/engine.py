"""The interface between SCRAPL and a scattering transform: a *path engine*.

SCRAPL only needs to enumerate paths and to compute one path's coefficients for a batch. Sampling,
the path-wise optimizers and the warmup depend on this protocol, never on the JTFS itself, so that
SCRAPL for another multivariable scattering transform (1-D time scattering, 2-D scattering of
images) needs a new engine and nothing else. :class:`scrapl.jtfs.TimeFrequencyScattering` is the
engine for the joint time-frequency scattering transform.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

__all__ = ["PathEngine"]


@runtime_checkable
class PathEngine(Protocol):
    """A scattering transform computed one path at a time.

    Attributes:
        n_paths: number of paths ``P``.
        paths: per-path metadata, ``paths[k].key`` a hashable identifier of path ``k``.
        signal_length: length ``N`` of the signals it accepts (last axis).
    """

    @property
    def n_paths(self) -> int:
        """Number of paths ``P``."""
        ...

    @property
    def paths(self) -> Sequence[Any]:
        """Per-path metadata in path order; ``paths[k].key`` identifies path ``k``."""
        ...

    @property
    def signal_length(self) -> int:
        """Length ``N`` of the signals it accepts (last axis)."""
        ...

    def path(self, x: Tensor, path_idx: int) -> Tensor:
        """Coefficients of path ``path_idx`` for signals ``x`` of shape ``(B, N)``: ``(B, ...)``."""
        ...

    def all_paths(self, x: Tensor, path_indices: Sequence[int] | None = None) -> list[Tensor]:
        """Coefficients of many paths (default all), ``all_paths(x)[k] == path(x, k)``."""
        ...

    def describe(self) -> dict[str, Any]:
        """Plain-data description of the configuration (for logs and warmup-file fingerprints)."""
        ...
